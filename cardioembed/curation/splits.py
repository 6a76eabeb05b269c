"""Leakage-safe train/validation/test splits by group.

Items (sentence pairs, definitions, ...) are split by *group*, never one by one: every
item of a group (a textbook chapter, an HPO subtree, an ICD-10-CM block) goes to the same
split, so a model is tested on material it has not seen the neighbours of. Before the
split, groups that share a near-duplicate text are merged (`merge_groups`), so the same
sentence, or a copy with a word changed, can never sit in training and test data at
once. `cardioembed.curation.dedup.near_duplicate_audit` on the result then finds nothing.

Split sizes are counted in **items**, not groups: group sizes in the study vary by
orders of magnitude (one ICD-10-CM block has 3 codes, a textbook chapter 2,000
sentences), so giving 20% of the *groups* to test could give 2% or 60% of the items.
The groups are shuffled (deterministically for a seed, after sorting, so the input order
does not matter) and laid end to end in proportion to their item counts; a group goes
to the split in whose share of [0, 1) its midpoint lies. Each split is then off its
requested fraction by at most about half of one group.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from cardioembed.curation.dedup import near_duplicate_clusters, validate_threshold
from cardioembed.errors import InputError, ParameterError

__all__ = [
    "DEFAULT_FRACTIONS",
    "SPLITS",
    "SplitFractions",
    "assign_group_splits",
    "merge_groups",
    "random_split",
    "split_frame",
    "split_overlap",
]

SPLITS = ("train", "validation", "test")
_FRACTIONS_HELP = (
    "fractions must each lie in [0, 1] and add up to 1, "
    "e.g. {train: 0.8, validation: 0.1, test: 0.1}"
)


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of the items that go to train, validation and test (adding up to 1)."""

    train: float
    validation: float
    test: float

    def __post_init__(self):
        values = (self.train, self.validation, self.test)
        for v in values:
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.integer, np.floating))
                or not math.isfinite(v)
                or not 0.0 <= v <= 1.0
            ):
                raise ParameterError("split_fractions", self.to_dict(), _FRACTIONS_HELP)
        if abs(sum(values) - 1.0) > 1e-6:
            raise ParameterError(
                "split_fractions",
                self.to_dict(),
                f"{_FRACTIONS_HELP} (they add up to {sum(values):g})",
            )
        for name in SPLITS:
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> SplitFractions:
        """From a mapping with exactly the keys train, validation and test."""
        if not isinstance(data, Mapping) or set(data) != set(SPLITS):
            raise ParameterError(
                "split_fractions",
                dict(data) if isinstance(data, Mapping) else data,
                "must be a mapping with exactly the keys train, validation and test; "
                + _FRACTIONS_HELP,
            )
        return cls(data["train"], data["validation"], data["test"])

    def to_dict(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    @classmethod
    def coerce(cls, value) -> SplitFractions:
        """A `SplitFractions` from itself, a mapping, or a (train, validation, test) triple."""
        if isinstance(value, SplitFractions):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, (list, tuple)) and len(value) == 3:
            return cls(*value)
        raise ParameterError("split_fractions", value, _FRACTIONS_HELP)


DEFAULT_FRACTIONS = SplitFractions(0.7, 0.1, 0.2)


def _validate_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError("seed", seed, "must be a whole number of at least 0, e.g. 42")
    return int(seed)


def _sorted_unique(labels) -> list:
    unique = set(labels)
    try:
        return sorted(unique)
    except TypeError:  # labels of mixed types: any fixed order will do
        return sorted(unique, key=lambda g: (type(g).__name__, repr(g)))


def _check_groups(groups, name: str = "groups") -> list:
    if isinstance(groups, str):
        raise ParameterError(name, groups, "must be a sequence of group labels, one per item")
    groups = list(groups)
    for g in groups:
        if g is None or (isinstance(g, float) and math.isnan(g)) or not isinstance(g, Hashable):
            raise InputError(
                f"{name}: every item needs a group label (a string); found {g!r}. "
                "Give each item the chapter, subtree or block it comes from."
            )
    return groups


def assign_group_splits(
    groups: Sequence[Hashable],
    fractions: SplitFractions | Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 42,
) -> dict[Hashable, str]:
    """Map each distinct group label to "train", "validation" or "test".

    `groups` has one label per item (labels repeat); sizes are counted in items. The
    result depends only on the multiset of labels and the seed, not on their order.
    A split with fraction 0 gets no group; with few groups a split with a small
    fraction may get none either.
    """
    fractions = SplitFractions.coerce(fractions)
    seed = _validate_seed(seed)
    groups = _check_groups(groups)
    if not groups:
        return {}
    counts = Counter(groups)
    unique = _sorted_unique(counts)
    order = np.random.default_rng(seed).permutation(len(unique))
    sizes = np.array([counts[unique[k]] for k in order], dtype=np.float64)
    total = sizes.sum()
    midpoints = (np.cumsum(sizes) - sizes / 2.0) / total
    shares = np.array([fractions.train, fractions.validation, fractions.test])
    bounds = np.cumsum(shares)
    chosen = np.minimum(np.searchsorted(bounds, midpoints, side="right"), 2)
    nonzero = np.flatnonzero(shares > 0)
    out: dict[Hashable, str] = {}
    for k, c in zip(order.tolist(), chosen.tolist(), strict=False):
        if shares[c] == 0:  # only from rounding at a boundary: take the nearest open split
            c = int(nonzero[np.argmin(np.abs(nonzero - c))])
        out[unique[k]] = SPLITS[c]
    return out


def _item_texts(texts, n: int) -> list[list[str]]:
    """Texts per item: each entry of `texts` is one string or a sequence of strings."""
    if isinstance(texts, str):
        raise ParameterError(
            "texts", texts[:40], "must give the texts of each item, one entry per item"
        )
    texts = list(texts)
    if len(texts) != n:
        raise ParameterError(
            "texts", f"{len(texts)} entries", f"must have one entry per group label ({n})"
        )
    out = []
    for entry in texts:
        if isinstance(entry, str):
            out.append([entry])
        elif entry is None or (isinstance(entry, float) and math.isnan(entry)):
            out.append([])
        else:
            out.append([t for t in entry if isinstance(t, str)])
    return out


def merge_groups(
    groups: Sequence[Hashable],
    texts: Sequence[str] | Sequence[Sequence[str]],
    threshold: float = 0.8,
    *,
    num_perm: int = 64,
    clusters: Sequence[int] | None = None,
) -> list:
    """New group label per item: groups that share a near-duplicate text are merged.

    `texts[i]` is the text of item i, or a sequence of its texts (e.g. anchor and
    positive); missing texts (None, NaN) are ignored. Two groups are merged when a text
    of one and a text of the other fall in the same `near_duplicate_clusters` cluster at
    `threshold` (and merging is transitive). A merged group is named after its smallest
    original label, so unmerged groups keep their labels.

    `clusters` may give precomputed cluster labels of the flattened texts (item 0's
    texts first, in order; e.g. `DedupResult.clusters`) to skip recomputing them.
    """
    groups = _check_groups(groups)
    threshold = validate_threshold(threshold)
    per_item = _item_texts(texts, len(groups))
    owner = np.repeat(np.arange(len(groups)), [len(t) for t in per_item])
    flat = [t for item in per_item for t in item]
    if clusters is None:
        labels = near_duplicate_clusters(flat, threshold, num_perm)
    else:
        labels = np.asarray(clusters, dtype=np.int64)
        if labels.shape != (len(flat),):
            raise ParameterError(
                "clusters",
                f"{labels.size} labels",
                f"must give one cluster label per text ({len(flat)})",
            )
    if not groups:
        return []
    unique = _sorted_unique(groups)
    gid = {g: k for k, g in enumerate(unique)}
    item_gid = np.array([gid[g] for g in groups], dtype=np.int64)
    # A bipartite graph of groups (nodes 0..G-1) and clusters (nodes G..): its connected
    # components are the merged groups.
    n_groups, cluster_ids = len(unique), np.unique(labels, return_inverse=True)[1].ravel()
    n = n_groups + (int(cluster_ids.max()) + 1 if len(cluster_ids) else 0)
    edges = (np.ones(len(owner), dtype=np.int8), (item_gid[owner], n_groups + cluster_ids))
    _, component = connected_components(coo_array(edges, shape=(n, n)), directed=False)
    # Each component is named after its smallest label (groups are numbered in sorted order).
    smallest = np.full(n, n_groups, dtype=np.int64)
    np.minimum.at(smallest, component[:n_groups], np.arange(n_groups))
    return [unique[k] for k in smallest[component[item_gid]].tolist()]


def split_frame(
    df: pd.DataFrame,
    group_col: str = "group",
    text_cols: Sequence[str] | str = ("anchor", "positive"),
    fractions: SplitFractions | Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 42,
    near_duplicate_threshold: float | None = 0.8,
    *,
    num_perm: int = 64,
    clusters: Sequence[int] | None = None,
) -> pd.DataFrame:
    """A copy of `df` with a ``split`` column ("train", "validation" or "test").

    Rows are split by `group_col` (`assign_group_splits`, sizes counted in rows) after
    groups sharing a near-duplicate text in any of `text_cols` are merged
    (`merge_groups`); pass ``near_duplicate_threshold=None`` to split by the groups as
    they are.

    `clusters` may give precomputed near-duplicate cluster labels of the texts, row by
    row and within a row in the order of `text_cols`, skipping missing texts (see
    `merge_groups`). For a table of sentences deduplicated with
    `cardioembed.curation.dedup.deduplicate`, ``result.clusters[result.keep]`` are those labels:
    the clusters of the kept texts among themselves are the same as among all texts.
    """
    if not isinstance(df, pd.DataFrame):
        raise ParameterError("df", type(df).__name__, "must be a pandas DataFrame")
    if isinstance(text_cols, str):
        text_cols = (text_cols,)
    text_cols = tuple(text_cols)
    fractions = SplitFractions.coerce(fractions)
    seed = _validate_seed(seed)
    if near_duplicate_threshold is not None:
        near_duplicate_threshold = validate_threshold(near_duplicate_threshold)
    missing = [c for c in (group_col, *text_cols) if c not in df.columns]
    if missing:
        raise InputError(
            f"the table has no column(s) {missing}; it has {list(df.columns)}. "
            "Name the group column with group_col and the text columns with text_cols."
        )
    groups = _check_groups(df[group_col].tolist(), f"column {group_col!r}")
    if near_duplicate_threshold is not None and len(df):
        texts = (
            list(zip(*(df[c].tolist() for c in text_cols), strict=False))
            if text_cols
            else [()] * len(df)
        )
        groups = merge_groups(
            groups, texts, near_duplicate_threshold, num_perm=num_perm, clusters=clusters
        )
    assignment = assign_group_splits(groups, fractions, seed)
    out = df.copy()
    out["split"] = [assignment[g] for g in groups]
    return out


def random_split(
    df: pd.DataFrame, fractions: SplitFractions | Mapping[str, float], seed: int = 42
) -> pd.DataFrame:
    """A copy of `df` whose ``split`` column is drawn row by row, groups ignored: a seeded
    permutation cut into train, validation and test by `fractions`. This is how the
    paper's released data preparation splits its triplets (85/10/5, seed 42); the study
    uses it only to measure what such a split hides (notebook 06)."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError("df", type(df).__name__, "must be a pandas DataFrame")
    fractions = SplitFractions.coerce(fractions)
    seed = _validate_seed(seed)
    n = len(df)
    order = np.random.default_rng(seed).permutation(n)
    n_train = round(n * fractions.train)
    n_validation = round(n * fractions.validation)
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train : n_train + n_validation]] = "validation"
    split[order[n_train + n_validation :]] = "test"
    out = df.copy()
    out["split"] = split
    return out


def split_overlap(
    df: pd.DataFrame,
    group_col: str = "group",
    text_cols: Sequence[str] = ("anchor", "positive"),
    near_duplicate_threshold: float = 0.8,
) -> dict[str, int]:
    """What a split's test rows share with its train rows: groups (a term, a code, a
    passage) found on both sides, the test rows in such groups, and test texts with a
    near (or exact) duplicate among the training texts
    (`cardioembed.curation.dedup.near_duplicate_audit`)."""
    from cardioembed.curation.dedup import near_duplicate_audit

    missing = [c for c in ("split", group_col, *text_cols) if c not in df.columns]
    if missing:
        raise InputError(f"the table has no column(s) {missing}; it has {list(df.columns)}")
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    shared = set(train[group_col]) & set(test[group_col])
    texts = {
        side: [t for c in text_cols for t in frame[c].dropna().astype(str)]
        for side, frame in (("train", train), ("test", test))
    }
    audit = near_duplicate_audit(texts["train"], texts["test"], near_duplicate_threshold)
    return {
        "test_rows": len(test),
        "shared_groups": len(shared),
        "test_rows_in_shared_groups": int(test[group_col].isin(shared).sum()),
        "test_texts": len(texts["test"]),
        "test_texts_with_train_near_duplicate": int(audit["test_index"].nunique()),
    }
