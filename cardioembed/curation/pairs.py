"""Training pairs (`PAIR_COLUMNS`): the row that notebook 01's pair strategies share, the
replies of a local instruction model that notebook 01 makes paraphrase pairs of, and
negatives. ``pair_id`` hashes anchor and positive (the same in any run and order);
``group`` is the leakage unit (HPO term, ICD-10-CM code, textbook passage);
``negative_group`` says where a negative is from; ``region`` (HPO branch, ICD-10-CM
block, chapter) tells *distant* negatives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cardioembed.artifacts import params_hash, tolerate_cache, write_json
from cardioembed.curation.dedup import normalise_for_dedup as _norm
from cardioembed.envinfo import format_duration
from cardioembed.models import load_resolved, model_identity, torch_dtype

logger = logging.getLogger(__name__)

PAIR_COLUMNS = "pair_id source kind group anchor positive negative negative_group region position"
PAIR_COLUMNS = PAIR_COLUMNS.split()
PAIR_KINDS = "name-definition synonym-definition inclusion-description adjacent paraphrase".split()


def clean_text(value) -> str:
    """A clean one-line text: whitespace collapsed; '' for None/NaN."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return " ".join(str(value).split())


def pair_row(source, kind, group, anchor, positive, region=None, position=None) -> dict:
    """A row of `PAIR_COLUMNS` without a negative."""
    digest = hashlib.sha1(f"{anchor}\x1f{positive}".encode(), usedforsecurity=False).hexdigest()
    return {
        "pair_id": f"{source}:{group}:{kind}:{digest[:10]}",
        **dict(source=source, kind=kind, group=group, anchor=anchor, positive=positive),
        **dict(negative=None, negative_group=None, region=region, position=position),
    }


def pairs_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    frame = frame.astype({"negative": object, "negative_group": object, "position": object})
    return frame.drop_duplicates("pair_id").reset_index(drop=True)  # the pair id is the key


# Chosen on SmolLM2-135M-Instruct (greedy): a system prompt asking for "different words"
# and a worked example both made it copy most sentences verbatim; this plain request
# changed most of them (it tends to add a clause, which notebook 01's cleaning cuts off).
PARAPHRASE_INSTRUCTION = "Rewrite the following sentence in your own words."
# Greedy decoding, whatever the model's own generation config says.
GREEDY = dict(do_sample=False, num_beams=1, repetition_penalty=1.0)
GREEDY |= dict.fromkeys(("temperature", "top_p", "top_k"))
CACHE_SECONDS = 30.0  # rewrite the paraphrase cache at least this often while generating
PROGRESS_SECONDS = 60.0


def load_causal_lm(name: str, dtype: str = "auto"):
    """(model, tokenizer) in eval mode, on the GPU when there is one, padding on the left
    (batched prompts end where the output starts)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = load_resolved(
        name,
        "paraphrase_model",
        lambda location: (
            AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype(dtype)),
            AutoTokenizer.from_pretrained(location, padding_side="left"),
        ),
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if torch.cuda.is_available():
        model.to("cuda")
    return model.eval(), tokenizer


def paraphrase_replies(
    texts: list[str],
    model: str,
    *,
    max_new_tokens: int,
    batch_size: int,
    cache: Path | None,
    dtype: str = "auto",
) -> tuple[list[str], int]:
    """(the reply of a local instruction model to `PARAPHRASE_INSTRUCTION` for each of
    `texts`, how many replies came from `cache`): greedy, batched by length. `cache`: a
    JSON file of the replies, keyed by sentence and all a reply depends on (model content,
    dtype, device class, batching, generation settings), saved as it grows and at the end,
    also on an interruption, so a restarted run generates only what it lacks."""
    import torch

    done = {}
    if cache is not None and Path(cache).is_file():
        with tolerate_cache(cache):  # unreadable: the sentences are paraphrased again
            done = dict(json.loads(Path(cache).read_text())["replies"])
    settings = {"model": model_identity(model), "dtype": str(torch_dtype(dtype))}
    settings["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    settings |= dict(instruction=PARAPHRASE_INSTRUCTION, max_new_tokens=max_new_tokens)
    settings = params_hash({**settings, "batch_size": batch_size, **GREEDY}, 64)
    keys = [params_hash({"settings": settings, "sentence": t}, 40) for t in texts]
    todo = [i for i, k in enumerate(keys) if k not in done]
    n_cached = len(texts) - len(todo)
    if not todo:  # the model loads only for what the cache lacks
        return [done[k] for k in keys], n_cached
    lm, tokenizer = load_causal_lm(model, dtype)

    def prompt(sentence: str) -> str:
        if getattr(tokenizer, "chat_template", None):
            turn = [{"role": "user", "content": f"{PARAPHRASE_INSTRUCTION}\n\n{sentence}"}]
            return tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
        return f"{PARAPHRASE_INSTRUCTION}\n\nSentence: {sentence}\nRewritten:"  # a base model

    prompts = {i: prompt(texts[i]) for i in todo}
    order = sorted(todo, key=lambda i: len(prompts[i]))  # less padding per batch
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    started = last_save = last_report = time.perf_counter()
    finished = 0
    try:
        with torch.inference_mode():
            for number, index in enumerate(batches, 1):
                batch = [prompts[i] for i in index]
                encoded = tokenizer(
                    batch, return_tensors="pt", padding=True, add_special_tokens=False
                ).to(lm.device)
                generated = lm.generate(
                    **encoded,
                    **GREEDY,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                )
                new_tokens = generated[:, encoded["input_ids"].shape[1] :]  # strip the prompt
                replies = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
                done.update(zip((keys[i] for i in index), replies, strict=True))
                finished += len(index)
                now = time.perf_counter()
                # the first estimate after two batches (the first one also loads kernels);
                # batches go short to long, so the estimate errs on the short side
                if number == 2 < len(batches) or now - last_report > PROGRESS_SECONDS:
                    left = (now - started) / number * (len(batches) - number)
                    message = "paraphrased %d of %d sentences, about %s left"
                    logger.info(message, finished, len(todo), format_duration(left))
                    last_report = now
                if cache is not None and now - last_save > CACHE_SECONDS:
                    with tolerate_cache(cache):
                        write_json(cache, {"replies": done})
                    last_save = now
    finally:
        if finished and cache is not None:
            with tolerate_cache(cache):
                write_json(cache, {"replies": done})
    return [done[k] for k in keys], n_cached


def _group_texts(pairs: pd.DataFrame) -> dict[str, set[str]]:
    """Normalised texts (anchors and positives) of each group."""
    texts: dict[str, set[str]] = {}
    for group, anchor, positive in pairs[["group", "anchor", "positive"]].to_numpy():
        texts.setdefault(str(group), set()).update((_norm(anchor), _norm(positive)))
    return texts


def add_random_distant_negatives(pairs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Fill ``negative`` with a random positive text "from a distant part of the corpus"
    (the paper): another region of the pair's source, else another group, else another
    source (fallbacks counted in ``result.attrs["negatives"]``), never a text of the
    pair's group; None when impossible. Deterministic for a seed, whatever the row order."""
    result = pairs.assign(negative=None, negative_group=None)
    report = dict(pairs=len(result), filled=0, fallback_group=0, fallback_source=0, missing=0)
    rng = np.random.default_rng(seed)
    group_texts = _group_texts(result)
    # the candidates: unique positive texts with their group, region and source
    pool = (
        result[["positive", "group", "region", "source"]]
        .astype(object)
        .sort_values(["positive", "group"], kind="stable")
        .drop_duplicates("positive")
    )
    pool_text = pool["positive"].to_numpy(dtype=object)
    pool_norm = np.array([_norm(t) for t in pool_text], dtype=object)
    pool_group, pool_region, pool_source = (
        pool[c].astype(str).to_numpy(dtype=object) for c in ("group", "region", "source")
    )
    by_source = {s: np.flatnonzero(pool_source == s) for s in np.unique(pool_source)}
    n_regions = {s: len(set(pool_region[ix])) for s, ix in by_source.items()}
    n_regions[None] = len(set(pool_region))
    everything = np.arange(len(pool))

    def draw(scope, by_region: bool, group: str, region: str, forbidden: set[str]):
        """A random acceptable pool index of `scope`: sampling first, then exhaustively."""
        for d in rng.integers(0, len(scope), size=min(64, len(scope))):
            j = int(scope[d])
            if pool_group[j] != group and pool_norm[j] not in forbidden:
                if not by_region or pool_region[j] != region:
                    return j
        mask = pool_group[scope] != group
        if by_region:
            mask &= pool_region[scope] != region
        left = [int(j) for j in scope[mask] if pool_norm[j] not in forbidden]
        return left[int(rng.integers(0, len(left)))] if left else None

    negatives = np.full(len(result), None, dtype=object)
    negative_groups = np.full(len(result), None, dtype=object)
    sources, groups, regions = (
        result[c].astype(str).to_numpy(dtype=object) for c in ("source", "group", "region")
    )
    for idx in np.argsort(result["pair_id"].to_numpy(dtype=str), kind="stable"):
        group, region, source = groups[idx], regions[idx], sources[idx]
        forbidden = group_texts[group]  # the pair's own texts among them
        # the pair's source by region, then by group; then any source, likewise
        attempts = (
            (name, scope, by_region)
            for name, scope in ((source, by_source[source]), (None, everything))
            for by_region in ((True, False) if n_regions[name] > 1 else (False,))
        )
        for name, scope, by_region in attempts:
            chosen = draw(scope, by_region, group, region, forbidden)
            if chosen is not None:
                negatives[idx], negative_groups[idx] = pool_text[chosen], pool_group[chosen]
                report["filled"] += 1
                report["fallback_group"] += not by_region
                report["fallback_source"] += name is None
                break
        else:
            report["missing"] += 1
    result["negative"] = pd.Series(negatives, index=result.index, dtype=object)
    result["negative_group"] = pd.Series(negative_groups, index=result.index, dtype=object)
    if report["missing"] or report["fallback_group"] or report["fallback_source"]:
        logger.info("random distant negatives: %s", report)
    result.attrs["negatives"] = report
    return result


# Mining: a candidate must score at least 5% below the positive (NV-Retriever's
# "TopK-PercPos"), which skips likely false negatives; the 10 best are looked at.
MINING_MARGIN = 0.05
MINING_CANDIDATES = 10


def add_mined_hard_negatives(pairs: pd.DataFrame, model) -> pd.DataFrame:
    """Fill ``negative`` with the candidate of ``mine_hard_negatives`` (`model` over the
    positives) most similar that is no text of the pair's group (it only excludes the
    pair's positive); else None. Counts in ``result.attrs["negatives"]``."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    result = pairs.assign(negative=None, negative_group=None)
    anchors = result["anchor"].astype(str).tolist()
    positives = result["positive"].astype(str).tolist()
    candidates: dict[tuple[str, str], list[str]] = {}
    if len(set(positives)) >= 2:  # mine_hard_negatives needs candidates besides the positive
        mined = mine_hard_negatives(
            Dataset.from_dict({"anchor": anchors, "positive": positives}),
            model,
            relative_margin=MINING_MARGIN,
            num_negatives=min(MINING_CANDIDATES, len(set(positives)) - 1),
            sampling_strategy="top",
            output_format="labeled-list",
            verbose=False,
        )
        # labeled-list: anchor, [positive, candidate_1, ...] (candidates best first)
        for anchor, docs in zip(mined["anchor"], mined["positive"], strict=True):
            candidates.setdefault((anchor, docs[0]), docs[1:])
    group_texts = _group_texts(result)
    # the group of each text: its first pair's
    text_groups = result.drop_duplicates("positive").set_index("positive")["group"]
    found = []
    for group, anchor, positive in zip(result["group"], anchors, positives, strict=True):
        options = candidates.get((anchor, positive), [])
        found.append(next((c for c in options if _norm(c) not in group_texts[str(group)]), None))
    result["negative"] = pd.Series(found, index=result.index, dtype=object)
    result["negative_group"] = pd.Series(
        [text_groups.get(n) if n else None for n in found], index=result.index, dtype=object
    )
    missing = sum(n is None for n in found)
    result.attrs["negatives"] = dict(pairs=len(result), mined=len(found) - missing, missing=missing)
    if missing:
        logger.warning("mined hard negatives: none found for %d of %d pairs", missing, len(result))
    return result
