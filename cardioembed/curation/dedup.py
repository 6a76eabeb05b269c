"""Exact and near-duplicate detection for sentences and short passages.

Textbooks repeat themselves: a definition comes back in a summary box, a sentence is
copied into a figure legend, a chapter recaps the one before with a word changed. If one
copy lands in training data and the other in test data, the test measures memory, not
generalisation. This module finds such copies.

* **Exact duplicates** are texts that are equal after `normalise_for_dedup` (Unicode
  NFKC, casefold, punctuation and symbols removed, whitespace collapsed), the one
  comparison key of the package.
* **Near duplicates** are texts whose sets of character 5-grams (of the normalised
  text) have a Jaccard similarity of at least a threshold, estimated with MinHash
  (`datasketch.LeanMinHash`). Candidate pairs come from `datasketch.MinHashLSH`, are
  kept when `LeanMinHash.jaccard` reaches the threshold, and clusters are the connected
  components of the kept pairs (`scipy.sparse.csgraph.connected_components`).

Why character 5-grams and not word 3-grams. The texts here are sentences of 20 to 300
characters. Changing one word in a 20-word sentence changes up to 3 of its 18 word
3-grams, a Jaccard similarity of 15/21 = 0.71, below the usual threshold of 0.8, so word
shingles would miss the very edits we look for. The same edit changes about 10 of ~130
character 5-grams, a Jaccard similarity of ~0.85. Character shingles also tolerate the
typical damage of extracted book text (a split word, a stray hyphen, a ligature), and
5 characters are long enough that unrelated sentences share few of them.
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasketch import LeanMinHash, MinHash, MinHashLSH
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from cardioembed.errors import ParameterError

__all__ = [
    "AUDIT_COLUMNS",
    "DedupResult",
    "char_shingles",
    "deduplicate",
    "exact_duplicate_mask",
    "minhash_signatures",
    "near_duplicate_audit",
    "near_duplicate_clusters",
    "normalise_for_dedup",
    "shingle_hash32",
    "to_lean_minhashes",
    "validate_threshold",
]

DEFAULT_NUM_PERM = 64
DEFAULT_NGRAM = 5
DEFAULT_SEED = 1
SCHEME = "affine32"  # datasketch's default permutation scheme since 2.0.0

_NON_WORD = re.compile(r"[\W_]+")
# Every ASCII character that is not a letter or digit becomes a space.
_ASCII_TO_SPACE = bytes(c if chr(c).isalnum() else 32 for c in range(128)) + bytes(128 * [32])
_MASK64 = (1 << 64) - 1
# Multiplier of the polynomial shingle hash (odd, 64-bit, from the golden ratio).
_POLY = 0x9E3779B97F4A7C15
# Texts per batch in `minhash_signatures`: keeps each batch's arrays at a few MB.
_BATCH_TEXTS = 4096
# Tolerance when comparing an estimated Jaccard similarity (a multiple of 1/num_perm).
_EPS = 1e-9


# --------------------------------------------------------------------------- validation


def validate_threshold(threshold, name: str = "near_duplicate_threshold") -> float:
    """Return `threshold` as a float, or raise `ParameterError` unless 0 < threshold <= 1."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(threshold, bool) or not (0.0 < value <= 1.0):
        raise ParameterError(
            name,
            threshold,
            "must be a number in (0, 1], the Jaccard similarity of character 5-grams "
            "above which two texts count as near duplicates; 0.8 is usual",
        )
    return value


def _validate_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(name, value, f"must be a whole number of at least {minimum}")
    return int(value)


def _validate_texts(texts, name: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise ParameterError(name, texts[:40], "must be a sequence of strings, not one string")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ParameterError(
                name, t, f"every item must be a string; item {i} is a {type(t).__name__}"
            )
    return out


# --------------------------------------------------------------------------- exact


def normalise_for_dedup(text) -> str:
    """The comparison key of a text: two texts with the same key count as the same text.

    Unicode NFKC (so ligatures such as "ﬁ" from PDFs become "fi"), casefold, every run
    of punctuation, symbols, underscores and whitespace becomes one space, and the ends
    are stripped. Letters and digits of any script are kept. A value that is not a
    string is converted with `str` first.

    >>> normalise_for_dedup("  The Left-Ventricular\\tejection  fraction: 35%! ")
    'the left ventricular ejection fraction 35'
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isascii():
        # Same result as the general path below, which is 3x slower on ASCII text:
        # 150,000 benchmark sentences take 0.7 s of CPU here, 2.1 s with NFKC + regex.
        spaced = text.lower().encode("ascii").translate(_ASCII_TO_SPACE).decode("ascii")
        return " ".join(spaced.split())
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def exact_duplicate_mask(texts: Sequence[str]) -> np.ndarray:
    """Boolean array, True for every text whose normalised form appeared earlier.

    The first occurrence of each normalised text is False (kept); every later copy is True.
    """
    _, inverse = _unique_texts(_validate_texts(texts))
    mask = np.ones(len(inverse), dtype=bool)
    mask[np.unique(inverse, return_index=True)[1]] = False
    return mask


def _unique_texts(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct normalised texts (in order of first appearance) and each text's index among them."""
    index: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        inverse[i] = index.setdefault(normalise_for_dedup(t), len(index))
    return list(index), inverse


# --------------------------------------------------------------------------- MinHash
#
# The signatures are computed here, vectorised over a batch of texts, rather than with
# `MinHash.generator`/`MinHash.bulk`, which update one MinHash at a time from Python: on
# 20,000 benchmark sentences the generator (with the C hash zlib.crc32) takes 3.3 s of
# CPU, this code 0.54 s on one thread; for dedup plus audit of 150,000 sentences that is
# some 40 s more, past the benchmark's 60 s budget. Each row equals the hash values of
# ``MinHash(num_perm, seed, scheme="affine32", hashfunc=shingle_hash32)`` updated with
# the text's shingles (tested), with that MinHash's own permutations.


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (Appleby, https://github.com/aappleby/smhasher)."""
    for shift, mult in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):
        h = (h ^ (h >> np.uint64(shift))) * np.uint64(mult)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer: the pre-mix that datasketch's "affine32"
    `MinHash.update_batch` applies to each input hash (not a public datasketch function)."""
    for shift, mult in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        h = (h ^ (h >> np.uint32(shift))) * np.uint32(mult)
    return h ^ (h >> np.uint32(16))


def char_shingles(text: str, ngram: int = DEFAULT_NGRAM) -> list[str]:
    """The character n-grams of an already normalised text (short texts padded with NULs)."""
    if len(text) < ngram:
        return [text + "\0" * (ngram - len(text))]
    return [text[i : i + ngram] for i in range(len(text) - ngram + 1)]


def shingle_hash32(shingle: str | bytes) -> int:
    """The 32-bit hash of one character n-gram (from `char_shingles`), the `hashfunc` for
    a `datasketch.MinHash` that matches `minhash_signatures`: the upper 32 bits of
    `_fmix64` of the polynomial sum_k ord(shingle[k]) * P^(k+1) mod 2^64."""
    if isinstance(shingle, bytes):
        shingle = shingle.decode("utf-8")
    h, power = 0, 1
    for ch in shingle:
        power = (power * _POLY) & _MASK64
        h = (h + ord(ch) * power) & _MASK64
    with np.errstate(over="ignore"):
        return int(_fmix64(np.array([h], dtype=np.uint64))[0] >> np.uint64(32))


def _shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """`shingle_hash32` of every n-gram of `texts` (normalised), as one array.

    Returns (hashes, offsets): the hashes of text i start at offsets[i]. The polynomial
    is summed over the whole joined text at once (contiguous slices, no gathers).
    """
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    pad = "\0" * ngram  # after each text: no n-gram runs into the next text
    codes = np.frombuffer((pad.join(texts) + pad).encode("utf-32-le"), dtype=np.uint32)
    counts = np.maximum(lengths - ngram + 1, 1)  # a short text is one padded n-gram
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    text_starts = np.concatenate([[0], np.cumsum(lengths + ngram)[:-1]])
    positions = np.arange(int(counts.sum())) + np.repeat(text_starts - offsets, counts)
    span = len(codes) - ngram + 1
    h = np.zeros(span, dtype=np.uint64)
    power = 1
    with np.errstate(over="ignore"):
        for k in range(ngram):
            power = (power * _POLY) & _MASK64
            h += codes[k : k + span].astype(np.uint64) * np.uint64(power)
        return (_fmix64(h[positions]) >> np.uint64(32)).astype(np.uint32), offsets


def _signature_batch(texts: list[str], ngram: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    hashes, offsets = _shingle_hashes(texts, ngram)
    sig = np.empty((len(texts), len(a)), dtype=np.uint32)
    with np.errstate(over="ignore"):
        mixed = _fmix32(hashes)
        # One permutation at a time keeps arrays the size of the shingles, not x num_perm;
        # uint32 arithmetic wraps, which is the mod 2^32 of the affine32 scheme.
        for k in range(len(a)):
            sig[:, k] = np.minimum.reduceat(mixed * a[k] + b[k], offsets)
    return sig


def _signatures(norm: list[str], num_perm: int, ngram: int, seed: int, workers=None):
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    if not norm:
        return np.empty((0, num_perm), dtype=np.uint32)
    batches = [norm[i : i + _BATCH_TEXTS] for i in range(0, len(norm), _BATCH_TEXTS)]
    workers = min(len(batches), os.cpu_count() or 1, 8) if workers is None else workers
    if workers <= 1:
        return np.concatenate([_signature_batch(t, ngram, a, b) for t in batches])
    # numpy releases the GIL in its loops, so threads use several cores.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(lambda t: _signature_batch(t, ngram, a, b), batches)))


def minhash_signatures(
    texts: Sequence[str],
    num_perm: int = DEFAULT_NUM_PERM,
    ngram: int = DEFAULT_NGRAM,
    seed: int = DEFAULT_SEED,
    *,
    normalise: bool = True,
    workers: int | None = None,
) -> np.ndarray:
    """MinHash signatures of the character `ngram`-grams of each text.

    Returns a ``(len(texts), num_perm)`` uint32 array; row i equals the ``hashvalues``
    of ``datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine32",
    hashfunc=shingle_hash32)`` updated with ``char_shingles(normalise_for_dedup(text))``.
    `to_lean_minhashes` wraps the rows for datasketch.

    Texts are normalised with `normalise_for_dedup` first unless `normalise` is False.
    The work is spread over `workers` threads (default: the number of CPU cores).
    """
    texts = _validate_texts(texts)
    num_perm = _validate_int(num_perm, "num_perm", 2)
    ngram = _validate_int(ngram, "ngram", 1)
    seed = _validate_int(seed, "seed", 0)
    norm = [normalise_for_dedup(t) for t in texts] if normalise else texts
    return _signatures(norm, num_perm, ngram, seed, workers)


def to_lean_minhashes(signatures: np.ndarray, seed: int = DEFAULT_SEED) -> list[LeanMinHash]:
    """Each row of `minhash_signatures` as a `datasketch.LeanMinHash`."""
    signatures = np.asarray(signatures)
    if signatures.ndim != 2 or signatures.dtype != np.uint32:
        raise ParameterError(
            "signatures",
            f"{signatures.dtype} array of shape {signatures.shape}",
            "must be the 2-D uint32 array that minhash_signatures returns",
        )
    return [LeanMinHash(seed=seed, hashvalues=row, scheme=SCHEME) for row in signatures]


# --------------------------------------------------------------------------- near duplicates


def _index(minhashes: list[LeanMinHash], threshold: float, num_perm: int) -> MinHashLSH:
    """A `datasketch.MinHashLSH` tuned to `threshold`, holding minhashes[i] under key i."""
    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    except ValueError:
        # Thresholds near 1 make datasketch pick a single band, which it refuses; two
        # bands of num_perm/2 rows find every pair with (nearly) equal signatures.
        lsh = MinHashLSH(num_perm=num_perm, params=(2, num_perm // 2))
    for i, m in enumerate(minhashes):
        lsh.insert(i, m, check_duplication=False)
    return lsh


def _estimated_jaccard(sig: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`LeanMinHash.jaccard` (the share of equal hash values) of the row pairs (left, right)
    of `sig`, vectorised: raw book text can give millions of candidate pairs, and for the
    1.5 million of 150,000 uncleaned benchmark sentences pair-by-pair `jaccard` took 13.6 s,
    this 0.4 s (both under cProfile)."""
    out = np.empty(len(left), dtype=np.float64)
    step = 1 << 16  # pairs per block: keeps the boolean arrays small
    for s in range(0, len(left), step):
        block = slice(s, s + step)
        out[block] = (sig[left[block]] == sig[right[block]]).mean(axis=1)
    return out


def _near_pairs(sig: np.ndarray, threshold: float, seed: int):
    """Pairs (i, j), i < j, of rows of `sig` that share an LSH band and have an estimated
    Jaccard similarity of at least `threshold`."""
    minhashes = to_lean_minhashes(sig, seed)
    lsh = _index(minhashes, threshold, sig.shape[1])
    # One documented `query` per row: ~3 s of CPU more at 150,000 texts than reading the
    # index's bucket storage directly, which datasketch does not document.
    found = [lsh.query(m) for m in minhashes]
    left = np.repeat(np.arange(len(found)), [len(keys) for keys in found])
    right = np.fromiter(itertools.chain.from_iterable(found), dtype=np.int64, count=len(left))
    left, right = left[left < right], right[left < right]
    ok = _estimated_jaccard(sig, left, right) >= threshold - _EPS
    return left[ok], right[ok]


def _clusters(
    uniq: list[str], inverse: np.ndarray, threshold: float, num_perm: int, ngram: int, seed: int
):
    """Cluster label per text: connected components of the near-duplicate pairs among the
    distinct normalised texts `uniq`, numbered 0, 1, ... in order of each cluster's first text."""
    if not len(inverse):
        return np.empty(0, dtype=np.int64)
    left, right = _near_pairs(_signatures(uniq, num_perm, ngram, seed), threshold, seed)
    n = len(uniq)
    graph = coo_array((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first, per_text = np.unique(labels[inverse], return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[per_text.ravel()]


def near_duplicate_clusters(
    texts: Sequence[str],
    threshold: float = 0.8,
    num_perm: int = DEFAULT_NUM_PERM,
    *,
    ngram: int = DEFAULT_NGRAM,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """Cluster label per text; texts with the same label are (chains of) near duplicates.

    Texts equal after `normalise_for_dedup` always share a label. Two other texts are
    linked when their MinHash signatures share an LSH band (`datasketch.MinHashLSH`
    tuned to `threshold`) and their estimated Jaccard similarity is at least
    `threshold`. Clusters are the connected components of the links, so a chain a~b~c
    is one cluster even if a and c are not similar. Labels are 0, 1, 2, ... in order of
    each cluster's first text.
    """
    texts = _validate_texts(texts)
    threshold = validate_threshold(threshold)
    num_perm = _validate_int(num_perm, "num_perm", 2)
    uniq, inverse = _unique_texts(texts)
    return _clusters(uniq, inverse, threshold, num_perm, ngram, seed)


@dataclass(frozen=True)
class DedupResult:
    """Outcome of `deduplicate`.

    `keep` is True for the texts to keep: the first text of each near-duplicate cluster.
    `n_exact_removed` counts texts dropped as exact (normalised) copies of an earlier
    text; `n_near_removed` counts the other dropped texts. `clusters` is the cluster label
    of each text (see `near_duplicate_clusters`).
    """

    keep: np.ndarray
    n_exact_removed: int
    n_near_removed: int
    clusters: np.ndarray

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())

    @property
    def n_removed(self) -> int:
        return self.n_exact_removed + self.n_near_removed


def deduplicate(
    texts: Sequence[str],
    threshold: float = 0.8,
    num_perm: int = DEFAULT_NUM_PERM,
    *,
    ngram: int = DEFAULT_NGRAM,
    seed: int = DEFAULT_SEED,
) -> DedupResult:
    """Keep the first text of each near-duplicate cluster; count what was removed and why."""
    texts = _validate_texts(texts)
    threshold = validate_threshold(threshold)
    num_perm = _validate_int(num_perm, "num_perm", 2)
    uniq, inverse = _unique_texts(texts)
    exact = np.ones(len(texts), dtype=bool)  # every text but the first of its normal form
    exact[np.unique(inverse, return_index=True)[1]] = False
    clusters = _clusters(uniq, inverse, threshold, num_perm, ngram, seed)
    keep = np.zeros(len(texts), dtype=bool)
    keep[np.unique(clusters, return_index=True)[1]] = True
    n_exact = int((~keep & exact).sum())
    return DedupResult(
        keep=keep,
        n_exact_removed=n_exact,
        n_near_removed=int((~keep).sum()) - n_exact,
        clusters=clusters,
    )


AUDIT_COLUMNS = ["test_index", "test_text", "train_index", "train_text", "jaccard"]
_AUDIT_DTYPES = dict(
    zip(AUDIT_COLUMNS, ["int64", "object", "int64", "object", "float64"], strict=True)
)


def near_duplicate_audit(
    train_texts: Sequence[str],
    test_texts: Sequence[str],
    threshold: float = 0.8,
    num_perm: int = DEFAULT_NUM_PERM,
    *,
    ngram: int = DEFAULT_NGRAM,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """One row per test text that has a near (or exact) duplicate among the training texts.

    Columns: test_index, test_text, train_index, train_text, jaccard. For each leaking
    test text the training text with the highest estimated Jaccard similarity is shown
    (the first such text on ties); exact copies after normalisation have jaccard 1.0.
    The criterion is the one `near_duplicate_clusters` links texts by (same LSH band,
    estimated Jaccard >= threshold), so a split that keeps each cluster on one side has
    an empty audit.
    """
    train_texts = _validate_texts(train_texts, "train_texts")
    test_texts = _validate_texts(test_texts, "test_texts")
    threshold = validate_threshold(threshold)
    num_perm = _validate_int(num_perm, "num_perm", 2)
    rows = []
    if train_texts and test_texts:
        train_uniq, train_inv = _unique_texts(train_texts)
        test_uniq, test_inv = _unique_texts(test_texts)
        # The first training text of each normalised form represents it in the report.
        train_first = np.unique(train_inv, return_index=True)[1]
        train_mh = to_lean_minhashes(_signatures(train_uniq, num_perm, ngram, seed), seed)
        test_mh = to_lean_minhashes(_signatures(test_uniq, num_perm, ngram, seed), seed)
        lsh = _index(train_mh, threshold, num_perm)
        exact = {t: i for i, t in enumerate(train_uniq)}
        best: dict[int, tuple[int, float]] = {}
        for u, m in enumerate(test_mh):
            if test_uniq[u] in exact:
                best[u] = (exact[test_uniq[u]], 1.0)
                continue
            scored = [(m.jaccard(train_mh[c]), c) for c in lsh.query(m)]
            scored = [(j, c) for j, c in scored if j >= threshold - _EPS]
            if scored:  # highest similarity, then the earliest training text
                j, c = min(scored, key=lambda s: (-s[0], train_first[s[1]]))
                best[u] = (c, float(j))
        for i, u in enumerate(test_inv.tolist()):
            if u in best:
                c, jac = best[u]
                t = int(train_first[c])
                rows.append((i, test_texts[i], t, train_texts[t], jac))
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS).astype(_AUDIT_DTYPES)
