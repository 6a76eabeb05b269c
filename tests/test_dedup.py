import numpy as np
import pandas as pd
import pytest
from datasketch import LeanMinHash, MinHashLSH

from cardioembed.curation.dedup import (
    AUDIT_COLUMNS,
    deduplicate,
    minhashes,
    near_duplicate_audit,
    near_duplicate_clusters,
    normalise_for_dedup,
)
from cardioembed.errors import InputError, ParameterError

LONG = (
    "In patients with heart failure and a reduced left ventricular ejection fraction, "
    "treatment with a beta blocker lowers mortality and the rate of hospital admission."
)
LONG_ONE_WORD_CHANGED = LONG.replace("lowers", "reduces")
UNRELATED = [
    "Aortic stenosis is most often caused by calcification of a normal or bicuspid valve.",
    "Atrial fibrillation is the commonest sustained arrhythmia seen in adult practice.",
    "The electrocardiogram shows ST elevation in the inferior leads II, III and aVF.",
    "Pericarditis typically causes pleuritic chest pain relieved by sitting forward.",
    "Infective endocarditis should be suspected in any patient with fever and a new murmur.",
]


def similarity(a: str, b: str) -> float:
    first, second = minhashes([normalise_for_dedup(a), normalise_for_dedup(b)])
    return first.jaccard(second)


def test_normalise_casefolds_strips_punctuation_and_collapses_whitespace():
    assert normalise_for_dedup("  The Left-Ventricular\tejection  fraction: 35%! ") == (
        "the left ventricular ejection fraction 35"
    )
    assert normalise_for_dedup("ＡＦ – “ﬁbrillation”") == "af fibrillation"
    assert normalise_for_dedup("STRASSE") == normalise_for_dedup("Straße")
    assert normalise_for_dedup("...!") == ""
    assert normalise_for_dedup(35) == "35"  # not a string: converted with str


def test_suites_and_pairs_compare_texts_by_the_same_key():
    from cardioembed.curation import pairs
    from cardioembed.evaluation import suites

    variants = ["Heart-failure, acute.", "heart failure acute", "HEART FAILURE: ACUTE!"]
    for normalise in (suites.normalise, pairs._norm):
        assert {normalise(v) for v in variants} == {normalise_for_dedup(variants[0])}


def test_minhashes_are_datasketch_minhashes_that_estimate_jaccard():
    a, b, c = minhashes(
        [normalise_for_dedup(t) for t in (LONG, LONG_ONE_WORD_CHANGED, UNRELATED[0])]
    )
    assert isinstance(a, LeanMinHash)
    grams = [
        {t[i : i + 5] for i in range(len(t) - 4)}
        for t in map(normalise_for_dedup, (LONG, LONG_ONE_WORD_CHANGED))
    ]
    exact = len(grams[0] & grams[1]) / len(grams[0] | grams[1])
    assert exact > 0.82 and abs(a.jaccard(b) - exact) < 0.12 and a.jaccard(c) < 0.2
    lsh = MinHashLSH(threshold=0.8, num_perm=len(a.hashvalues))
    lsh.insert("a", a)
    lsh.insert("c", c)
    assert lsh.query(b) == ["a"]
    # the same text gives the same signature in every run (datasketch's fixed seed)
    np.testing.assert_array_equal(
        minhashes(["heart"])[0].hashvalues, minhashes(["heart"])[0].hashvalues
    )


def test_near_duplicate_with_one_word_changed_is_found_and_unrelated_are_not():
    labels = near_duplicate_clusters([LONG, *UNRELATED, LONG_ONE_WORD_CHANGED], 0.8)
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 0]


def test_near_duplicate_clusters_are_transitive_and_numbered_by_first_text():
    b = LONG_ONE_WORD_CHANGED
    c = b.replace("hospital", "clinic")
    # LONG ~ b and b ~ c, but LONG and c are not near duplicates themselves.
    assert similarity(LONG, b) >= 0.82 and similarity(b, c) >= 0.82 > similarity(LONG, c)
    texts = [UNRELATED[0], c, UNRELATED[1], LONG, b, UNRELATED[0].upper()]
    assert near_duplicate_clusters(texts, 0.82).tolist() == [0, 1, 2, 1, 1, 0]


def test_a_chain_of_near_duplicates_is_one_cluster_even_when_its_ends_differ():
    # A long text edited one word at a time: each step stays above the threshold, the
    # two ends of the chain far below it.
    chain = [f"{LONG} {UNRELATED[1]}"]
    edits = ["lowers reduces", "hospital clinic", "mortality death", "treatment therapy"]
    for old, new in [*(e.split() for e in edits), ("commonest", "most common")]:
        chain.append(chain[-1].replace(old, new))
    assert all(similarity(a, b) >= 0.82 for a, b in zip(chain, chain[1:], strict=False))
    assert similarity(chain[0], chain[-1]) < 0.7
    texts = [chain[5], UNRELATED[0], chain[0], chain[3], chain[2], UNRELATED[2], *chain[1:5:3]]
    assert near_duplicate_clusters(texts, 0.82).tolist() == [0, 1, 0, 0, 0, 2, 0, 0]
    keep, n_exact, n_near = deduplicate(texts, 0.82)
    assert keep.tolist() == [True, True] + [False] * 3 + [True] + [False] * 2
    assert n_near == 5 and n_exact == 0


def test_threshold_is_validated_with_the_parameter_named():
    for bad in (0, 0.0, -0.1, 1.5, "high", None, True):
        with pytest.raises(ParameterError, match="near_duplicate_threshold") as info:
            near_duplicate_clusters(UNRELATED, bad)
        assert isinstance(info.value, InputError)
    assert near_duplicate_clusters(UNRELATED, 1.0).tolist() == [0, 1, 2, 3, 4]


def test_deduplicate_keeps_first_of_each_cluster_and_counts_why():
    texts = [
        LONG,
        UNRELATED[0],
        LONG.upper(),  # exact copy after normalisation
        LONG_ONE_WORD_CHANGED,  # near copy
        UNRELATED[1],
        "  " + UNRELATED[1].lower() + " ",  # exact copy
    ]
    keep, n_exact, n_near = deduplicate(texts, 0.8)
    assert keep.tolist() == [True, True, False, False, True, False]
    assert n_exact == 2 and n_near == 1
    keep, n_exact, n_near = deduplicate([], 0.8)
    assert keep.tolist() == [] and n_exact == n_near == 0


def test_audit_finds_a_planted_leak_and_exact_copies():
    train = [LONG, *UNRELATED[:3]]
    test = [
        "Hypertrophic cardiomyopathy is inherited as an autosomal dominant trait.",
        LONG_ONE_WORD_CHANGED,
        UNRELATED[3],
        UNRELATED[1].upper(),
    ]
    audit = near_duplicate_audit(train, test, 0.8)
    assert list(audit.columns) == AUDIT_COLUMNS
    assert audit["test_index"].tolist() == [1, 3]
    assert audit["train_index"].tolist() == [0, 2]
    assert audit["test_text"].tolist() == [LONG_ONE_WORD_CHANGED, UNRELATED[1].upper()]
    assert audit["train_text"].tolist() == [LONG, UNRELATED[1]]
    assert 0.8 <= audit["jaccard"].iloc[0] < 1.0
    assert audit["jaccard"].iloc[1] == 1.0


def test_audit_reports_the_most_similar_training_text():
    two_changes = LONG_ONE_WORD_CHANGED.replace("hospital", "clinic")
    assert similarity(LONG, two_changes) < similarity(LONG, LONG_ONE_WORD_CHANGED)
    audit = near_duplicate_audit([two_changes, UNRELATED[0], LONG_ONE_WORD_CHANGED], [LONG], 0.7)
    assert audit["train_index"].tolist() == [2]
    assert audit["jaccard"].iloc[0] == similarity(LONG, LONG_ONE_WORD_CHANGED)


def test_audit_of_unrelated_texts_is_empty_with_the_columns():
    audit = near_duplicate_audit(UNRELATED[:3], UNRELATED[3:], 0.8)
    assert isinstance(audit, pd.DataFrame) and audit.empty
    assert list(audit.columns) == AUDIT_COLUMNS
    assert near_duplicate_audit([], UNRELATED, 0.8).empty
    with pytest.raises(ParameterError, match="near_duplicate_threshold"):
        near_duplicate_audit(UNRELATED, UNRELATED, 2)
