"""How every chapter shows a table and an estimate: counts as whole numbers, missing
values as a dash, other numbers to three decimals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

DECIMALS = 3


def show(frame, decimals: Mapping[str, int] | None = None, index: bool = False):
    """`frame` (or a Series) styled for display; `decimals`: of some columns; `index`: show
    a plain 0, 1, 2... index too."""
    frame = frame.to_frame() if isinstance(frame, pd.Series) else frame.copy()
    for column in frame.columns:
        present = frame[column].dropna()
        # whole numbers, some above 1 (a metric whose values are all 0 or 1 keeps decimals)
        whole = present.dtype.kind == "f" and (present == present.round()).all()
        if whole and (present.abs() > 1).any():
            frame[column] = frame[column].astype("Int64")
    styler = frame.style.format(precision=DECIMALS, na_rep="–", thousands=",")
    for column, precision in (decimals or {}).items():
        styler = styler.format(precision=precision, na_rep="–", subset=[column])
    styler = styler.format_index(lambda v: f"{v:g}" if isinstance(v, float) else v, axis="index")
    if not index and isinstance(frame.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler


def estimate(value, low=None, high=None, seeds: Sequence[float] = (), sign: str = "+") -> str:
    """ "+0.063 (95% CI +0.026 to +0.100; 3 seeds: +0.050 to +0.071)", or a dash when it
    was not measured; `sign`: "+" for a difference, "" for a score."""
    if value is None or not math.isfinite(value):
        return "–"
    number = f"{{:{sign}.{DECIMALS}f}}".format
    bounds = [b for b in (low, high) if b is not None and math.isfinite(b)]
    parts = [f"95% CI {number(low)} to {number(high)}"] if len(bounds) == 2 else []
    if len(seeds) > 1:
        parts.append(f"{len(seeds)} seeds: {number(min(seeds))} to {number(max(seeds))}")
    elif len(seeds) == 1:
        parts.append("one seed")
    return number(value) + (f" ({'; '.join(parts)})" if parts else "")
