"""Exact and near-duplicate detection for sentences and short passages.

Textbooks repeat themselves: a definition comes back in a summary box, a sentence is
copied into a figure legend, a chapter recaps the one before with a word changed. If one
copy lands in training data and the other in test data, the test measures memory, not
generalisation. This module finds such copies.

* **Exact duplicates** are texts that are equal after `normalise_for_dedup` (Unicode
  NFKC, casefold, punctuation and symbols removed, whitespace collapsed).
* **Near duplicates** are texts whose sets of character 5-grams (of the normalised
  text) have a Jaccard similarity of at least a threshold. The Jaccard similarity is
  estimated with MinHash, and candidate pairs are found with `datasketch.MinHashLSH`.

Why character 5-grams and not word 3-grams. The texts here are sentences of 20 to 300
characters. Changing one word in a 20-word sentence changes up to 3 of its 18 word
3-grams, a Jaccard similarity of 15/21 = 0.71, below the usual threshold of 0.8, so word
shingles would miss the very edits we look for. The same edit changes about 10 of ~130
character 5-grams, a Jaccard similarity of ~0.85. Character shingles also tolerate the
typical damage of extracted book text (a split word, a stray hyphen, a ligature), and
5 characters are long enough that unrelated sentences share few of them.

Why the hashing is written by hand. `MinHash.update` (and `update_batch`, which calls
the hash function once per shingle in Python) costs tens of microseconds per sentence;
150,000 sentences of ~130 shingles would take minutes. `minhash_signatures` instead
hashes every shingle of a batch of texts in one vectorised numpy computation and takes
the minimum per text with `np.minimum.reduceat`. It uses datasketch's own ``affine32``
permutations (taken from a `datasketch.MinHash` with the same `num_perm` and `seed`)
and datasketch's pre-mix, so each signature row equals, value for value, the hash values
of ``MinHash(num_perm, seed, scheme="affine32", hashfunc=shingle_hash32)`` updated with
the text's shingles; the rows are wrapped in `datasketch.LeanMinHash` for the LSH index.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasketch import LeanMinHash, MinHash, MinHashLSH

from .errors import ParameterError

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
_ASCII_TO_SPACE = bytes(c if chr(c).isalnum() else 32 for c in range(128)) + bytes(
    32 for _ in range(128)
)
_MASK64 = (1 << 64) - 1
# Multiplier of the polynomial shingle hash (odd, 64-bit, from the golden ratio).
_POLY = np.uint64(0x9E3779B97F4A7C15)
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


def normalise_for_dedup(text: str) -> str:
    """Normalise a text for duplicate detection.

    Unicode NFKC (so ligatures such as "ﬁ" from PDFs become "fi"), casefold, every run
    of punctuation, symbols, underscores and whitespace becomes one space, and the ends
    are stripped. Letters and digits of any script are kept.

    >>> normalise_for_dedup("  The Left-Ventricular\\tejection  fraction: 35%! ")
    'the left ventricular ejection fraction 35'
    """
    if text.isascii():
        # Fast path, same result as below: NFKC and casefold do nothing to ASCII but
        # lowercase it, and bytes.translate + split is several times faster than the regex.
        spaced = text.lower().encode("ascii").translate(_ASCII_TO_SPACE).decode("ascii")
        return " ".join(spaced.split())
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", text).strip()


def exact_duplicate_mask(texts: Sequence[str]) -> np.ndarray:
    """Boolean array, True for every text whose normalised form appeared earlier.

    The first occurrence of each normalised text is False (kept); every later copy is True.
    """
    texts = _validate_texts(texts)
    seen: set[str] = set()
    mask = np.zeros(len(texts), dtype=bool)
    for i, t in enumerate(texts):
        key = normalise_for_dedup(t)
        if key in seen:
            mask[i] = True
        else:
            seen.add(key)
    return mask


# --------------------------------------------------------------------------- MinHash


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finalizer (a bijection that spreads bits), on uint64 arrays."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 32-bit finalizer; datasketch's ``affine32`` pre-mix, on uint32 arrays."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of all character n-grams of `texts` (already normalised).

    Returns (hashes, counts): the hashes of text i are the `counts[i]` values after those
    of texts 0..i-1. A text shorter than `ngram` characters (the empty text included) has
    one shingle: itself, padded with NUL characters.
    """
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    pad = "\0" * ngram
    # Each text is followed by `ngram` NULs, so no shingle runs into the next text (not
    # even the one shingle of an empty text).
    codes = np.frombuffer((pad.join(texts) + pad).encode("utf-32-le"), dtype=np.uint32)
    starts = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1] + ngram, out=starts[1:])
    counts = np.maximum(lengths - ngram + 1, 1)
    first = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    total = int(counts.sum())
    positions = np.arange(total, dtype=np.int64) + np.repeat(starts - first, counts)
    # Polynomial hash sum_k code[p + k] * POLY^(k+1) mod 2^64 at every position p of the
    # joined text (contiguous slices, no gathers), then a 64-bit finalizer at the
    # positions where a shingle starts; the upper 32 bits are the shingle's hash (as
    # `shingle_hash32` computes one at a time).
    span = len(codes) - ngram + 1
    h = np.zeros(span, dtype=np.uint64)
    power = 1
    with np.errstate(over="ignore"):
        for k in range(ngram):
            power = (power * int(_POLY)) & _MASK64
            h += codes[k : k + span].astype(np.uint64) * np.uint64(power)
        h = _fmix64(h[positions])
    return (h >> np.uint64(32)).astype(np.uint32), counts


def shingle_hash32(shingle: str | bytes) -> int:
    """The 32-bit hash of one character n-gram, as `minhash_signatures` computes it.

    Meant for checking against datasketch: ``MinHash(num_perm, seed, scheme="affine32",
    hashfunc=shingle_hash32)`` updated with the n-grams of a normalised text has the
    same hash values as that text's row of `minhash_signatures`. A shingle shorter than
    the n-gram size must be padded with NUL characters to the n-gram size.
    """
    if isinstance(shingle, bytes):
        shingle = shingle.decode("utf-8")
    h = 0
    power = 1
    for ch in shingle:
        power = (power * int(_POLY)) & _MASK64
        h = (h + ord(ch) * power) & _MASK64
    with np.errstate(over="ignore"):
        mixed = _fmix64(np.array([h], dtype=np.uint64))
    return int(mixed[0] >> np.uint64(32))


def char_shingles(text: str, ngram: int = DEFAULT_NGRAM) -> list[str]:
    """The character n-grams of an already normalised text (short texts padded with NULs)."""
    if len(text) < ngram:
        return [text + "\0" * (ngram - len(text))]
    return [text[i : i + ngram] for i in range(len(text) - ngram + 1)]


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def _signature_batch(texts: list[str], ngram: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    hashes, counts = _shingle_hashes(texts, ngram)
    with np.errstate(over="ignore"):
        hv = _fmix32(hashes)
        offsets = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        sig = np.empty((len(texts), len(a)), dtype=np.uint32)
        # One permutation at a time: arrays stay the size of the batch's shingles instead
        # of shingles x num_perm. uint32 arithmetic wraps, which is the mod 2^32 intended.
        for k in range(len(a)):
            sig[:, k] = np.minimum.reduceat(hv * a[k] + b[k], offsets)
    return sig


def _signatures_of_normalised(
    norm: list[str], num_perm: int, ngram: int, seed: int, workers: int | None = None
) -> np.ndarray:
    a, b = _permutations(num_perm, seed)
    if not norm:
        return np.empty((0, num_perm), dtype=np.uint32)
    batches = [norm[i : i + _BATCH_TEXTS] for i in range(0, len(norm), _BATCH_TEXTS)]
    if workers is None:
        workers = min(len(batches), os.cpu_count() or 1, 8)
    if workers <= 1 or len(batches) == 1:
        parts = [_signature_batch(batch, ngram, a, b) for batch in batches]
    else:
        # numpy releases the GIL in its loops, so threads use several cores.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda batch: _signature_batch(batch, ngram, a, b), batches))
    return np.concatenate(parts, axis=0)


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
    Wrap rows with `to_lean_minhashes` to use them with datasketch. The fraction of equal
    columns of two rows estimates the Jaccard similarity of the two texts' shingle sets.

    Texts are normalised with `normalise_for_dedup` first unless `normalise` is False.
    The work is vectorised with numpy and spread over `workers` threads (default: the
    number of CPU cores).
    """
    texts = _validate_texts(texts)
    num_perm = _validate_int(num_perm, "num_perm", 2)
    ngram = _validate_int(ngram, "ngram", 1)
    seed = _validate_int(seed, "seed", 0)
    norm = [normalise_for_dedup(t) for t in texts] if normalise else texts
    return _signatures_of_normalised(norm, num_perm, ngram, seed, workers)


def to_lean_minhashes(signatures: np.ndarray, seed: int = DEFAULT_SEED) -> list[LeanMinHash]:
    """Wrap signature rows from `minhash_signatures` as `datasketch.LeanMinHash` objects.

    The rows are checked once, as a whole, and each LeanMinHash gets its documented
    attributes (seed, hashvalues, scheme) set directly: the constructor re-checks every
    row (~15 us each, seconds for 150,000 rows). The objects equal those that
    ``LeanMinHash(seed=seed, hashvalues=row, scheme="affine32")`` makes.
    """
    signatures = np.asarray(signatures)
    if signatures.ndim != 2 or signatures.dtype != np.uint32:
        raise ParameterError(
            "signatures",
            f"{signatures.dtype} array of shape {signatures.shape}",
            "must be the 2-D uint32 array that minhash_signatures returns",
        )
    out = []
    new = LeanMinHash.__new__
    for row in signatures:
        m = new(LeanMinHash)
        m.seed, m.hashvalues, m.scheme = seed, row, SCHEME
        out.append(m)
    return out


# --------------------------------------------------------------------------- near duplicates


def _unique_texts(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct normalised texts (in order of first appearance) and each text's index among them."""
    index: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        inverse[i] = index.setdefault(normalise_for_dedup(t), len(index))
    return list(index), inverse


def _estimated_jaccard(sig: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    out = np.empty(len(left), dtype=np.float64)
    step = 65536
    for s in range(0, len(left), step):
        eq = sig[left[s : s + step]] == sig[right[s : s + step]]
        out[s : s + step] = eq.mean(axis=1)
    return out


def _index(sig: np.ndarray, threshold: float, seed: int) -> MinHashLSH:
    """A `datasketch.MinHashLSH` tuned to `threshold`, holding row i of `sig` under key i."""
    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=sig.shape[1])
    except ValueError:
        # Thresholds near 1 make datasketch pick a single band, which it refuses; two
        # bands of num_perm/2 rows find every pair with (nearly) equal signatures.
        lsh = MinHashLSH(num_perm=sig.shape[1], params=(2, sig.shape[1] // 2))
    for i, m in enumerate(to_lean_minhashes(sig, seed)):
        lsh.insert(i, m, check_duplication=False)
    return lsh


def _bucket_pairs(members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(len(members), k=1)
    return members[i], members[j]


def _linked_pairs(
    sig: np.ndarray, threshold: float, seed: int, verify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of rows of `sig` that share an LSH bucket (and, with `verify`, whose
    estimated Jaccard similarity is at least `threshold`).

    The candidates are read from the index's hash tables (one per band), bucket by
    bucket, rather than by one `query` per row: the same pairs, several times faster.
    """
    lsh = _index(sig, threshold, seed)
    small: list[tuple[int, int]] = []
    big_left: list[np.ndarray] = []
    big_right: list[np.ndarray] = []
    for table in lsh.hashtables:
        for key in table.keys():
            members = table.get(key)
            if len(members) == 2:
                small.append(tuple(sorted(members)))
            elif len(members) > 2:
                members = np.sort(np.fromiter(members, dtype=np.int64, count=len(members)))
                if not verify:
                    # Unverified, a bucket links all its members: a star is enough.
                    big_left.append(np.repeat(members[0], len(members) - 1))
                    big_right.append(members[1:])
                    continue
                # All pairs, a block of rows at a time (a bucket can be large).
                step = max(1, 2_000_000 // len(members))
                for s in range(0, len(members) - 1, step):
                    rows = np.arange(s, min(s + step, len(members) - 1))
                    li = np.repeat(rows, len(members) - 1 - rows)
                    lj = np.concatenate([np.arange(r + 1, len(members)) for r in rows])
                    left, right = members[li], members[lj]
                    ok = _estimated_jaccard(sig, left, right) >= threshold - _EPS
                    big_left.append(left[ok])
                    big_right.append(right[ok])
    pairs = np.asarray(small, dtype=np.int64).reshape(-1, 2)
    left = np.concatenate([pairs[:, 0], *big_left])
    right = np.concatenate([pairs[:, 1], *big_right])
    codes = np.unique(left * len(sig) + right)
    left, right = codes // len(sig), codes % len(sig)
    if verify and len(left):
        ok = _estimated_jaccard(sig, left, right) >= threshold - _EPS
        left, right = left[ok], right[ok]
    return left, right


def _union_find_labels(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges (left[k], right[k]).

    Label of each node = the smallest node index in its component.
    """
    parent = list(range(n))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for i, j in zip(left.tolist(), right.tolist(), strict=False):
        ri, rj = find(i), find(j)
        if ri != rj:
            if ri < rj:
                parent[rj] = ri
            else:
                parent[ri] = rj
    return np.fromiter((find(i) for i in range(n)), dtype=np.int64, count=n)


def _renumber(roots: np.ndarray) -> np.ndarray:
    """Relabel so clusters are numbered 0, 1, 2, ... in order of their first member."""
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64)


def near_duplicate_clusters(
    texts: Sequence[str],
    threshold: float = 0.8,
    num_perm: int = DEFAULT_NUM_PERM,
    *,
    ngram: int = DEFAULT_NGRAM,
    seed: int = DEFAULT_SEED,
    verify: bool = True,
) -> np.ndarray:
    """Cluster label per text; texts with the same label are (chains of) near duplicates.

    Texts equal after `normalise_for_dedup` always share a label. Other pairs are
    candidates when their MinHash signatures share an LSH band (`datasketch.MinHashLSH`
    tuned to `threshold`); with `verify` (the default) a candidate pair is linked only if
    its estimated Jaccard similarity is at least `threshold`. Clusters are the connected
    components of the links (union-find), so a chain a~b~c is one cluster even if a and
    c are not similar. Labels are 0, 1, 2, ... in order of each cluster's first text.
    """
    texts = _validate_texts(texts)
    threshold = validate_threshold(threshold)
    num_perm = _validate_int(num_perm, "num_perm", 2)
    uniq, inverse = _unique_texts(texts)
    return _clusters(uniq, inverse, threshold, num_perm, ngram, seed, verify)


def _clusters(
    uniq: list[str],
    inverse: np.ndarray,
    threshold: float,
    num_perm: int,
    ngram: int,
    seed: int,
    verify: bool = True,
) -> np.ndarray:
    if not len(inverse):
        return np.empty(0, dtype=np.int64)
    sig = _signatures_of_normalised(uniq, num_perm, ngram, seed)
    left, right = _linked_pairs(sig, threshold, seed, verify)
    roots = _union_find_labels(len(uniq), left, right)
    return _renumber(roots[inverse])


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
    # Exact copies: every text but the first with its normalised form.
    exact = np.ones(len(texts), dtype=bool)
    exact[np.unique(inverse, return_index=True)[1]] = False
    clusters = _clusters(uniq, inverse, threshold, num_perm, ngram, seed)
    keep = np.zeros(len(texts), dtype=bool)
    if len(texts):
        _, first = np.unique(clusters, return_index=True)
        keep[first] = True
    removed = ~keep
    n_exact = int((removed & exact).sum())
    return DedupResult(
        keep=keep,
        n_exact_removed=n_exact,
        n_near_removed=int(removed.sum()) - n_exact,
        clusters=clusters,
    )


AUDIT_COLUMNS = ["test_index", "test_text", "train_index", "train_text", "jaccard"]


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
    The criterion is the one `near_duplicate_clusters` links texts by (same LSH bands,
    estimated Jaccard >= threshold), so a split that keeps each cluster on one side has
    an empty audit.
    """
    train_texts = _validate_texts(train_texts, "train_texts")
    test_texts = _validate_texts(test_texts, "test_texts")
    threshold = validate_threshold(threshold)
    num_perm = _validate_int(num_perm, "num_perm", 2)
    if not train_texts or not test_texts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _AUDIT_DTYPES.items()})
    train_uniq, train_inv = _unique_texts(train_texts)
    test_uniq, test_inv = _unique_texts(test_texts)
    # First training text with each normalised form: its representative in the report.
    train_first = np.full(len(train_uniq), -1, dtype=np.int64)
    for i in range(len(train_inv) - 1, -1, -1):
        train_first[train_inv[i]] = i
    train_sig = _signatures_of_normalised(train_uniq, num_perm, ngram, seed)
    test_sig = _signatures_of_normalised(test_uniq, num_perm, ngram, seed)
    lsh = _index(train_sig, threshold, seed)
    train_lookup = {t: i for i, t in enumerate(train_uniq)}
    best: dict[int, tuple[int, float]] = {}
    for u, m in enumerate(to_lean_minhashes(test_sig, seed)):
        exact = train_lookup.get(test_uniq[u])
        if exact is not None:
            best[u] = (exact, 1.0)
            continue
        cand = np.asarray(sorted(lsh.query(m)), dtype=np.int64)
        if not len(cand):
            continue
        jac = (train_sig[cand] == test_sig[u]).mean(axis=1)
        ok = jac >= threshold - _EPS
        if ok.any():
            cand, jac = cand[ok], jac[ok]
            # Highest similarity, then the earliest training text.
            k = np.lexsort((train_first[cand], -jac))[0]
            best[u] = (int(cand[k]), float(jac[k]))
    rows = []
    for i, u in enumerate(test_inv.tolist()):
        if u in best:
            tu, jac = best[u]
            j = int(train_first[tu])
            rows.append((i, test_texts[i], j, train_texts[j], jac))
    frame = pd.DataFrame(rows, columns=AUDIT_COLUMNS)
    return frame.astype(_AUDIT_DTYPES)


_AUDIT_DTYPES = {
    "test_index": "int64",
    "test_text": "object",
    "train_index": "int64",
    "train_text": "object",
    "jaccard": "float64",
}
