"""What the ablation chapters 03 and 04 share (they show their loop). A point's scores
(``ablations/points/<run-name>-<hash>/``) are keyed by the run's files, the suites and the
seed. Settings are compared on the same queries, each query averaged over the seeds."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardioembed.artifacts import atomic_dir, is_current, load_manifest, params_hash, write_manifest
from cardioembed.errors import ParameterError
from cardioembed.evaluation import metrics
from cardioembed.evaluation.suites import SUITE_NAMES, Suite
from cardioembed.training.frozen import frozen_lower_layers, store_dir
from cardioembed.training.recipe import ARTIFACT_KIND, Recipe

TABLE_COLUMNS = ["setting", "seed", "steps", "suite", "metric", "value", "ci_low", "ci_high"]
POINT_COLUMNS = ["setting", "seed", "steps", "run_name", "status", "scored_now"]
POINT_COLUMNS += ["train_seconds", "score_seconds"]
HEADLINE_METRIC = {"retrieval": "acc@1", "similarity": "spearman"}
POINT_KIND = "ablation-point-scores"
GEOMETRY_NEGATIVES = 20  # non-relevant documents per query in the cosine geometry
OUT_OF_DOMAIN = ("hpo-noncardio-name", "icd10cm-other-inclusion")


def check_sweep(recipe: Recipe, axis: str, settings, seeds, suites) -> None:
    name = f"sweep_{axis}s"
    for parameter, field, values in ((name, axis, settings), ("sweep_seeds", "train_seed", seeds)):
        if not isinstance(values, list | tuple) or not values or len(set(values)) < len(values):
            raise ParameterError(parameter, values, "a non-empty list, each value once")
        for value in values:
            try:
                recipe.replace(**{field: value})
            except ParameterError as error:
                expected = f"values the recipe takes ({error})"
                raise ParameterError(parameter, values, expected) from None
    if not isinstance(suites, list | tuple) or not suites or set(suites) - set(SUITE_NAMES):
        raise ParameterError("sweep_suites", suites, f"a non-empty list from {SUITE_NAMES}")


def headline_suites(suites: Mapping[str, Suite]) -> tuple[str, str | None]:
    """The suite a sweep is judged on (the first retrieval one) and an out-of-domain one."""
    main = next((n for n, s in suites.items() if s.kind == "retrieval"), next(iter(suites)))
    return main, next((n for n in OUT_OF_DOMAIN if n in suites and n != main), None)


def _folders(pairs, recipe: Recipe, suites, folder, seed) -> tuple[Path, Path, dict[str, Any]]:
    """The run's folder, the point's and its key (a retrained run is rescored)."""
    name = recipe.run_name(pairs)
    run = Path(folder) / "models" / name
    scoring = {"suites": {n: s.fingerprint() for n, s in suites.items()}, "seed": seed}
    scores = Path(folder) / "ablations" / "points" / f"{name}-{params_hash(scoring, 6)}"
    outputs = (load_manifest(run) or {}).get("outputs", {})
    return run, scores, {"run_outputs": params_hash(outputs, 16), **scoring}


@dataclass
class PointScores:
    """One point's per-item results and cosines; `status`: "trained" now or "loaded"."""

    recipe: Recipe
    status: str
    scored_now: bool
    manifest: dict
    per_query: pd.DataFrame
    geometry: pd.DataFrame


def _read(recipe: Recipe, scores: Path, status: str, scored_now: bool) -> PointScores:
    frames = [pd.read_parquet(scores / f"{n}.parquet") for n in ("per_query", "geometry")]
    return PointScores(recipe, status, scored_now, load_manifest(scores), *frames)


def load_scores(pairs, recipe: Recipe, suites, folder, seed: int) -> PointScores | None:
    """The point's stored scores if its run is finished and was scored with `seed`."""
    run, scores, params = _folders(pairs, recipe, suites, folder, seed)
    run_current = is_current(run, ARTIFACT_KIND, recipe.run_params(pairs))
    if run_current and is_current(scores, POINT_KIND, params):
        return _read(recipe, scores, "loaded", False)
    return None


def score_point(
    run, pairs: pd.DataFrame, recipe: Recipe, suites: Mapping[str, Suite], folder, seed: int
) -> PointScores:
    """Score `run` (``train_or_load``'s result) on every suite and store the point; `seed`
    breaks ties and draws the geometry's negatives."""
    run_folder, scores, params = _folders(pairs, recipe, suites, folder, seed)
    started, model = time.perf_counter(), run.model
    with frozen_lower_layers(model, recipe.frozen_layers(model), store_dir(folder)):
        encoder = metrics.Encoder(model)
        frames = [
            metrics.score_suite(model, suite, encoder, seed=seed).assign(suite=name)
            for name, suite in suites.items()
        ]
        geometry = pd.DataFrame({"suite": [], "kind": [], "cosine": []})
        main = headline_suites(suites)[0]
        if suites[main].kind == "retrieval":  # score_suite's texts: the encoder has them
            _, queries, documents, relevant = metrics.retrieval_inputs(suites[main])
            q = encoder(queries, prompt=metrics.query_prompt_for(model, suites[main]))
            geometry = cosine_geometry(q, encoder(documents), relevant, GEOMETRY_NEGATIVES, seed)
            geometry.insert(0, "suite", main)
    seconds = time.perf_counter() - started
    with atomic_dir(scores) as tmp:
        pd.concat(frames, ignore_index=True).to_parquet(tmp / "per_query.parquet", index=False)
        geometry.to_parquet(tmp / "geometry.parquet", index=False)
        record = {"run_name": run_folder.name, "steps": int(run.global_step)}
        record["train_seconds"] = float(load_manifest(run_folder)["seconds"])
        write_manifest(tmp, kind=POINT_KIND, params=params, seconds=seconds, extra=record)
    return _read(recipe, scores, "loaded" if run.loaded else "trained", True)


def cosine_geometry(queries, documents, relevant: Sequence[Sequence[int]], n_negatives, seed):
    """Each query's cosine with its best relevant document ("positive") and with
    `n_negatives` seeded non-relevant ones ("negative"); embeddings are unit length."""
    rng = np.random.default_rng(seed)
    scores = queries @ documents.T
    kinds, cosines = [], []
    for i, rel in enumerate(relevant):
        kinds.append("positive")
        cosines.append(float(scores[i, rel].max()))
        others = np.setdiff1d(np.arange(documents.shape[0]), rel)
        take = rng.choice(others, size=min(n_negatives, len(others)), replace=False)
        kinds += ["negative"] * len(take)
        cosines += scores[i, take].astype(float).tolist()
    return pd.DataFrame({"kind": kinds, "cosine": cosines})


def write_sweep(
    points: Sequence[PointScores],
    axis: str,
    suites: Mapping[str, Suite],
    bootstrap: metrics.BootstrapConfig,
    folder: str | os.PathLike,
    params: Mapping[str, Any],
) -> dict[str, pd.DataFrame]:
    """The sweep over recipe field `axis` into `folder`: ``table`` (every metric of every
    point with its interval) as ``<folder name>.csv``, ``points.csv``, and parquet files."""
    rows, per_query, labelled, geometry = [], [], [], []
    for point in points:
        setting, seed, made = getattr(point.recipe, axis), point.recipe.train_seed, point.manifest
        row = [made["steps"], made["run_name"], point.status, point.scored_now]
        rows.append([setting, seed, *row, made["train_seconds"], made["seconds"]])
        per_query.append(point.per_query.assign(setting=setting, seed=seed))
        labelled.append(point.per_query.assign(model=len(rows) - 1))  # summarise's "model"
        geometry.append(point.geometry.assign(setting=setting, seed=seed))
    table, _ = metrics.summarise(pd.concat(labelled), suites, base=None, config=bootstrap)
    points = pd.DataFrame(rows, columns=POINT_COLUMNS)
    for column in ("setting", "seed", "steps"):
        table[column] = points[column].to_numpy()[table["model"].to_numpy()]
    sweep = {
        "table": table[TABLE_COLUMNS].reset_index(drop=True),
        "points": points,
        "per_query": pd.concat(per_query, ignore_index=True),
        "geometry": pd.concat(geometry, ignore_index=True),
    }
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        sweep["table"].to_csv(tmp / f"{folder.name}.csv", index=False)
        sweep["points"].to_csv(tmp / "points.csv", index=False)
        for name in ("per_query", "geometry"):
            sweep[name].to_parquet(tmp / f"{name}.parquet", index=False)
        write_manifest(tmp, kind="ablation-sweep", params=params)
    return sweep


def headline(table: pd.DataFrame, suites: Mapping[str, Suite]) -> pd.DataFrame:
    wanted = table["suite"].map({n: HEADLINE_METRIC[s.kind] for n, s in suites.items()})
    return table[table["metric"] == wanted].reset_index(drop=True)


def paired_difference(sweep, first, second, suite: str, metric: str, bootstrap, seed=None):
    """(`first` - `second`, low, high) in `metric` on `suite`: a paired bootstrap over
    the items (spearman: both correlations recomputed) of seed `seed`, or of every seed,
    each item averaged over the seeds first."""
    rows = sweep["per_query"][sweep["per_query"]["suite"] == suite]
    rows = rows if seed is None else rows[rows["seed"] == seed]
    columns = ["cosine", "gold"] if metric == "spearman" else [metric]
    means = rows.groupby(["setting", "item"])[columns].mean()
    a, b = means.loc[first], means.loc[second].loc[means.loc[first].index]
    if metric == "spearman":
        return metrics.interval(
            metrics.spearman_difference, [a["cosine"], b["cosine"], a["gold"]], bootstrap
        )
    return metrics.interval(metrics.mean_difference, [a[metric], b[metric]], bootstrap)


def compare_to_default(
    sweep, default, suite: str, metric: str, bootstrap, parameter="default", measured=True
):
    """The paper's `default` against its rival (the best other setting by mean), as the
    chapters glue them. `margin`: default - rival on the same items, "within noise" when
    its interval covers 0 or it is no larger than either setting's seed range; the claim is
    judged on each seed's interval (`measured`: whether this build can test it)."""
    table = sweep["table"]
    rows = table[(table["suite"] == suite) & (table["metric"] == metric)]
    grouped = rows.groupby("setting", sort=False)["value"]
    means, spread = grouped.mean(), grouped.max() - grouped.min()
    if default not in means.index:
        expected = f"a list with the paper's {default!r}, the reference of the others"
        raise ParameterError(parameter, list(means.index), expected)
    ranked = list(means.sort_values(ascending=False, kind="stable").index)
    rival = next((s for s in ranked if s != default), None)
    seeds = list(dict.fromkeys(sweep["per_query"]["seed"]))
    margin = low = high = rival_value = float("nan")
    lows, highs, seed_range = [low], [high], float(spread[default])
    if rival is not None:
        difference = partial(paired_difference, sweep, default, rival, suite, metric, bootstrap)
        margin, low, high = difference()
        _, lows, highs = zip(*(difference(seed=seed) for seed in seeds), strict=True)
        seed_range, rival_value = float(spread[[default, rival]].max()), float(means[rival])
    noise = abs(margin) <= seed_range  # False without a rival: the margin is NaN
    return {
        "best_setting": ranked[0],
        "default_setting": default,
        "rival_setting": "none" if rival is None else rival,
        "best_value": float(means[ranked[0]]),
        "default_value": float(means[default]),
        "rival_value": rival_value,
        "margin": float(margin),
        "margin_low": float(low),
        "margin_high": float(high),
        "seed_range": seed_range,
        "n_seeds": len(seeds),
        "verdict": "within noise" if noise else metrics.verdict(low, high),
        "claim_verdict": metrics.claim_verdict(lows, highs, 0, measured),
    }


def compare_settings(sweep, default, suite: str, metric: str, bootstrap) -> pd.DataFrame:
    """Every other setting minus `default`, paired; half-width: the least difference it sees."""
    rows = []
    for setting in dict.fromkeys(sweep["table"]["setting"]):
        if setting != default:
            diff, low, high = paired_difference(sweep, setting, default, suite, metric, bootstrap)
            rows.append([setting, diff, low, high, (high - low) / 2, metrics.verdict(low, high)])
    columns = ["setting", "difference", "ci_low", "ci_high", "half_width", "verdict"]
    return pd.DataFrame(rows, columns=columns)
