"""Exact duplicates (equal after `normalise_for_dedup`, the package's one comparison key)
and near duplicates (estimated Jaccard of character 5-gram sets at least a threshold, by
datasketch's `MinHash.bulk` and `MinHashLSH`; clusters are connected components), so no
copy of a held-out text is trained on. Character 5-grams rather than word 3-grams: one
word changed in a 20-word sentence leaves a word-3-gram Jaccard of 0.71 (below the usual
0.8) but a character-5-gram one of about 0.85, and they tolerate extraction damage.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
from datasketch import LeanMinHash, MinHash, MinHashLSH
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from cardioembed.errors import ParameterError, check_number

NUM_PERM = 64
NGRAM = 5
SEED = 1
AUDIT_TYPES = {"test_index": "int64", "test_text": object, "train_index": "int64"}
AUDIT_TYPES |= {"train_text": object, "jaccard": "float64"}
AUDIT_COLUMNS = list(AUDIT_TYPES)
_NON_WORD = re.compile(r"[\W_]+")
_POLY = 0x9E3779B97F4A7C15  # multiplier of the polynomial shingle hash (odd, 64-bit)
_EPS = 1e-9  # an estimated Jaccard similarity is a multiple of 1/NUM_PERM


def check_threshold(threshold) -> float:
    expected = (
        "give a number in (0, 1], the Jaccard similarity of character 5-grams at or above "
        "which two texts count as near duplicates; 0.8 is usual"
    )
    if check_number("near_duplicate_threshold", threshold, 0, 1, expected) == 0:
        raise ParameterError("near_duplicate_threshold", threshold, expected)
    return float(threshold)


def normalise_for_dedup(text) -> str:
    """NFKC (a PDF's "ﬁ" is "fi"), casefolded, non-word runs one space, ends stripped."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", str(text)).casefold()).strip()


def _unique(texts) -> tuple[list[str], np.ndarray]:
    """Distinct normalised texts (in order of first appearance), each text's index among them."""
    inverse, uniq = pd.factorize(pd.Series(map(normalise_for_dedup, texts), dtype=object))
    return list(uniq), inverse


def _shingle_hashes(texts: list[str]) -> list[np.ndarray]:
    """A 32-bit hash of every character 5-gram of each text (a shorter text: one 5-gram
    padded with NULs): the upper half of MurmurHash3's 64-bit finalizer of
    sum_k ord(c_k) * P^(k+1) mod 2^64, in numpy over all texts at once. Our own: the
    corpus has always been built with these hashes, and datasketch's default (SHA-1 per
    shingle in Python) takes twice as long as all of `minhashes`."""
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    pad = "\0" * NGRAM  # after each text: no 5-gram runs into the next one
    codes = np.frombuffer((pad.join(texts) + pad).encode("utf-32-le"), dtype=np.uint32)
    counts = np.maximum(lengths - NGRAM + 1, 1)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    starts = np.concatenate([[0], np.cumsum(lengths + NGRAM)[:-1]])
    positions = np.arange(int(counts.sum())) + np.repeat(starts - offsets, counts)
    span = len(codes) - NGRAM + 1
    h = np.zeros(span, dtype=np.uint64)
    power = 1
    with np.errstate(over="ignore"):
        for k in range(NGRAM):
            power = (power * _POLY) & ((1 << 64) - 1)
            h += codes[k : k + span].astype(np.uint64) * np.uint64(power)
        h = h[positions]
        for mult in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
            h = (h ^ (h >> np.uint64(33))) * np.uint64(mult)
        h ^= h >> np.uint64(33)
    return np.split((h >> np.uint64(32)).astype(np.uint32), offsets[1:])


def minhashes(texts: list[str]) -> list[LeanMinHash]:
    """The MinHash of the character 5-grams of each (normalised) text."""
    hashes = _shingle_hashes(texts)
    bulk = MinHash.bulk(hashes, num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=int)
    return [LeanMinHash(m) for m in bulk]


def _index(signatures: list[LeanMinHash], threshold: float) -> MinHashLSH:
    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    except ValueError:
        # Thresholds near 1 make datasketch pick a single band, which it refuses; two
        # bands of NUM_PERM/2 rows find every pair with (nearly) equal signatures.
        lsh = MinHashLSH(num_perm=NUM_PERM, params=(2, NUM_PERM // 2))
    for i, m in enumerate(signatures):
        lsh.insert(i, m, check_duplication=False)
    return lsh


def near_duplicate_clusters(texts: list[str], threshold: float) -> np.ndarray:
    """Cluster label per text (0, 1, ... in order of each cluster's first text): texts equal
    after `normalise_for_dedup` share one, and a chain a~b~c is one cluster."""
    threshold = check_threshold(threshold)
    uniq, inverse = _unique(texts)
    if not uniq:
        return inverse
    # clusters of the distinct texts: components of the LSH candidates near enough
    signatures = minhashes(uniq)
    lsh = _index(signatures, threshold)
    found = [lsh.query(m) for m in signatures]
    left = np.repeat(np.arange(len(found)), [len(keys) for keys in found])
    right = np.array([key for keys in found for key in keys], dtype=np.int64)
    left, right = left[left < right], right[left < right]
    values = np.vstack([m.hashvalues for m in signatures])  # Jaccard: share of equal values
    near = (values[left] == values[right]).mean(axis=1) >= threshold - _EPS
    graph = coo_array((np.ones(int(near.sum())), (left[near], right[near])), shape=(len(uniq),) * 2)
    labels = connected_components(graph, directed=False)[1][inverse]
    return pd.factorize(labels)[0].astype(np.int64)  # renumbered in order of first appearance


def deduplicate(texts: list[str], threshold: float) -> tuple[np.ndarray, int, int]:
    """(keep, n_exact, n_near): True for the first text of each near-duplicate cluster, and
    the removed by kind (an exact copy, equal to an earlier text after normalisation, is
    always in its cluster)."""
    keep = ~pd.Series(near_duplicate_clusters(texts, threshold)).duplicated().to_numpy()
    n_exact = int(pd.Series(map(normalise_for_dedup, texts), dtype=object).duplicated().sum())
    return keep, n_exact, int((~keep).sum()) - n_exact


def near_duplicate_audit(train_texts: list[str], test_texts: list[str], threshold: float):
    """One row (`AUDIT_COLUMNS`) per test text with a near (or exact: jaccard 1.0)
    duplicate among the training texts: the most similar one, the first on ties. Empty
    for a split that keeps each cluster on one side (clusters link by the same rule)."""
    threshold = check_threshold(threshold)
    train_texts, test_texts, rows = list(train_texts), list(test_texts), []
    if train_texts and test_texts:
        train_uniq, train_inverse = _unique(train_texts)
        test_uniq, test_inverse = _unique(test_texts)
        train_first = np.unique(train_inverse, return_index=True)[1]  # shown in the report
        train_mh, test_mh = minhashes(train_uniq), minhashes(test_uniq)
        lsh = _index(train_mh, threshold)
        exact = {t: i for i, t in enumerate(train_uniq)}
        best: dict[int, tuple[int, float]] = {}
        for u, m in enumerate(test_mh):
            if test_uniq[u] in exact:
                best[u] = (exact[test_uniq[u]], 1.0)
            # the highest similarity, then the earliest training text (`c` is in that order)
            elif scored := [(-m.jaccard(train_mh[c]), c) for c in lsh.query(m)]:
                j, c = min(scored)
                if -j >= threshold - _EPS:
                    best[u] = (c, -j)
        for i, u in enumerate(test_inverse.tolist()):
            if u in best:
                c, jaccard = best[u]
                t = int(train_first[c])
                rows.append((i, test_texts[i], t, train_texts[t], jaccard))
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS).astype(AUDIT_TYPES)
