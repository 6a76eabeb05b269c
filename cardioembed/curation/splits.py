"""Leakage-safe train/validation/test splits by group (term, code, passage), after groups
that share a near-duplicate text are merged. Sizes count items, not groups: the shuffled
groups are laid end to end by item count, and a group goes to the split in whose share
of [0, 1) its midpoint lies.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from cardioembed.curation.dedup import near_duplicate_clusters
from cardioembed.errors import InputError, ParameterError, check_int, check_number

SPLITS = ("train", "validation", "test")
_FRACTIONS_HELP = (
    "a mapping with the keys train, validation and test whose fractions each lie in "
    "[0, 1] and add up to 1, e.g. {train: 0.8, validation: 0.1, test: 0.1}"
)


def check_fractions(fractions, name: str = "split_fractions") -> dict[str, float]:
    """Split fractions (notebook 01's `split_fractions`) as {split: fraction}, else a
    ParameterError naming the parameter `name`."""
    if not isinstance(fractions, Mapping) or set(fractions) != set(SPLITS):
        raise ParameterError(name, fractions, _FRACTIONS_HELP)
    values = {s: check_number(name, fractions[s], 0, 1, _FRACTIONS_HELP) for s in SPLITS}
    if abs(sum(values.values()) - 1.0) > 1e-6:
        total = f" (they add up to {sum(values.values()):g})"
        raise ParameterError(name, dict(fractions), _FRACTIONS_HELP + total)
    return values


def _check_groups(groups) -> list:
    groups = list(groups)
    for g in groups:
        if g is None or (isinstance(g, float) and math.isnan(g)) or not isinstance(g, Hashable):
            raise InputError(
                f"every item needs a group label (a string); found {g!r}. "
                "Give each item the term, code or passage it comes from."
            )
    return groups


def assign_group_splits(groups, fractions: Mapping[str, float], seed: int) -> dict:
    """{group label: split} for `groups` (one label per item), by the multiset of labels
    and the seed; a split with fraction 0 gets no group, one with a small fraction may."""
    shares = np.array(list(check_fractions(fractions).values()))
    seed = check_int("seed", seed, 0, "give a whole number of at least 0, e.g. 42")
    counts = Counter(_check_groups(groups))
    unique = sorted(counts)
    order = np.random.default_rng(seed).permutation(len(unique))
    sizes = np.array([counts[unique[k]] for k in order], dtype=np.float64)
    midpoints = (np.cumsum(sizes) - sizes / 2.0) / max(sizes.sum(), 1)
    chosen = np.minimum(np.searchsorted(np.cumsum(shares), midpoints, side="right"), 2)
    nonzero = np.flatnonzero(shares > 0)
    out = {}
    for k, c in zip(order.tolist(), chosen.tolist(), strict=True):
        if shares[c] == 0:  # only from rounding at a boundary: take the nearest open split
            c = int(nonzero[np.argmin(np.abs(nonzero - c))])
        out[unique[k]] = SPLITS[c]
    return out


def merge_groups(groups, texts, threshold: float) -> list:
    """New group label per item: groups with texts (`texts[i]`: a text or several; None
    and NaN ignored) in one near-duplicate cluster merged, transitively, under the smallest."""
    groups = _check_groups(groups)
    texts = list(texts)
    if len(texts) != len(groups):
        raise ParameterError("texts", f"{len(texts)} entries", f"give one per item ({len(groups)})")
    # each item's texts: one, several, or none (None, NaN)
    per_item = [[t] if isinstance(t, str) else t if isinstance(t, Iterable) else [] for t in texts]
    per_item = [[x for x in item if isinstance(x, str)] for item in per_item]
    labels = near_duplicate_clusters([t for item in per_item for t in item], threshold)
    codes, unique = pd.factorize(pd.Series(groups, dtype=object), sort=True)
    owner = np.repeat(codes, [len(t) for t in per_item])
    # A graph of groups (nodes 0..G-1) and clusters (nodes G..): its components are the
    # merged groups, each named after its smallest (first sorted) group.
    n_groups = len(unique)
    n = n_groups + (int(labels.max()) + 1 if len(labels) else 0)
    edges = (np.ones(len(owner)), (owner, n_groups + labels))
    _, component = connected_components(coo_array(edges, shape=(n, n)), directed=False)
    smallest = np.full(n, n_groups, dtype=np.int64)
    np.minimum.at(smallest, component[:n_groups], np.arange(n_groups))
    return list(unique[smallest[component[codes]]])


def split_frame(
    df: pd.DataFrame,
    fractions: Mapping[str, float],
    seed: int,
    near_duplicate_threshold: float | None,
    text_cols: tuple[str, ...] = ("anchor", "positive"),
) -> pd.DataFrame:
    """`df` with a ``split`` by ``group``, groups sharing a near-duplicate text in
    `text_cols` merged first (a threshold of None: groups as they are)."""
    if missing := [c for c in ("group", *text_cols) if c not in df.columns]:
        raise InputError(f"the table has no column(s) {missing}; it has {list(df.columns)}")
    groups = _check_groups(df["group"])
    if near_duplicate_threshold is not None and len(df):
        texts = list(zip(*(df[c].tolist() for c in text_cols), strict=True))
        groups = merge_groups(groups, texts, near_duplicate_threshold)
    assignment = assign_group_splits(groups, fractions, seed)
    return df.assign(split=[assignment[g] for g in groups])
