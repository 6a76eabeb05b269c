"""Benchmark of the teaching profile's main training run (notebook 02), and of the same
training written as a plain sentence-transformers script.

    python benchmarks/training.py [--steps N]

1. `ours`: `cardioembed.training.recipe.train` with the teaching profile's recipe (read from
   profiles/teaching.yaml) on the teaching corpus, a whole run as notebook 02 does it:
   model building, LoRA, validation every `eval_steps`, saving. Target: under 120 s on
   2 cores.
2. `plain`: SentenceTransformer + peft LoraConfig + MultipleNegativesRankingLoss +
   SentenceTransformerTrainer, written directly, with identical settings and no
   evaluator, for `--steps` steps; `ours` is then run for the same steps without
   validation, three ways (seconds per step from the trainers' own `train_runtime`):
   - `bare`: the frozen lower layers computed on every step, as `plain` does: like with
     like, the ratio bare / plain is what the study's wrapper costs (target: at most 1.1);
   - `first run`: the layers below the adapter (`lora_top_layers`) computed once per text
     and kept (`training.frozen`), the store empty at the start, as for the first run of
     a process;
   - `later run`: another seed with the store full, as every later point of a sweep.
     What differs from `plain`: the frozen layers are not run again, and they run without
     dropout (their outputs are the same in every run).

The teaching corpus is read from runs/teaching/corpus (notebook 01), or curated into a
temporary folder if missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 120.0
TARGET_RATIO = 1.1


def teaching_recipe():
    """The teaching profile's recipe, as notebook 02 builds it."""
    from cardioembed.profiles import notebook_values
    from cardioembed.training.recipe import Recipe

    p = notebook_values("02", "teaching")
    return p, Recipe.from_parameters(p)


def teaching_pairs(recipe):
    from cardioembed.book.runner import run_profile
    from cardioembed.curation.corpus import load_corpus
    from cardioembed.errors import InputError
    from cardioembed.profiles import load_profile

    folder = ROOT / "runs" / "teaching" / "corpus"
    try:
        corpus = load_corpus(folder)
    except InputError:  # no finished teaching corpus: curate one, as notebook 01 would
        runs_root = tempfile.mkdtemp()
        run_profile(load_profile("teaching").with_overrides({"runs_root": runs_root}), only=["01"])
        corpus = load_corpus(Path(runs_root) / "teaching" / "corpus")
    return recipe.training_pairs(corpus["pairs"])


def plain_seconds_per_step(pairs, p, steps: int, output_dir: str) -> float:
    """The same training, written as a user of sentence-transformers would."""
    from datasets import Dataset
    from peft import LoraConfig, TaskType
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses, modules
    from transformers import set_seed

    from cardioembed.models import minilm
    from cardioembed.training.recipe import POOLINGS

    set_seed(p["train_seed"])
    transformer = modules.Transformer(minilm(), max_seq_length=p["max_seq_length"])
    model = SentenceTransformer(
        modules=[
            transformer,
            modules.Pooling(
                transformer.get_embedding_dimension(), pooling_mode=POOLINGS[p["pooling"]]
            ),
            modules.Normalize(),
        ],
        device="cpu",
    )
    n_layers = model.transformers_model.config.num_hidden_layers
    top = p["lora_top_layers"]
    model.add_adapter(
        LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=p["lora_rank"],
            lora_alpha=p["lora_alpha"],
            lora_dropout=p["lora_dropout"],
            target_modules=["query", "key", "value", "dense"],  # BERT's linear layers
            exclude_modules=r".*pooler.*",
            layers_to_transform=list(range(n_layers - top, n_layers)) if top else None,
        )
    )
    train = pairs[pairs["split"] == "train"][["anchor", "positive"]].reset_index(drop=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=p["batch_size"],
        learning_rate=p["learning_rate"],
        warmup_steps=p["warmup_ratio"],
        lr_scheduler_type="cosine",
        seed=p["train_seed"],
        data_seed=p["train_seed"],
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_pandas(train, preserve_index=False),
        loss=losses.MultipleNegativesRankingLoss(model, scale=1 / p["temperature"]),
    )
    output = trainer.train()
    return output.metrics["train_runtime"] / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", type=int, default=20, help="steps of the ours-vs-plain comparison (default 20)"
    )
    parser.add_argument(
        "--skip-full-run", action="store_true", help="only the ours-vs-plain comparison"
    )
    args = parser.parse_args()

    import pandas as pd
    import torch

    from cardioembed.training import frozen
    from cardioembed.training import recipe as recipe_module
    from cardioembed.training.recipe import train

    p, recipe = teaching_recipe()
    pairs = teaching_pairs(recipe)
    n_train = int((pairs["split"] == "train").sum())
    print(
        f"teaching recipe: {n_train} train pairs, batch {recipe.batch_size}, "
        f"{recipe.epochs:g} epoch(s), max length {recipe.max_seq_length}, "
        f"LoRA r{recipe.lora_rank} on the last {recipe.lora_top_layers or 'all'} layers; "
        f"{torch.get_num_threads()} threads"
    )
    work = Path(tempfile.mkdtemp(prefix="cardioembed-bench-train-"))
    models = work / "models"  # as runs/<profile>/models: the frozen store goes in work/cache

    if not args.skip_full_run:
        clock = time.perf_counter()
        result = train(pairs, recipe, models / "full", resume=False)
        seconds = time.perf_counter() - clock
        print(
            f"ours, whole run as notebook 02: {seconds:.1f} s for {result.global_step} steps "
            f"(target < {TARGET_SECONDS:.0f} s: {'met' if seconds < TARGET_SECONDS else 'NOT met'})"
        )

    def ours(recipe, name: str) -> float:
        result = train(pairs, recipe, models / name, resume=False)
        runtime = float(result.history["train_runtime"].dropna().iloc[-1])
        # The trainer validates once at the last step even with eval_steps beyond
        # max_steps; that pass is not a training step, so it is left out.
        history = result.history.get("eval_runtime", pd.Series(dtype=float))
        return (runtime - float(history.fillna(0).sum())) / args.steps

    plain = plain_seconds_per_step(pairs, p, args.steps, str(work / "plain"))
    timed = recipe.replace(max_steps=args.steps, eval_steps=10**6)
    with mock.patch.object(recipe_module, "frozen_lower_layers", _not_shared):
        bare = ours(timed, "bare")
    # the first run of a process: nothing stored yet, in memory or on disk
    frozen.clear()
    shutil.rmtree(work / "cache", ignore_errors=True)
    first = ours(timed, "first")
    # a later point of a sweep finds every training text stored by the points before it
    base = recipe.load_base()
    train_texts = pairs.loc[pairs["split"] == "train", ["anchor", "positive"]]
    with frozen.frozen_lower_layers(base, recipe.frozen_layers(base)):
        base.encode(train_texts.to_numpy().ravel().tolist(), batch_size=64)
    later = ours(timed.replace(train_seed=timed.train_seed + 1), "later")
    ratio = bare / plain
    print(
        f"seconds per step over {args.steps} steps: plain {plain:.3f}; ours bare {bare:.3f} "
        f"(ratio {ratio:.3f}, target <= {TARGET_RATIO}: "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}); ours with the frozen layers "
        f"shared: first run {first:.3f} ({first / plain:.2f} x plain), later runs "
        f"{later:.3f} ({later / plain:.2f} x plain)"
    )
    return 0


@contextlib.contextmanager
def _not_shared(model, n_frozen, store_dir=None):
    yield {"computed": 0, "reused": 0}


if __name__ == "__main__":
    raise SystemExit(main())
