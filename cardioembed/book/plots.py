"""Figures shared by the notebooks, in one style."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # notebooks are executed headless by papermill
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

SPLIT_ORDER = ["train", "validation", "test"]


def set_style() -> None:
    """The study's figure style; in a notebook, figures are also rendered (and glued) as
    images."""
    enable_notebook_figures()
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight"})


def length_distribution(pairs: pd.DataFrame) -> plt.Figure:
    """Characters per text, anchors and positives, by source."""
    long = pd.concat(
        [
            pairs.assign(role="anchor", chars=pairs["anchor"].str.len()),
            pairs.assign(role="positive", chars=pairs["positive"].str.len()),
        ]
    )
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.histplot(
        long, x="chars", hue="role", element="step", stat="count", log_scale=True, bins=40, ax=ax
    )
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


def training_curves(
    history: pd.DataFrame, metric: str = "eval_validation_cosine_accuracy@1"
) -> plt.Figure:
    """Training loss per step (with a running mean) beside the validation metric."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.3))
    loss = history.dropna(subset=["loss"]) if "loss" in history else history.iloc[0:0]
    if len(loss):
        left.plot(loss["step"], loss["loss"], color="0.75", lw=1, label="per step")
        window = max(1, len(loss) // 10)
        left.plot(
            loss["step"],
            loss["loss"].rolling(window, min_periods=1).mean(),
            lw=2,
            label=f"running mean ({window} steps)",
        )
        left.legend(frameon=False)
    left.set_xlabel("step")
    left.set_ylabel("InfoNCE loss")
    evals = history.dropna(subset=[metric]) if metric in history else history.iloc[0:0]
    if len(evals):
        right.plot(evals["step"], evals[metric], marker="o")
    right.set_xlabel("step")
    right.set_ylabel(metric.removeprefix("eval_validation_cosine_").replace("accuracy", "acc"))
    right.set_title("validation pairs", fontsize="medium")
    fig.tight_layout()
    plt.close(fig)
    return fig


def metric_bars(
    metrics: pd.DataFrame, main_metric: dict[str, str], models: list[str]
) -> plt.Figure:
    """One panel per suite: each model's main metric with its 95% interval."""
    suites = [s for s in main_metric if s in set(metrics["suite"])]
    ncols = min(4, len(suites)) or 1
    nrows = -(-len(suites) // ncols) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.6 * nrows), squeeze=False)
    palette = dict(zip(models, sns.color_palette("colorblind", len(models)), strict=False))
    for ax, suite in zip(axes.flat, suites, strict=False):
        rows = metrics[(metrics["suite"] == suite) & (metrics["metric"] == main_metric[suite])]
        rows = rows.set_index("model").reindex([m for m in models if m in set(rows["model"])])
        y = range(len(rows))
        ax.barh(y, rows["value"], color=[palette[m] for m in rows.index])
        ax.errorbar(
            rows["value"],
            y,
            xerr=[rows["value"] - rows["ci_low"], rows["ci_high"] - rows["value"]],
            fmt="none",
            ecolor="black",
            capsize=3,
            lw=1,
        )
        ax.set_yticks(
            list(y), [m if len(m) <= 18 else m[:17] + "…" for m in rows.index], fontsize="small"
        )
        ax.invert_yaxis()
        ax.set_title(suite, fontsize="small")
        ax.set_xlabel(main_metric[suite], fontsize="small")
    for ax in list(axes.flat)[len(suites) :]:
        ax.set_visible(False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def gain_vs_change(gains: pd.DataFrame, x: tuple[str, str], y: tuple[str, str]) -> plt.Figure:
    """Each model's paired gain over the base on suite/metric `y` against its change on
    `x`, with 95% intervals both ways; the shaded half-plane left of 0 is forgetting."""

    def part(suite, metric):
        rows = gains[(gains["suite"] == suite) & (gains["metric"] == metric)]
        return rows.set_index("model")[["gain", "ci_low", "ci_high"]]

    gx, gy = part(*x), part(*y)
    both = gx.join(gy, lsuffix="_x", rsuffix="_y", how="inner")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axvspan(
        min(-0.01, both["ci_low_x"].min() - 0.01) if len(both) else -0.05, 0, color="0.92", zorder=0
    )
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    for model, row in both.iterrows():
        ax.errorbar(
            row["gain_x"],
            row["gain_y"],
            xerr=[[row["gain_x"] - row["ci_low_x"]], [row["ci_high_x"] - row["gain_x"]]],
            yerr=[[row["gain_y"] - row["ci_low_y"]], [row["ci_high_y"] - row["gain_y"]]],
            fmt="o",
            capsize=3,
            label=model,
        )
    ax.set_xlabel(f"change on {x[0]} ({x[1]})")
    ax.set_ylabel(f"gain on {y[0]} ({y[1]})")
    if len(both) <= 8:
        ax.legend(frameon=False, fontsize="x-small", loc="best")
    fig.tight_layout()
    plt.close(fig)
    return fig


def embedding_maps(coords: dict[str, pd.DataFrame], labels: list[str]) -> plt.Figure:
    """Side-by-side 2-D maps (one per model) coloured by `labels`."""
    fig, axes = plt.subplots(1, len(coords), figsize=(5.2 * len(coords), 4.6), squeeze=False)
    order = pd.Series(labels).value_counts().index.tolist()
    for ax, (name, xy) in zip(axes.flat, coords.items(), strict=True):
        frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "branch": labels})
        sns.scatterplot(
            frame,
            x="x",
            y="y",
            hue="branch",
            hue_order=order,
            s=9,
            linewidth=0,
            ax=ax,
            legend=ax is axes.flat[-1],
        )
        ax.set_title(name, fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
    legend = axes.flat[-1].get_legend()
    if legend is not None:
        sns.move_legend(
            axes.flat[-1],
            "upper left",
            bbox_to_anchor=(1.01, 1),
            frameon=False,
            fontsize="x-small",
            title=None,
        )
    fig.tight_layout()
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------- ablations
def _metric_label(metric: str) -> str:
    return {"acc@1": "Acc@1", "spearman": "Spearman"}.get(metric, metric)


def _suite_panels(rows: pd.DataFrame, width: float = 3.4, height: float = 3.2):
    suites = list(dict.fromkeys(rows["suite"]))
    fig, axes = plt.subplots(1, len(suites), figsize=(width * len(suites), height), squeeze=False)
    return fig, suites, list(axes[0])


def _seed_offsets(seeds: list, spread: float) -> dict:
    """Horizontal offsets that put the seeds of one setting side by side."""
    if len(seeds) == 1:
        return {seeds[0]: 0.0}
    step = spread / (len(seeds) - 1)
    return {seed: -spread / 2 + i * step for i, seed in enumerate(seeds)}


def sweep_bars(rows: pd.DataFrame, order: list | None = None, default=None) -> plt.Figure:
    """One panel per suite: a bar per setting (mean over seeds) and, on it, each seed's
    value with its bootstrap interval over queries. `rows`: setting, seed, suite, metric,
    value, ci_low, ci_high (one metric per suite). The `default` setting's bar is hatched."""
    fig, suites, axes = _suite_panels(rows)
    order = order or list(dict.fromkeys(rows["setting"]))
    seeds = sorted(rows["seed"].unique())
    offsets = _seed_offsets(seeds, 0.4)
    colors = dict(zip(seeds, sns.color_palette("dark", len(seeds)), strict=True))
    for ax, suite in zip(axes, suites, strict=True):
        data = rows[rows["suite"] == suite]
        means = data.groupby("setting")["value"].mean()
        x = range(len(order))
        bars = ax.bar(x, [means.get(s, float("nan")) for s in order], color="0.85", width=0.7)
        for bar, setting in zip(bars, order, strict=True):
            if setting == default:
                bar.set_hatch("//")
                bar.set_edgecolor("0.4")
        for i, setting in enumerate(order):
            for seed in seeds:
                point = data[(data["setting"] == setting) & (data["seed"] == seed)]
                if point.empty:
                    continue
                value = float(point["value"].iloc[0])
                err = [
                    [value - float(point["ci_low"].iloc[0])],
                    [float(point["ci_high"].iloc[0]) - value],
                ]
                ax.errorbar(
                    i + offsets[seed],
                    value,
                    yerr=err,
                    fmt="o",
                    ms=4,
                    capsize=2,
                    color=colors[seed],
                    label=f"seed {seed}" if i == 0 else None,
                )
        ax.set_xticks(list(x), [str(s) for s in order])
        ax.set_title(suite, fontsize="medium")
        ax.set_ylabel(_metric_label(str(data["metric"].iloc[0])))
    axes[-1].legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    plt.close(fig)
    return fig


def sweep_curve(
    rows: pd.DataFrame,
    default: float | None = None,
    xlabel: str = r"temperature $\tau$ (log scale)",
) -> plt.Figure:
    """One panel per suite: the metric against a numeric setting on a log axis; each
    seed's value with its bootstrap interval (seeds side by side), a line through the
    mean over seeds, and a dashed line at the `default` setting."""
    fig, suites, axes = _suite_panels(rows, width=3.6)
    seeds = sorted(rows["seed"].unique())
    offsets = _seed_offsets(seeds, 0.12)  # in log10 units
    colors = dict(zip(seeds, sns.color_palette("dark", len(seeds)), strict=True))
    for ax, suite in zip(axes, suites, strict=True):
        data = rows[rows["suite"] == suite].astype({"setting": float})
        means = data.groupby("setting")["value"].mean().sort_index()
        ax.plot(means.index, means.values, color="0.3", lw=1.5, label="mean over seeds")
        for seed in seeds:
            part = data[data["seed"] == seed].sort_values("setting")
            x = part["setting"] * 10 ** offsets[seed]
            ax.errorbar(
                x,
                part["value"],
                yerr=[part["value"] - part["ci_low"], part["ci_high"] - part["value"]],
                fmt="o",
                ms=4,
                capsize=2,
                color=colors[seed],
                label=f"seed {seed}",
            )
        if default is not None:
            ax.axvline(default, color="0.5", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(list(means.index), [f"{t:g}" for t in means.index])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_metric_label(str(data["metric"].iloc[0])))
        ax.set_title(suite, fontsize="medium")
    axes[-1].legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    plt.close(fig)
    return fig


def cosine_distributions(
    geometry: pd.DataFrame, order: list | None = None, xlabel: str = "setting"
) -> plt.Figure:
    """Per setting, the cosine of each query with its own positive (left half) against
    its cosine with other documents (right half), all seeds together."""
    order = order or list(dict.fromkeys(geometry["setting"]))
    data = geometry.assign(
        setting=geometry["setting"].astype(str),
        kind=geometry["kind"].map({"positive": "own positive", "negative": "other documents"}),
    )
    fig, ax = plt.subplots(figsize=(max(5.5, 1.5 * len(order)), 3.6))
    sns.violinplot(
        data,
        x="setting",
        y="cosine",
        hue="kind",
        split=True,
        inner="quart",
        order=[str(s) for s in order],
        hue_order=["own positive", "other documents"],
        density_norm="width",
        cut=0,
        ax=ax,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cosine with the query")
    ax.legend(frameon=False, fontsize="small", loc="lower left")
    fig.tight_layout()
    plt.close(fig)
    return fig


def enable_notebook_figures(formats: tuple[str, ...] = ("png",)) -> None:
    """Make IPython render matplotlib figures as images (for `glue` and cell outputs).

    The Agg backend chosen above is not the inline backend, so without this a figure in a
    kernel is shown, and glued, as its text repr only. Outside IPython it does nothing."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - IPython ships with the notebook stack
        return
    if get_ipython() is not None:
        set_matplotlib_formats(*formats)


def _interval_bars(ax, groups: list, members: list, values, lows, highs) -> None:
    """Grouped bars with error bars: `values[g][m]` for group g and member m."""
    width = 0.8 / len(members)
    colors = sns.color_palette("deep", len(members))
    for j, member in enumerate(members):
        x = [i + (j - (len(members) - 1) / 2) * width for i in range(len(groups))]
        v = [values[g][member] for g in groups]
        err = [
            [a - lows[g][member] for a, g in zip(v, groups, strict=True)],
            [highs[g][member] - a for a, g in zip(v, groups, strict=True)],
        ]
        ax.bar(x, v, width=width * 0.95, color=colors[j], label=member)
        ax.errorbar(x, v, yerr=err, fmt="none", ecolor="0.2", capsize=2, lw=1)
    ax.set_xticks(range(len(groups)), groups)


def leakage_bars(rows: pd.DataFrame, metric: str = "acc@1") -> plt.Figure:
    """Per split (x), the base and the trained model's `metric` with their intervals.
    `rows`: split, model, metric, value, ci_low, ci_high."""
    data = rows[rows["metric"] == metric]
    table = {
        c: data.pivot(index="split", columns="model", values=c)
        for c in ("value", "ci_low", "ci_high")
    }
    splits = list(dict.fromkeys(data["split"]))
    models = list(dict.fromkeys(data["model"]))
    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    _interval_bars(
        ax,
        splits,
        models,
        *(table[c].to_dict("index") for c in ("value", "ci_low", "ci_high")),
    )
    ax.set_xticks(range(len(splits)), [f"{s} split" for s in splits])
    ax.set_ylabel(_metric_label(metric))
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize="small", loc="upper right")
    fig.tight_layout()
    plt.close(fig)
    return fig


def transfer_bars(rows: pd.DataFrame) -> plt.Figure:
    """Per suite (x), each trained model's gain over the base with its paired interval.
    `rows`: trained_on, suite, gain, gain_low, gain_high (base rows are left out). With no
    rows, a figure that says transfer was not measured."""
    data = rows[rows["trained_on"] != "base"]
    fig, ax = plt.subplots(figsize=(7, 3.3))
    if data.empty:
        ax.text(0.5, 0.5, "transfer not measured for this profile", ha="center", va="center")
        ax.set_axis_off()
    else:
        pivots = [
            data.pivot(index="suite", columns="trained_on", values=c).to_dict("index")
            for c in ("gain", "gain_low", "gain_high")
        ]
        suites = list(dict.fromkeys(data["suite"]))
        _interval_bars(ax, suites, list(dict.fromkeys(data["trained_on"])), *pivots)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_ylabel("Acc@1 gain over the base")
        ax.legend(
            title="trained on",
            frameon=False,
            fontsize="small",
            loc="center left",
            bbox_to_anchor=(1, 0.5),
        )
    fig.tight_layout()
    plt.close(fig)
    return fig
