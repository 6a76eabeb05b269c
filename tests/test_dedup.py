import dataclasses

import numpy as np
import pandas as pd
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH

from cardioembed.curation.dedup import (
    AUDIT_COLUMNS,
    DedupResult,
    char_shingles,
    deduplicate,
    exact_duplicate_mask,
    minhash_signatures,
    near_duplicate_audit,
    near_duplicate_clusters,
    normalise_for_dedup,
    shingle_hash32,
    to_lean_minhashes,
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


def test_normalise_casefolds_strips_punctuation_and_collapses_whitespace():
    assert normalise_for_dedup("  The Left-Ventricular\tejection  fraction: 35%! ") == (
        "the left ventricular ejection fraction 35"
    )
    # The non-ASCII path (NFKC, casefold, regex) agrees with the ASCII fast path.
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


def test_exact_duplicate_mask_marks_later_copies_of_case_and_whitespace_variants():
    texts = [
        "Heart failure is common.",
        "heart   failure is COMMON",
        "Heart failure is rare.",
        "HEART FAILURE, IS COMMON!",
        "Heart failure is rare.",
    ]
    mask = exact_duplicate_mask(texts)
    assert mask.dtype == bool
    assert mask.tolist() == [False, True, False, True, True]
    assert exact_duplicate_mask([]).tolist() == []


def test_exact_duplicate_mask_rejects_a_single_string():
    with pytest.raises(ParameterError, match="texts"):
        exact_duplicate_mask("one string")


def test_signatures_equal_datasketch_minhash_of_the_same_shingles():
    texts = [LONG, "AF", "", "Mitral regurgitation: severe!", *UNRELATED]
    sig = minhash_signatures(texts, num_perm=32, seed=7)
    assert sig.shape == (len(texts), 32) and sig.dtype == np.uint32
    for text, row in zip(texts, sig, strict=False):
        m = MinHash(num_perm=32, seed=7, scheme="affine32", hashfunc=shingle_hash32)
        m.update_batch(char_shingles(normalise_for_dedup(text)))
        np.testing.assert_array_equal(m.hashvalues, row)


def test_signatures_do_not_depend_on_batching_or_threads():
    texts = [f"{UNRELATED[i % 5]} Case number {i}." for i in range(9000)]
    one = minhash_signatures(texts, workers=1)
    two = minhash_signatures(texts, workers=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one[[10, 8000]], minhash_signatures([texts[10], texts[8000]]))


def test_lean_minhashes_work_in_a_datasketch_lsh_and_estimate_jaccard():
    sig = minhash_signatures([LONG, LONG_ONE_WORD_CHANGED, UNRELATED[0]], num_perm=128)
    a, b, c = to_lean_minhashes(sig)
    assert isinstance(a, LeanMinHash)
    np.testing.assert_array_equal(b.hashvalues, sig[1])
    true_a = set(char_shingles(normalise_for_dedup(LONG)))
    true_b = set(char_shingles(normalise_for_dedup(LONG_ONE_WORD_CHANGED)))
    exact = len(true_a & true_b) / len(true_a | true_b)
    assert exact > 0.85
    assert abs(a.jaccard(b) - exact) < 0.12
    assert a.jaccard(c) < 0.2
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    lsh.insert("a", a)
    lsh.insert("c", c)
    assert lsh.query(b) == ["a"]


def test_near_duplicate_with_one_word_changed_is_found_and_unrelated_are_not():
    texts = [LONG, *UNRELATED, LONG_ONE_WORD_CHANGED]
    labels = near_duplicate_clusters(texts, threshold=0.8)
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 0]


def test_near_duplicate_clusters_are_transitive_and_numbered_by_first_text():
    b = LONG_ONE_WORD_CHANGED
    c = b.replace("hospital", "clinic")
    sig = minhash_signatures([LONG, b, c], num_perm=128)
    # LONG ~ b and b ~ c, but LONG and c are not near duplicates themselves.
    assert (sig[0] == sig[1]).mean() >= 0.8 and (sig[1] == sig[2]).mean() >= 0.8
    assert (sig[0] == sig[2]).mean() < 0.8
    texts = [UNRELATED[0], c, UNRELATED[1], LONG, b, UNRELATED[0].upper()]
    labels = near_duplicate_clusters(texts, threshold=0.8, num_perm=128)
    assert labels.tolist() == [0, 1, 2, 1, 1, 0]


def test_a_chain_of_near_duplicates_is_one_cluster_even_when_its_ends_differ():
    # A long text edited one word at a time: each step stays well above the threshold,
    # the two ends of the chain are far below it.
    chain = [f"{LONG} {UNRELATED[1]}"]
    edits = ["lowers reduces", "hospital clinic", "mortality death", "treatment therapy"]
    for old, new in [*(e.split() for e in edits), ("commonest", "most common")]:
        chain.append(chain[-1].replace(old, new))
    sig = minhash_signatures(chain, num_perm=128)
    assert all((sig[i] == sig[i + 1]).mean() >= 0.9 for i in range(len(chain) - 1))
    assert (sig[0] == sig[-1]).mean() < 0.7
    texts = [chain[5], UNRELATED[0], chain[0], chain[3], chain[2], UNRELATED[2], *chain[1:5:3]]
    labels = near_duplicate_clusters(texts, threshold=0.8, num_perm=128)
    assert labels.tolist() == [0, 1, 0, 0, 0, 2, 0, 0]
    result = deduplicate(texts, threshold=0.8, num_perm=128)
    assert result.keep.tolist() == [True, True] + [False] * 3 + [True] + [False] * 2
    assert result.n_near_removed == 5 and result.n_exact_removed == 0


def test_threshold_is_validated_with_the_parameter_named():
    for bad in (0, 0.0, -0.1, 1.5, "high", None, True):
        with pytest.raises(ParameterError, match="near_duplicate_threshold") as info:
            near_duplicate_clusters(UNRELATED, threshold=bad)
        assert isinstance(info.value, InputError)
    assert near_duplicate_clusters(UNRELATED, threshold=1.0).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("bad", [1, 0, 2.5, "64", True])
def test_num_perm_is_validated_with_the_parameter_named(bad):
    with pytest.raises(ParameterError, match="num_perm.*whole number of at least 2"):
        deduplicate(UNRELATED, threshold=0.8, num_perm=bad)


def test_texts_must_be_strings():
    with pytest.raises(ParameterError, match="item 1 is a NoneType"):
        near_duplicate_clusters(["A sentence.", None])
    with pytest.raises(ParameterError, match="train_texts"):
        near_duplicate_audit("one string", UNRELATED)


def test_deduplicate_keeps_first_of_each_cluster_and_counts_why():
    texts = [
        LONG,
        UNRELATED[0],
        LONG.upper(),  # exact copy after normalisation
        LONG_ONE_WORD_CHANGED,  # near copy
        UNRELATED[1],
        "  " + UNRELATED[1].lower() + " ",  # exact copy
    ]
    result = deduplicate(texts, threshold=0.8)
    assert isinstance(result, DedupResult)
    assert result.keep.tolist() == [True, True, False, False, True, False]
    assert result.n_exact_removed == 2
    assert result.n_near_removed == 1
    assert result.n_kept == 3 and result.n_removed == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.n_near_removed = 0  # frozen


def test_deduplicate_handles_empty_input():
    result = deduplicate([], threshold=0.8)
    assert result.keep.tolist() == [] and result.n_exact_removed == result.n_near_removed == 0


def test_audit_finds_a_planted_leak_and_exact_copies():
    train = [LONG, *UNRELATED[:3]]
    test = [
        "Hypertrophic cardiomyopathy is inherited as an autosomal dominant trait.",
        LONG_ONE_WORD_CHANGED,
        UNRELATED[3],
        UNRELATED[1].upper(),
    ]
    audit = near_duplicate_audit(train, test, threshold=0.8)
    assert isinstance(audit, pd.DataFrame)
    assert list(audit.columns) == AUDIT_COLUMNS
    assert audit["test_index"].tolist() == [1, 3]
    assert audit["train_index"].tolist() == [0, 2]
    assert audit["test_text"].tolist() == [LONG_ONE_WORD_CHANGED, UNRELATED[1].upper()]
    assert audit["train_text"].tolist() == [LONG, UNRELATED[1]]
    assert 0.8 <= audit["jaccard"].iloc[0] < 1.0
    assert audit["jaccard"].iloc[1] == 1.0


def test_audit_reports_the_most_similar_training_text():
    two_changes = LONG_ONE_WORD_CHANGED.replace("hospital", "clinic")
    sig = minhash_signatures([LONG, LONG_ONE_WORD_CHANGED, two_changes], num_perm=128)
    assert (sig[0] == sig[2]).mean() < (sig[0] == sig[1]).mean()
    train = [two_changes, UNRELATED[0], LONG_ONE_WORD_CHANGED]
    audit = near_duplicate_audit(train, [LONG], threshold=0.7, num_perm=128)
    assert audit["train_index"].tolist() == [2]
    assert audit["jaccard"].iloc[0] == (sig[0] == sig[1]).mean()


def test_audit_of_unrelated_texts_is_empty_with_the_columns():
    audit = near_duplicate_audit(UNRELATED[:3], UNRELATED[3:], threshold=0.8)
    assert audit.empty and list(audit.columns) == AUDIT_COLUMNS
    assert near_duplicate_audit([], UNRELATED).empty
    with pytest.raises(ParameterError, match="near_duplicate_threshold"):
        near_duplicate_audit(UNRELATED, UNRELATED, threshold=2)
