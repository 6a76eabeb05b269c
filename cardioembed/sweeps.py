"""What the ablation chapters share. Notebooks 03 and 04 show their loop: for each setting
and seed, the recipe of notebook 02's main run with that value, ``train_or_load``, and:

- :func:`load_scores`, :func:`score_point`: a point's per-query results and cosines are an
  artifact (``runs/<profile>/ablations/points/<run-name>-<hash>/``) keyed by the run's
  files, the suites and the seed: a finished point costs nothing when the notebook runs
  again, a point both sweeps share is scored once, an interrupted sweep does only the rest.
- :func:`write_sweep`: the long table (:data:`TABLE_COLUMNS`, every metric with its
  bootstrap interval over queries), the points, per-query results and cosines, written to
  ``runs/<profile>/ablations/<pooling|temperature>/``.
- :func:`paired_difference`, :func:`compare_to_default`, :func:`compare_settings`: one
  setting against another on the same queries, each query's value averaged over the seeds
  first, with a paired bootstrap interval.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardioembed.artifacts import atomic_dir, is_current, load_manifest, params_hash, write_manifest
from cardioembed.errors import InputError, ParameterError, check_int
from cardioembed.evaluation.metrics import (
    RETRIEVAL_METRICS,
    BootstrapConfig,
    Encoder,
    interval,
    mean_difference,
    query_prompt_for,
    score_suite,
    spearman_difference,
    summarise,
)
from cardioembed.evaluation.suites import SUITE_NAMES, Suite
from cardioembed.training.frozen import frozen_lower_layers, store_dir
from cardioembed.training.recipe import ARTIFACT_KIND, Recipe

TABLE_COLUMNS = ["setting", "seed", "steps", "suite", "metric", "value", "ci_low", "ci_high"]
HEADLINE_METRIC = {"retrieval": "acc@1", "similarity": "spearman"}
POINT_KIND = "ablation-point-scores"
SWEEP_KIND = "ablation-sweep"
GEOMETRY_NEGATIVES = 20  # non-relevant documents per query in the cosine geometry
OUT_OF_DOMAIN = ("hpo-noncardio-name", "icd10cm-other-inclusion")


def check_sweep(recipe: Recipe, axis: str, settings, seeds, suites) -> None:
    """A ParameterError that names the notebook's parameter (``sweep_<axis>s``,
    ``sweep_seeds``, ``sweep_suites``) before anything is trained."""
    name = f"sweep_{axis}s"
    if not isinstance(settings, list | tuple) or not settings or len(set(settings)) < len(settings):
        raise ParameterError(name, settings, "a non-empty list, each setting once")
    for setting in settings:
        try:
            recipe.replace(**{axis: setting})
        except ParameterError as error:
            raise ParameterError(name, settings, f"values the recipe takes ({error})") from None
    expected = "a non-empty list of distinct whole numbers"
    if not isinstance(seeds, list | tuple) or not seeds or len(set(seeds)) < len(seeds):
        raise ParameterError("sweep_seeds", seeds, expected)
    for seed in seeds:
        check_int("sweep_seeds", seed, 0, expected)
    if not isinstance(suites, list | tuple) or not suites or set(suites) - set(SUITE_NAMES):
        raise ParameterError("sweep_suites", suites, f"a non-empty list from {SUITE_NAMES}")


def headline_suites(suites: Mapping[str, Suite]) -> tuple[str, str | None]:
    """The suite a sweep is judged on (the first retrieval suite, else the first) and an
    out-of-domain retrieval suite to set beside it (None if the sweep scores none)."""
    main = next((n for n, s in suites.items() if s.kind == "retrieval"), next(iter(suites)))
    return main, next((n for n in OUT_OF_DOMAIN if n in suites and n != main), None)


# ----------------------------------------------------------------------------- one point
@dataclass
class PointScores:
    """One point: its per-item results on every suite (``score_suite``'s columns), its
    cosines, and how it was made: `status` "trained" (now) or "loaded" (a finished run),
    `scored_now`, and its manifest (``steps`` trained, ``train_seconds`` when it was
    trained, ``seconds`` of scoring)."""

    recipe: Recipe
    status: str
    scored_now: bool
    manifest: dict
    per_query: pd.DataFrame
    geometry: pd.DataFrame


def _folders(pairs, recipe: Recipe, suites, folder, seed) -> tuple[Path, Path, dict[str, Any]]:
    """The run's folder, the point's folder and its parameters: the run's files (a run
    trained again is scored again), the suites and the seed."""
    name = recipe.run_name(pairs)
    run = Path(folder) / "models" / name
    scoring = {"suites": {n: s.fingerprint() for n, s in suites.items()}, "seed": seed}
    scores = Path(folder) / "ablations" / "points" / f"{name}-{params_hash(scoring, 6)}"
    outputs = (load_manifest(run) or {}).get("outputs", {})
    return run, scores, {"run_outputs": params_hash(outputs, 16), **scoring}


def _read(recipe: Recipe, scores: Path, status: str, scored_now: bool) -> PointScores:
    manifest = load_manifest(scores)
    frames = [pd.read_parquet(scores / f"{n}.parquet") for n in ("per_query", "geometry")]
    return PointScores(recipe, status, scored_now, manifest, *frames)


def load_scores(
    pairs: pd.DataFrame,
    recipe: Recipe,
    suites: Mapping[str, Suite],
    folder: str | os.PathLike,
    seed: int,
) -> PointScores | None:
    """The scores of point `recipe` on `suites` if its run is finished and was scored
    already with `seed` (`folder`: the profile's run folder), else None."""
    run, scores, params = _folders(pairs, recipe, suites, folder, seed)
    if is_current(run, ARTIFACT_KIND, recipe.run_params(pairs)) and is_current(
        scores, POINT_KIND, params
    ):
        return _read(recipe, scores, "loaded", False)
    return None


def score_point(
    run, pairs: pd.DataFrame, recipe: Recipe, suites: Mapping[str, Suite], folder, seed: int
) -> PointScores:
    """Score `run` (what ``train_or_load(pairs, recipe, ...)`` returned) on every suite and
    store the scores as the point's artifact. `seed` breaks ties in the ranking and draws
    the geometry's negatives. With ``lora_top_layers`` the frozen lower layers are computed
    once per text for every point (``training.frozen``)."""
    run_folder, scores, params = _folders(pairs, recipe, suites, folder, seed)
    started, model = time.perf_counter(), run.model
    with frozen_lower_layers(model, recipe.frozen_layers(model), store_dir(folder)):
        encoder = Encoder(model)
        frames = [
            score_suite(model, suite, encoder, seed=seed).assign(suite=name)
            for name, suite in suites.items()
        ]
        geometry = pd.DataFrame({"suite": [], "kind": [], "cosine": []})
        main = headline_suites(suites)[0]
        if suites[main].kind == "retrieval":
            suite = suites[main]
            qids, dids = list(suite.queries), list(suite.corpus)
            # the texts and prompt of score_suite: the encoder has them in memory
            q = encoder([suite.queries[q] for q in qids], prompt=query_prompt_for(model, suite))
            d = encoder([suite.corpus[d] for d in dids])
            column = {d: i for i, d in enumerate(dids)}
            relevant = [[column[d] for d in suite.relevant[q]] for q in qids]
            geometry = cosine_geometry(q, d, relevant, GEOMETRY_NEGATIVES, seed)
            geometry.insert(0, "suite", main)
    seconds = time.perf_counter() - started
    with atomic_dir(scores) as tmp:
        pd.concat(frames, ignore_index=True).to_parquet(tmp / "per_query.parquet", index=False)
        geometry.to_parquet(tmp / "geometry.parquet", index=False)
        record = {
            "run_name": run_folder.name,
            "steps": int(run.global_step),
            "train_seconds": float(load_manifest(run_folder)["seconds"]),
        }
        write_manifest(tmp, kind=POINT_KIND, params=params, seconds=seconds, extra=record)
    return _read(recipe, scores, "loaded" if run.loaded else "trained", True)


def cosine_geometry(
    queries: np.ndarray, documents: np.ndarray, relevant: Sequence[Sequence[int]], n_negatives, seed
) -> pd.DataFrame:
    """Cosines of each query with its own relevant document (the best one, if several:
    kind "positive") and with `n_negatives` seeded non-relevant documents ("negative").
    Embeddings are unit length, so a dot product is the cosine."""
    rng = np.random.default_rng(seed)
    scores = queries @ documents.T
    kinds, cosines = [], []
    for i, rel in enumerate(relevant):
        rel = np.asarray(sorted(set(rel)), dtype=int)
        kinds.append("positive")
        cosines.append(float(scores[i, rel].max()))
        others = np.setdiff1d(np.arange(documents.shape[0]), rel)
        take = rng.choice(others, size=min(n_negatives, len(others)), replace=False)
        kinds += ["negative"] * len(take)
        cosines += scores[i, take].astype(float).tolist()
    return pd.DataFrame({"kind": kinds, "cosine": cosines})


# ----------------------------------------------------------------------------- the sweep
def write_sweep(
    points: Sequence[PointScores],
    axis: str,
    suites: Mapping[str, Suite],
    bootstrap: BootstrapConfig,
    folder: str | os.PathLike,
    params: Mapping[str, Any],
) -> dict[str, pd.DataFrame]:
    """The sweep's tables (`axis`: the recipe field it varies), written into `folder`:
    ``table`` (:data:`TABLE_COLUMNS`, every metric of every point with its bootstrap
    interval over queries or pairs) as ``<folder name>.csv``, ``points`` (one row per
    point) as ``points.csv``, ``per_query`` and ``geometry`` as parquet, the manifest last."""
    rows, per_query, geometry = [], [], []
    for point in points:
        setting, seed, made = getattr(point.recipe, axis), point.recipe.train_seed, point.manifest
        rows.append(
            {
                "setting": setting,
                "seed": seed,
                "steps": made["steps"],
                "run_name": made["run_name"],
                "status": point.status,
                "scored_now": point.scored_now,
                "train_seconds": made["train_seconds"],
                "score_seconds": made["seconds"],
            }
        )
        per_query.append(point.per_query.assign(setting=setting, seed=seed))
        geometry.append(point.geometry.assign(setting=setting, seed=seed))
    per_query = pd.concat(per_query, ignore_index=True)
    labels = [f"{s}|{d}" for s, d in zip(per_query["setting"], per_query["seed"], strict=True)]
    labelled = per_query.drop(columns=["setting", "seed"]).assign(model=labels)
    table, _ = summarise(labelled, suites, base=None, config=bootstrap)
    by_label = {f"{r['setting']}|{r['seed']}": r for r in rows}
    for column in ("setting", "seed", "steps"):
        table[column] = [by_label[label][column] for label in table["model"]]
    sweep = {
        "table": table[TABLE_COLUMNS].reset_index(drop=True),
        "points": pd.DataFrame(rows),
        "per_query": per_query,
        "geometry": pd.concat(geometry, ignore_index=True),
    }
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        sweep["table"].to_csv(tmp / f"{folder.name}.csv", index=False)
        sweep["points"].to_csv(tmp / "points.csv", index=False)
        for name in ("per_query", "geometry"):
            sweep[name].to_parquet(tmp / f"{name}.parquet", index=False)
        write_manifest(tmp, kind=SWEEP_KIND, params=params)
    return sweep


# ----------------------------------------------------------------------------- reading
def headline(table: pd.DataFrame, suites: Mapping[str, Suite]) -> pd.DataFrame:
    """The rows of each suite's headline metric: acc@1 (retrieval), spearman (similarity)."""
    wanted = table["suite"].map({n: HEADLINE_METRIC[s.kind] for n, s in suites.items()})
    return table[table["metric"] == wanted].reset_index(drop=True)


def _item_means(per_query: pd.DataFrame, suite: str, setting, column: str) -> pd.Series:
    """A setting's per-item values averaged over its seeds (the bootstrap's unit is the
    query, so the seeds of one query are averaged first)."""
    rows = per_query[(per_query["suite"] == suite) & (per_query["setting"] == setting)]
    if rows.empty:
        raise InputError(f"no results for setting {setting!r} on suite {suite!r}")
    return rows.groupby("item")[column].mean()


def paired_difference(
    sweep: Mapping[str, pd.DataFrame], first, second, suite: str, metric: str, bootstrap
) -> tuple[float, float, float]:
    """(metric of `first` - metric of `second`, low, high) on `suite`: each setting's
    per-item values averaged over its seeds, then a paired bootstrap over the items
    (queries; pairs for spearman, both correlations recomputed)."""
    per_query = sweep["per_query"]
    if metric == "spearman":
        a = _item_means(per_query, suite, first, "cosine")
        b = _item_means(per_query, suite, second, "cosine").loc[a.index]
        gold = _item_means(per_query, suite, first, "gold").loc[a.index]
        return interval(spearman_difference, [a, b, gold], bootstrap)
    if metric not in RETRIEVAL_METRICS:
        raise ParameterError("metric", metric, f"one of {', '.join(RETRIEVAL_METRICS)} or spearman")
    a = _item_means(per_query, suite, first, metric)
    b = _item_means(per_query, suite, second, metric).loc[a.index]
    return interval(mean_difference, [a, b], bootstrap)


@dataclass(frozen=True)
class Comparison:
    """The best setting (highest mean over seeds) against the paper's `default`. The
    difference is `first` - `second`: the best minus the default or, when the default is
    the best, the default minus the runner-up. `within_noise`: its interval covers 0, or
    it is no larger than the seed-to-seed range (max - min) of either setting."""

    best: Any
    default: Any
    first: Any
    second: Any
    best_value: float
    default_value: float
    margin: float
    ci_low: float
    ci_high: float
    seed_range: float
    within_noise: bool


def compare_to_default(
    sweep: Mapping[str, pd.DataFrame],
    default,
    suite: str,
    metric: str,
    bootstrap: BootstrapConfig,
    parameter: str = "default",
) -> Comparison:
    """See :class:`Comparison`, on `suite` and `metric`. `parameter`: the name an error
    gives when `default` is not among the settings."""
    table = sweep["table"]
    values = table[(table["suite"] == suite) & (table["metric"] == metric)]
    grouped = values.groupby("setting", sort=False)["value"]
    means, spread = grouped.mean(), grouped.max() - grouped.min()
    if default not in means.index:
        expected = f"a list with the paper's {default!r}, the reference of the others"
        raise ParameterError(parameter, list(means.index), expected)
    ranked = list(means.sort_values(ascending=False, kind="stable").index)
    best = ranked[0]
    first, second = (best, default) if best != default else (default, (ranked + [best])[1])
    margin, low, high = paired_difference(sweep, first, second, suite, metric, bootstrap)
    seed_range = float(spread[[first, second]].max())
    within = bool(low <= 0 <= high or abs(margin) <= seed_range)
    values = (float(means[best]), float(means[default]), float(margin), float(low), float(high))
    return Comparison(best, default, first, second, *values, seed_range, within)


def compare_settings(
    sweep: Mapping[str, pd.DataFrame], default, suite: str, metric: str, bootstrap
) -> pd.DataFrame:
    """Every other setting against `default` on the same items of `suite`: difference
    (setting - default) with its paired bootstrap interval, the interval's half-width
    (the smallest difference it could tell from 0), and a verdict: higher, lower, or
    within noise (the interval covers 0)."""
    rows = []
    for setting in dict.fromkeys(sweep["table"]["setting"]):
        if setting != default:
            diff, low, high = paired_difference(sweep, setting, default, suite, metric, bootstrap)
            verdict = "higher" if low > 0 else "lower" if high < 0 else "within noise"
            rows.append([setting, diff, low, high, (high - low) / 2, verdict])
    columns = ["setting", "difference", "ci_low", "ci_high", "half_width", "verdict"]
    return pd.DataFrame(rows, columns=columns)
