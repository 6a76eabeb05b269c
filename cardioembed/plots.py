"""Figures shared by the notebooks, in one style."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # notebooks are executed headless by papermill
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

SPLIT_ORDER = ["train", "validation", "test"]


def set_style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight"})


def length_distribution(pairs: pd.DataFrame) -> plt.Figure:
    """Characters per text, anchors and positives, by source."""
    long = pd.concat([
        pairs.assign(role="anchor", chars=pairs["anchor"].str.len()),
        pairs.assign(role="positive", chars=pairs["positive"].str.len()),
    ])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.histplot(long, x="chars", hue="role", element="step", stat="count",
                 log_scale=True, bins=40, ax=ax)
    ax.set_xlabel("characters per text (log scale)")
    ax.set_ylabel("texts")
    fig.tight_layout()
    plt.close(fig)
    return fig


def composition(pairs: pd.DataFrame) -> plt.Figure:
    """Pairs by kind and split."""
    counts = pairs.groupby(["kind", "split"]).size().rename("pairs").reset_index()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(counts, y="kind", x="pairs", hue="split", hue_order=SPLIT_ORDER, ax=ax)
    ax.set_xlabel("pairs")
    ax.set_ylabel("")
    fig.tight_layout()
    plt.close(fig)
    return fig
