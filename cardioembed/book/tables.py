"""How the chapters show a table: one format for every chapter.

No index column unless it means something (a plain 0, 1, 2... index is hidden), whole
numbers as whole numbers (a count column with a missing value is not shown as 1365.0),
missing values as a dash, other numbers to three decimals, settings such as 0.05 as
written.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

DECIMALS = 3
DASH = "–"


def _whole(values: pd.Series) -> bool:
    """A float column of counts: every value whole and some above 1 (so a metric column
    whose values all happen to be 0 or 1 keeps its decimals)."""
    present = values.dropna()
    return (
        values.dtype.kind == "f"
        and len(present) > 0
        and bool((present == present.round()).all())
        and bool((present.abs() > 1).any())
    )


def _label(value):
    return f"{value:g}" if isinstance(value, float) else value


def show(
    frame: pd.DataFrame | pd.Series,
    decimals: int | Mapping[str, int] = DECIMALS,
    index: bool | None = None,
):
    """`frame` styled for display. `decimals`: for every number, or per column (others
    get :data:`DECIMALS`). `index`: show it (True), hide it (False), or, by default, hide
    it only when it is the plain 0, 1, 2... of a table without one."""
    frame = frame.to_frame() if isinstance(frame, pd.Series) else frame.copy()
    for column in frame.columns:
        if _whole(frame[column]):
            frame[column] = frame[column].astype("Int64")
    styler = frame.style.format(precision=DECIMALS, na_rep=DASH, thousands=",")
    if isinstance(decimals, Mapping):
        for column, places in decimals.items():
            styler = styler.format(precision=places, na_rep=DASH, subset=[column])
    elif decimals != DECIMALS:
        styler = styler.format(precision=decimals, na_rep=DASH, thousands=",")
    styler = styler.format_index(_label, axis="index")
    if index is False or (index is None and isinstance(frame.index, pd.RangeIndex)):
        styler = styler.hide(axis="index")
    return styler
