"""Figures shared by the notebooks, in one style.

Each function returns a closed figure: a notebook shows it where it glues it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

SPLIT_ORDER = ["train", "validation", "test"]
METRIC_LABELS = {"acc@1": "Acc@1", "spearman": "Spearman"}
LEGEND_RIGHT = {
    "frameon": False,
    "fontsize": "small",
    "loc": "center left",
    "bbox_to_anchor": (1, 0.5),
}
POINT = {"fmt": "o", "ms": 4, "capsize": 2}  # a value with its interval


def set_style() -> None:
    """The study's figure style."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight"})


def _done(fig: plt.Figure) -> plt.Figure:
    fig.tight_layout()
    plt.close(fig)
    return fig


def _errors(frame: pd.DataFrame, value="value", low="ci_low", high="ci_high") -> list:
    """Matplotlib's asymmetric error lengths (below, above) of the intervals in `frame`."""
    return [frame[value] - frame[low], frame[high] - frame[value]]


def length_distribution(pairs: pd.DataFrame) -> plt.Figure:
    """Characters per text, anchors and positives."""
    texts = pairs.melt(value_vars=["anchor", "positive"], var_name="role", value_name="text")
    texts["chars"] = texts["text"].str.len()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.histplot(texts, x="chars", hue="role", element="step", log_scale=True, bins=40, ax=ax)
    ax.set(xlabel="characters per text (log scale)", ylabel="texts")
    return _done(fig)


def composition(pairs: pd.DataFrame) -> plt.Figure:
    """Pairs by kind and split."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    kinds = sorted(pairs["kind"].unique())
    sns.countplot(pairs, y="kind", order=kinds, hue="split", hue_order=SPLIT_ORDER, ax=ax)
    ax.set(xlabel="pairs", ylabel="")
    return _done(fig)


def training_curves(
    history: pd.DataFrame, metric: str = "eval_validation_cosine_accuracy@1"
) -> plt.Figure:
    """Training loss per step (with a running mean) beside the validation metric."""
    history = history.reindex(columns=["step", "loss", metric])
    loss, evals = history.dropna(subset=["loss"]), history.dropna(subset=[metric])
    window = max(1, len(loss) // 10)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.3))
    left.plot(loss["step"], loss["loss"], color="0.75", lw=1, label="per step")
    running = loss["loss"].rolling(window, min_periods=1).mean()
    left.plot(loss["step"], running, lw=2, label=f"running mean ({window} steps)")
    left.legend(frameon=False)
    left.set(xlabel="step", ylabel="InfoNCE loss")
    right.plot(evals["step"], evals[metric], marker="o")
    label = metric.removeprefix("eval_validation_cosine_").replace("accuracy", "acc")
    right.set(xlabel="step", ylabel=label)
    right.set_title("validation pairs", fontsize="medium")
    return _done(fig)


def metric_bars(
    metrics: pd.DataFrame, main_metric: dict[str, str], models: list[str]
) -> plt.Figure:
    """One panel per suite: each model's main metric with its 95% interval."""
    suites = [s for s in main_metric if s in set(metrics["suite"])]
    ncols = min(4, len(suites)) or 1
    nrows = -(-len(suites) // ncols) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.6 * nrows), squeeze=False)
    colors = dict(zip(models, sns.color_palette("colorblind", len(models)), strict=True))
    for ax, suite in zip(axes.flat, suites, strict=False):
        rows = metrics[(metrics["suite"] == suite) & (metrics["metric"] == main_metric[suite])]
        rows = rows.set_index("model").reindex([m for m in models if m in set(rows["model"])])
        names = [m if len(m) <= 18 else m[:17] + "…" for m in rows.index]
        color = [colors[m] for m in rows.index]
        ax.barh(range(len(rows)), rows["value"], xerr=_errors(rows), color=color, capsize=3)
        ax.set_yticks(range(len(rows)), names)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize="small")
        ax.set_title(suite, fontsize="small")
        ax.set_xlabel(main_metric[suite], fontsize="small")
    for ax in axes.flat[len(suites) :]:
        ax.set_visible(False)
    return _done(fig)


def gain_vs_change(gains: pd.DataFrame, x: tuple[str, str], y: tuple[str, str]) -> plt.Figure:
    """Each model's paired gain over the base on suite/metric `y` against its change on
    `x`, with 95% intervals both ways; the shaded half-plane left of 0 is forgetting."""

    def part(suite, metric):
        rows = gains[(gains["suite"] == suite) & (gains["metric"] == metric)]
        return rows.set_index("model")[["gain", "ci_low", "ci_high"]]

    both = part(*x).join(part(*y), lsuffix="_x", rsuffix="_y", how="inner")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axvspan(min(-0.01, both["ci_low_x"].min() - 0.01) if len(both) else -0.05, 0, color="0.92")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    for model in both.index:
        row = both.loc[[model]]
        xerr = _errors(row, "gain_x", "ci_low_x", "ci_high_x")
        yerr = _errors(row, "gain_y", "ci_low_y", "ci_high_y")
        ax.errorbar(row["gain_x"], row["gain_y"], xerr=xerr, yerr=yerr, **POINT, label=model)
    ax.set(xlabel=f"change on {x[0]} ({x[1]})", ylabel=f"gain on {y[0]} ({y[1]})")
    if len(both) <= 8:
        ax.legend(frameon=False, fontsize="x-small", loc="best")
    return _done(fig)


def embedding_maps(coords: dict[str, np.ndarray], labels: list[str]) -> plt.Figure:
    """Side-by-side 2-D maps (one per model) coloured by `labels`."""
    fig, axes = plt.subplots(1, len(coords), figsize=(5.2 * len(coords), 4.6), squeeze=False)
    order = pd.Series(labels).value_counts().index
    for ax, (name, xy) in zip(axes[0], coords.items(), strict=True):
        last = ax is axes[0, -1]
        sns.scatterplot(
            x=xy[:, 0], y=xy[:, 1], hue=labels, hue_order=order, ax=ax, legend=last, s=9, lw=0
        )
        ax.set(xticks=[], yticks=[])
        ax.set_title(name, fontsize="medium")
    sns.move_legend(
        axes[0, -1], "upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize="x-small"
    )
    return _done(fig)


# ----------------------------------------------------------------------------- ablations
def _seed_panels(rows: pd.DataFrame, width: float, spread: float):
    """A titled panel per suite with its rows; per seed, an offset (within `spread`) that
    puts the seeds of one setting side by side, and a style."""
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


def sweep_bars(rows: pd.DataFrame, order: list | None = None, default=None) -> plt.Figure:
    """One panel per suite: a bar per setting (mean over seeds) and, on it, each seed's
    value with its bootstrap interval over queries. `rows`: setting, seed, suite, metric,
    value, ci_low, ci_high (one metric per suite). The `default` setting's bar is hatched."""
    order = list(order or dict.fromkeys(rows["setting"]))
    position = {setting: i for i, setting in enumerate(order)}
    fig, panels, seeds = _seed_panels(rows, width=3.4, spread=0.4)
    for ax, data in panels:
        means = data.groupby("setting")["value"].mean().reindex(order)
        bars = ax.bar(range(len(order)), means, width=0.7, color="0.85", tick_label=order)
        if default in position:
            bars[position[default]].set(hatch="//", edgecolor="0.4")
        for seed, offset, style in seeds:
            part = data[data["seed"] == seed]
            x = part["setting"].map(position) + offset
            ax.errorbar(x, part["value"], yerr=_errors(part), **style)
    panels[-1][0].legend(**LEGEND_RIGHT)
    return _done(fig)


def sweep_curve(
    rows: pd.DataFrame,
    default: float | None = None,
    xlabel: str = r"temperature $\tau$ (log scale)",
) -> plt.Figure:
    """One panel per suite: the metric against a numeric setting on a log axis; each
    seed's value with its bootstrap interval (seeds side by side), a line through the
    mean over seeds, and a dashed line at the `default` setting."""
    fig, panels, seeds = _seed_panels(rows, width=3.6, spread=0.12)  # in log10 units
    for ax, data in panels:
        data = data.astype({"setting": float})
        means = data.groupby("setting")["value"].mean()
        ax.plot(means.index, means.values, color="0.3", lw=1.5, label="mean over seeds")
        for seed, offset, style in seeds:
            part = data[data["seed"] == seed]
            ax.errorbar(part["setting"] * 10**offset, part["value"], yerr=_errors(part), **style)
        if default is not None:
            ax.axvline(default, color="0.5", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(list(means.index), [f"{t:g}" for t in means.index])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
    panels[-1][0].legend(**LEGEND_RIGHT)
    return _done(fig)


def cosine_distributions(
    geometry: pd.DataFrame, order: list | None = None, xlabel: str = "setting"
) -> plt.Figure:
    """Per setting, the cosine of each query with its own positive (left half) against
    its cosine with other documents (right half), all seeds together."""
    order = [str(s) for s in order or dict.fromkeys(geometry["setting"])]
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
    return _done(fig)


# ----------------------------------------------------------------------------- leakage
def _grouped_bars(ax, data: pd.DataFrame, x: str, hue: str, value: str, low: str, high: str):
    """Bars of `value` per `x`, a colour per `hue`, with their intervals, in the order the
    rows give."""
    order = {"index": list(dict.fromkeys(data[x])), "columns": list(dict.fromkeys(data[hue]))}
    table = {
        c: data.pivot(index=x, columns=hue, values=c).reindex(**order) for c in (value, low, high)
    }
    middle = table[value]
    # pandas takes the asymmetric errors of a table as (columns, below/above, rows)
    errors = np.stack([(middle - table[low]).T, (table[high] - middle).T], axis=1)
    colors = sns.color_palette("deep", middle.shape[1])
    error_style = {"ecolor": "0.2", "lw": 1, "capsize": 2}
    middle.plot.bar(ax=ax, yerr=errors, width=0.8, rot=0, color=colors, error_kw=error_style)
    ax.set_xlabel("")


def leakage_bars(rows: pd.DataFrame, metric: str = "acc@1") -> plt.Figure:
    """Per split (x), the base and the trained model's `metric` with their intervals.
    `rows`: split, model, metric, value, ci_low, ci_high."""
    data = rows[rows["metric"] == metric]
    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    data = data.assign(split=data["split"] + " split")
    _grouped_bars(ax, data, "split", "model", "value", "ci_low", "ci_high")
    ax.set(ylabel=METRIC_LABELS.get(metric, metric), ylim=(0, 1))
    ax.legend(frameon=False, fontsize="small", loc="upper right")
    return _done(fig)


def transfer_bars(rows: pd.DataFrame) -> plt.Figure:
    """Per suite (x), each trained model's gain over the base with its paired interval.
    `rows`: trained_on, suite, gain, gain_low, gain_high (base rows are left out). With no
    rows, a figure that says transfer was not measured."""
    data = rows[rows["trained_on"] != "base"]
    fig, ax = plt.subplots(figsize=(7, 3.3))
    if data.empty:
        ax.text(0.5, 0.5, "transfer not measured for this profile", ha="center", va="center")
        ax.set_axis_off()
        return _done(fig)
    _grouped_bars(ax, data, "suite", "trained_on", "gain", "gain_low", "gain_high")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylabel("Acc@1 gain over the base")
    ax.legend(title="trained on", **LEGEND_RIGHT)
    return _done(fig)
