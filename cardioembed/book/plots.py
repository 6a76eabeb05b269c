"""The study's figure style and the figure pieces that several chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

METRIC_LABELS = {"acc@1": "Acc@1", "spearman": "Spearman"}
LEGEND_RIGHT = dict(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
POINT = {"fmt": "o", "ms": 4, "capsize": 2}  # a value with its interval


def set_style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight"})


def interval_errors(frame: pd.DataFrame, value="value", low="ci_low", high="ci_high") -> list:
    """Matplotlib's error lengths (below, above) of the intervals in `frame`."""
    return [frame[value] - frame[low], frame[high] - frame[value]]


def seed_panels(rows: pd.DataFrame, width: float, spread: float):
    """A titled panel per suite with its rows, and per seed an offset (within `spread`) and
    a style, so that the seeds of one setting stand side by side."""
    suites = list(dict.fromkeys(rows["suite"]))
    fig, axes = plt.subplots(1, len(suites), figsize=(width * len(suites), 3.2), squeeze=False)
    seeds = sorted(rows["seed"].unique())
    offsets = np.linspace(-spread / 2, spread / 2, len(seeds)) if len(seeds) > 1 else [0.0]
    colors = sns.color_palette("dark", len(seeds))
    styles = [
        {"color": c, "label": f"seed {s}", **POINT} for s, c in zip(seeds, colors, strict=True)
    ]
    panels = [(ax, rows[rows["suite"] == suite]) for ax, suite in zip(axes[0], suites, strict=True)]
    for (ax, data), suite in zip(panels, suites, strict=True):
        ax.set_title(suite, fontsize="medium")
        ax.set_ylabel(METRIC_LABELS.get(data["metric"].iloc[0], data["metric"].iloc[0]))
    return fig, panels, list(zip(seeds, offsets, styles, strict=True))


def cosine_distributions(geometry: pd.DataFrame, order: list, xlabel: str) -> plt.Figure:
    """Per setting (in `order`), the cosines of each query with its own positive against
    those with other documents, all seeds together."""
    order = [str(s) for s in order]
    kinds = {"positive": "own positive", "negative": "other documents"}
    data = geometry.assign(
        setting=geometry["setting"].astype(str), kind=geometry["kind"].map(kinds)
    )
    fig, ax = plt.subplots(figsize=(max(5.5, 1.5 * len(order)), 3.6))
    sns.violinplot(
        data,
        x="setting",
        y="cosine",
        hue="kind",
        order=order,
        hue_order=list(kinds.values()),
        split=True,
        inner="quart",
        density_norm="width",
        cut=0,
        ax=ax,
    )
    ax.set(xlabel=xlabel, ylabel="cosine with the query")
    ax.legend(frameon=False, fontsize="small", loc="lower left")
    fig.tight_layout()
    plt.close(fig)  # shown where the chapter glues it
    return fig
