"""A check of a GPU machine in minutes, before the `paper` profile's hours.

    python benchmarks/gpu_check.py [--steps 20] [--sentences 256]     (or: make gpu-check)

On a CUDA machine it runs the rehearsal profile's recipe (profiles/rehearsal.yaml: a
decoder base with EOS pooling on left padding, a query instruction, GradCache, hard
negatives, gradient checkpointing) in bfloat16 on the study's local models (SmolLM2-135M
as the embedding base and as the paraphrase model; no download) and prints, for
training, encoding and paraphrasing: tokens per second, time per step or batch, and
peak GPU memory. It then projects the `paper` profile's hours from those figures.

The projection's rule: time grows with parameters x tokens (a transformer's forward
and backward passes cost about 2 and 4 multiply-adds per parameter per token), so

    paper time = measured time per token x (paper model's parameters / measured
                 model's parameters) x the paper's tokens

with the paper's corpus (150,237 sentences of 28.4 tokens; 106,386 training triplets, 2
epochs). A 135M model keeps a large GPU far from busy, so the projection from it is an
upper bound; `--base-model` and `--paraphrase-model` measure with larger local models
(a folder or a cached hub id) for a closer one. The paper's own figure, 658.6 minutes
of training on one H100, is printed beside it.

Without CUDA it says so in one line and exits 0 (`--allow-cpu` measures on the CPU, to
check the script itself).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAPER_BASE_PARAMETERS = 7.57e9  # Qwen3-Embedding-8B (its model card: 8B; 7.57e9 counted)
PAPER_PARAPHRASE_PARAMETERS = 7.62e9  # Qwen2.5-7B-Instruct (its model card)
PAPER_NEW_TOKENS_PER_SENTENCE = 40  # a paraphrase is about as long as its sentence


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB"


def paper_hours(
    train_tps: float,
    base_parameters: float,
    paraphrase_tps: float,
    paraphrase_parameters: float,
    encode_tps: float,
) -> dict[str, float]:
    """Hours of the paper profile's stages from measured throughputs (tokens per second)
    of models with the given parameter counts: time ~ parameters x tokens."""
    from cardioembed import paper

    corpus, epochs = paper.CORPUS, paper.RECIPE["epochs"]
    tokens = corpus["tokens_per_sentence"]
    # a triplet is three texts: anchor, positive and negative
    train_tokens = corpus["train_triplets"] * epochs * 3 * tokens
    held_out_tokens = 2 * (corpus["validation_triplets"] + corpus["test_triplets"]) * tokens
    new_tokens = corpus["sentences"] * PAPER_NEW_TOKENS_PER_SENTENCE
    base_ratio = PAPER_BASE_PARAMETERS / base_parameters
    seconds = {
        "training": train_tokens / train_tps * base_ratio,
        "encoding": held_out_tokens / encode_tps * base_ratio,
        "paraphrasing": new_tokens
        / paraphrase_tps
        * PAPER_PARAPHRASE_PARAMETERS
        / paraphrase_parameters,
    }
    return {stage: s / 3600 for stage, s in seconds.items()}


class Meter:
    """Wall time and peak GPU memory of a block."""

    def __init__(self, cuda: bool):
        self.cuda = cuda

    def __enter__(self):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.started
        self.peak = torch.cuda.max_memory_allocated() if self.cuda else float("nan")


def rehearsal_pairs(folder: Path):
    """The rehearsal textbook's sentences and their adjacent-sentence pairs (no
    paraphrasing here: it is measured on its own)."""
    from cardioembed.book.runner import run_profile
    from cardioembed.curation.corpus import load_corpus
    from cardioembed.curation.rehearsal import write_rehearsal_textbooks
    from cardioembed.profiles import load_profile

    values = dict(
        runs_root=str(folder),
        textbook_dir=str(write_rehearsal_textbooks(folder / "textbooks")),
        pair_kinds=["adjacent"],
        paraphrase_model="",
    )
    run_profile(load_profile("rehearsal").with_overrides(values), only=["01"])
    corpus = load_corpus(folder / "rehearsal" / "corpus")
    return corpus["sentences"], corpus["pairs"]


def mean_tokens(tokenizer, texts, cap: int) -> float:
    lengths = [min(len(ids), cap) for ids in tokenizer(list(texts))["input_ids"]]
    return sum(lengths) / max(len(lengths), 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps to time")
    parser.add_argument("--sentences", type=int, default=256, help="sentences to paraphrase")
    parser.add_argument("--base-model", default="smollm2", help="embedding base to measure")
    parser.add_argument("--paraphrase-model", default="smollm2", help="instruction model")
    parser.add_argument("--allow-cpu", action="store_true", help="measure on a CPU too")
    args = parser.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to do")
        return 0

    from cardioembed import paper
    from cardioembed.curation.pairs import load_causal_lm, paraphrase_replies
    from cardioembed.profiles import notebook_values
    from cardioembed.training.recipe import Recipe, train

    device = torch.cuda.get_device_name(0) if cuda else "CPU"
    dtype = "bfloat16" if cuda else "float32"
    print(f"gpu_check on {device}, torch {torch.__version__}, weights in {dtype}")
    recipe = Recipe.from_parameters(
        notebook_values(
            "02",
            "rehearsal",
            {
                "base_model": args.base_model,
                "dtype": dtype,
                "max_steps": args.steps,
                "train_kinds": ["adjacent"],  # the pairs this check builds
            },
        )
    )
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    sentences, pairs = rehearsal_pairs(work)
    pairs = recipe.training_pairs(pairs)
    print(
        f"recipe: {recipe.base_model}, {recipe.pooling} pooling, batch {recipe.batch_size}, "
        f"GradCache mini-batch {recipe.mini_batch_size}, hard negatives "
        f"{recipe.use_hard_negatives}, checkpointing {recipe.gradient_checkpointing}; "
        f"{len(pairs)} pairs"
    )

    # -- training: the recipe's own train(), steps timed by the trainer
    with Meter(cuda) as meter:
        result = train(pairs, recipe, work / "model")
    runtime = float(result.history["train_runtime"].dropna().iloc[-1])
    step_seconds = runtime / max(result.global_step, 1)
    model = result.model
    base_parameters = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    tokens_per_text = mean_tokens(
        model.tokenizer,
        pairs["anchor"].tolist() + pairs["positive"].tolist(),
        recipe.max_seq_length,
    )
    texts_per_step = recipe.batch_size * (3 if recipe.use_hard_negatives else 2)
    train_tps = texts_per_step * tokens_per_text / step_seconds
    print(
        f"training:     {train_tps:10,.0f} tokens/s  {step_seconds:7.3f} s/step  "
        f"peak {gib(meter.peak)}  ({result.global_step} steps, {base_parameters / 1e6:.0f}M "
        "parameters)"
    )

    # -- encoding: the trained model over the corpus sentences
    texts = (sentences["text"].tolist() * 8)[:2048]
    model.eval()
    with Meter(cuda) as meter:
        model.encode(texts, batch_size=64)
    encode_tps = len(texts) * mean_tokens(model.tokenizer, texts, recipe.max_seq_length)
    encode_tps /= meter.seconds
    batch_seconds = meter.seconds / -(-len(texts) // 64)
    print(
        f"encoding:     {encode_tps:10,.0f} tokens/s  {batch_seconds:7.3f} s/batch of 64  "
        f"peak {gib(meter.peak)}"
    )
    del model, result
    if cuda:
        torch.cuda.empty_cache()

    # -- paraphrasing: the local instruction model on the textbook's sentences
    generation = notebook_values("01", "paper")  # the paper profile's generation settings
    batch = generation["paraphrase_batch_size"]
    chosen = sentences["text"].head(args.sentences).tolist()
    with Meter(cuda) as meter:
        replies, _ = paraphrase_replies(
            chosen,
            args.paraphrase_model,
            max_new_tokens=generation["paraphrase_max_new_tokens"],
            batch_size=batch,
            cache=None,
            dtype=dtype,
        )
    lm, tokenizer = load_causal_lm(args.paraphrase_model, dtype=dtype)
    lm_parameters = sum(p.numel() for p in lm.parameters())
    new_tokens = mean_tokens(tokenizer, replies or ["x"], 10_000)  # the tokens generated
    n_done = len(chosen)
    paraphrase_tps = n_done * new_tokens / meter.seconds
    print(
        f"paraphrasing: {paraphrase_tps:10,.0f} new tokens/s  "
        f"{meter.seconds / -(-n_done // batch):7.3f} s/batch of {batch}  peak {gib(meter.peak)}  "
        f"({n_done} sentences, {lm_parameters / 1e6:.0f}M parameters)"
    )

    # -- the paper's profile, by parameters x tokens
    projected = paper_hours(train_tps, base_parameters, paraphrase_tps, lm_parameters, encode_tps)
    corpus = paper.CORPUS
    print(
        "the paper profile, projected (time ~ parameters x tokens; an upper bound from a "
        "small model):"
    )
    for stage, what in (
        ("paraphrasing", f"paraphrasing {corpus['sentences']:,} sentences"),
        ("training", f"training 2 epochs of {corpus['train_triplets']:,} triplets"),
        ("encoding", "encoding the held-out pairs"),
    ):
        print(f"  {what + ':':44s}{projected[stage]:.1f} h")
    print(
        f"  the paper's own training time: {paper.RECIPE['training_minutes'] / 60:.1f} h on "
        f"{paper.RECIPE['gpu']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
