"""Ablation sweeps: the training recipe of notebook 02 with one setting varied.

A sweep trains the recipe once per (setting, seed) and scores every run on the same
evaluation suites. Notebook 03 varies the pooling, notebook 04 the loss temperature.

- The recipe is the main run's (``training.recipe.Recipe.of_run``, the run notebook 02 recorded),
  so a sweep point with that run's settings has the same run name and folder
  (``runs/<profile>/models/<run-name>/``) and is loaded, not trained again.
- :class:`SweepConfig` says what varies (settings, seeds) and how each point is scored
  (suites, ``sample_size``, ``max_documents``). Every point trains the recipe's full
  length and is scored on every held-out query: a shortened point is close to the
  untrained model, and could not show a difference between settings.
- :func:`run_sweep` trains or loads each point (``training.recipe.train_or_load``) and scores it.
  A point's scores are an artifact of their own
  (``runs/<profile>/ablations/points/<run-name>-<scoring hash>/``), so a finished point
  costs nothing when the notebook runs again, two sweeps that share a point (the pooling
  of notebook 04 at tau 0.05) compute it once, and an interrupted sweep, started again,
  does only what is missing.
- :func:`write_sweep` writes the long table ``<name>.csv`` (columns
  :data:`TABLE_COLUMNS`), the details in ``<name>/``, and ``<name>.manifest.json`` last.
- :func:`compare_to_default` answers the chapter's question: the best setting, its margin
  over the paper's default with a paired bootstrap interval over queries, and whether that
  margin is within noise (the interval covers 0, or the margin is no larger than the
  seed-to-seed spread); :func:`compare_settings` compares every setting with the default,
  and the half-width of those intervals is the smallest difference the sweep can detect.
- With ``lora_top_layers`` the frozen lower layers are computed once per text for all
  points, in training and in scoring (``training.frozen``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardioembed.artifacts import (
    MANIFEST,
    atomic_dir,
    atomic_path,
    is_current,
    load_manifest,
    params_hash,
    write_manifest,
)
from cardioembed.book.notebook import quiet_output
from cardioembed.errors import InputError, ParameterError
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
from cardioembed.evaluation.suites import SUITE_NAMES, Suite, build_suites
from cardioembed.training import recipe as training
from cardioembed.training.frozen import frozen_lower_layers
from cardioembed.training.models import POOLINGS
from cardioembed.training.recipe import Recipe

AXES = ("pooling", "temperature")
TABLE_COLUMNS = ["setting", "seed", "steps", "suite", "metric", "value", "ci_low", "ci_high"]
HEADLINE_METRIC = {"retrieval": "acc@1", "similarity": "spearman"}
POINT_KIND = "ablation-point-scores"
DEFAULT_BOOTSTRAP = BootstrapConfig()
SWEEP_KIND = "ablation-sweep"


# ============================================================================ sweep config
def _as_list(value) -> list:
    if value is None or isinstance(value, (str, int, float)):
        return [] if value in (None, "") else [value]
    return list(value)


@dataclass(frozen=True)
class SweepConfig:
    """One sweep: the recipe with `axis` ("pooling" or "temperature") set to each of
    `settings`, each trained with every seed of `seeds`.

    Every point trains the recipe's own length and is scored on every query (or pair) of
    `suites`. `sample_size` is the size of the out-of-domain samples and similarity
    suites; `max_documents` (0: all) caps each retrieval corpus (relevant documents are
    kept), for quick runs only.
    `geometry_suite`: the retrieval suite whose embeddings give the positive/negative
    cosine distributions (default: the first retrieval suite), with `geometry_negatives`
    seeded non-relevant documents per query."""

    axis: str
    settings: tuple
    seeds: tuple[int, ...] = (42, 43)
    suites: tuple[str, ...] = ("hpo-cardio-name", "hpo-noncardio-name", "hpo-noncardio-similarity")
    sample_size: int = 1000
    max_documents: int = 0
    geometry_suite: str = ""
    geometry_negatives: int = 20
    scoring_seed: int = 42

    def __post_init__(self):
        if self.axis not in AXES:
            raise ParameterError("axis", self.axis, f"one of {', '.join(AXES)}")
        name = "sweep_poolings" if self.axis == "pooling" else "sweep_temperatures"
        settings = _as_list(self.settings)
        if not settings:
            raise ParameterError(name, self.settings, "a non-empty list")
        if self.axis == "pooling":
            unknown = [s for s in settings if s not in POOLINGS]
            if unknown:
                raise ParameterError(
                    name, self.settings, f"pooling names from {', '.join(sorted(POOLINGS))}"
                )
        else:
            try:
                settings = [float(s) for s in settings]
            except (TypeError, ValueError):
                raise ParameterError(name, self.settings, "numbers > 0, such as 0.05") from None
            if not all(math.isfinite(s) and s > 0 for s in settings):
                raise ParameterError(name, self.settings, "numbers > 0, such as 0.05")
        if len(set(settings)) != len(settings):
            raise ParameterError(name, self.settings, "each setting once")
        object.__setattr__(self, "settings", tuple(settings))

        seeds = _as_list(self.seeds)
        if (
            not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            or len(set(seeds)) != len(seeds)
        ):
            raise ParameterError("sweep_seeds", self.seeds, "a non-empty list of distinct integers")
        object.__setattr__(self, "seeds", tuple(seeds))

        suites = _as_list(self.suites)
        unknown = [s for s in suites if s not in SUITE_NAMES]
        if not suites or unknown:
            raise ParameterError(
                "sweep_suites", self.suites, f"a non-empty list from {', '.join(SUITE_NAMES)}"
            )
        object.__setattr__(self, "suites", tuple(suites))
        for pname, field_name in (
            ("sweep_sample_size", "sample_size"),
            ("sweep_max_documents", "max_documents"),
        ):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ParameterError(pname, value, "a whole number, 0 meaning no limit")
        if not isinstance(self.geometry_negatives, int) or self.geometry_negatives < 1:
            raise ParameterError("geometry_negatives", self.geometry_negatives, "an integer >= 1")

    @property
    def name(self) -> str:
        """The file name of the sweep's table: pooling.csv, temperature.csv."""
        return self.axis

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("settings", "seeds", "suites"):
            data[key] = list(data[key])
        return data

    def point_recipe(self, recipe: Recipe, setting, seed: int) -> Recipe:
        """The recipe of one point: the setting and the seed changed, nothing else."""
        return recipe.replace(**{self.axis: setting, "train_seed": seed})

    def points(self, recipe: Recipe) -> list[SweepPoint]:
        return [
            SweepPoint(setting, seed, self.point_recipe(recipe, setting, seed))
            for setting in self.settings
            for seed in self.seeds
        ]


@dataclass(frozen=True)
class SweepPoint:
    setting: Any
    seed: int
    recipe: Recipe

    @property
    def label(self) -> str:
        return f"{self.setting}|{self.seed}"


@dataclass
class SweepResult:
    """What a sweep produced. `table`: the contract (TABLE_COLUMNS). `per_query`: setting,
    seed, suite, item and the per-item metrics (or cosine and gold). `geometry`: setting,
    seed, kind (positive/negative), cosine. `points`: one row per point (run name, whether
    it was trained now, seconds)."""

    config: SweepConfig
    table: pd.DataFrame
    per_query: pd.DataFrame
    geometry: pd.DataFrame
    points: pd.DataFrame
    seconds: float = 0.0


# ============================================================================ suites
def build_sweep_suites(
    corpus: Mapping[str, Any] | str | os.PathLike,
    sweep: SweepConfig,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Suite]:
    """The sweep's evaluation suites from a corpus artifact (suites.build_suites with the
    sweep's limits on queries, samples and documents)."""
    return build_suites(
        corpus,
        sweep.suites,
        sample_size=sweep.sample_size,
        max_documents=sweep.max_documents,
        seed=sweep.scoring_seed,
        cache_dir=cache_dir,
    )


def _geometry_suite(suites: Mapping[str, Suite], sweep: SweepConfig) -> str | None:
    if sweep.geometry_suite:
        if sweep.geometry_suite not in suites or suites[sweep.geometry_suite].kind != "retrieval":
            raise ParameterError(
                "geometry_suite", sweep.geometry_suite, "one of the sweep's retrieval suites"
            )
        return sweep.geometry_suite
    return next((n for n, s in suites.items() if s.kind == "retrieval"), None)


def cosine_geometry(
    queries: np.ndarray,
    documents: np.ndarray,
    relevant: Sequence[Sequence[int]],
    n_negatives: int = 20,
    seed: int = 42,
) -> pd.DataFrame:
    """Cosines of each query with its own relevant document (the best one, if several:
    kind "positive") and with `n_negatives` seeded non-relevant documents ("negative").
    Embeddings are unit length, so a dot product is the cosine."""
    rng = np.random.default_rng(seed)
    scores = queries @ documents.T
    rows_kind, rows_cos = [], []
    for i, rel in enumerate(relevant):
        rel = np.asarray(sorted(set(rel)), dtype=int)
        rows_kind.append("positive")
        rows_cos.append(float(scores[i, rel].max()))
        others = np.setdiff1d(np.arange(documents.shape[0]), rel)
        take = rng.choice(others, size=min(n_negatives, len(others)), replace=False)
        rows_kind += ["negative"] * len(take)
        rows_cos += scores[i, take].astype(float).tolist()
    return pd.DataFrame({"kind": rows_kind, "cosine": rows_cos})


def _score_point(
    model, suites: Mapping[str, Suite], sweep: SweepConfig, recipe: Recipe
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-item results on every suite, and the cosine geometry of the geometry suite."""
    with frozen_lower_layers(model, recipe.frozen_layers(model)):
        return _score_point_with(model, suites, sweep)


def _score_point_with(model, suites, sweep):
    encoder = Encoder(model)
    frames = []
    for name, suite in suites.items():
        frame = score_suite(model, suite, encoder, seed=sweep.scoring_seed)
        frame.insert(0, "suite", name)
        frames.append(frame)
    geometry = pd.DataFrame({"kind": [], "cosine": []})
    geometry_name = _geometry_suite(suites, sweep)
    if geometry_name is not None:
        suite = suites[geometry_name]
        qids, dids = list(suite.queries), list(suite.corpus)
        # the same texts and prompt as score_suite: the encoder returns them from memory
        q = encoder([suite.queries[q] for q in qids], prompt=query_prompt_for(model, suite))
        d = encoder([suite.corpus[d] for d in dids])
        column = {d: i for i, d in enumerate(dids)}
        relevant = [[column[d] for d in suite.relevant[q]] for q in qids]
        geometry = cosine_geometry(q, d, relevant, sweep.geometry_negatives, sweep.scoring_seed)
        geometry.insert(0, "suite", geometry_name)
    return pd.concat(frames, ignore_index=True), geometry


def scoring_params(suites: Mapping[str, Suite], sweep: SweepConfig) -> dict[str, Any]:
    """What a point's scores depend on besides the trained model."""
    return {
        "suites": {n: s.fingerprint() for n, s in suites.items()},
        "geometry": {
            "suite": _geometry_suite(suites, sweep),
            "negatives": sweep.geometry_negatives,
        },
        "seed": sweep.scoring_seed,
    }


def _score_params(run_folder: Path, scoring: Mapping[str, Any]) -> dict[str, Any]:
    """A point's scores belong to the adapter they were computed with (the hashes of the
    run's files): a run trained again gets scored again."""
    outputs = (load_manifest(run_folder) or {}).get("outputs", {})
    return {"run_outputs": params_hash(outputs, 16), **scoring}


# ============================================================================ run
def models_dir(runs_dir: str | os.PathLike) -> Path:
    """Where training runs live: the folder notebook 02 writes to."""
    return Path(runs_dir) / "models"


def plan_sweep(
    pairs: pd.DataFrame, recipe: Recipe, sweep: SweepConfig, runs_dir: str | os.PathLike
) -> pd.DataFrame:
    """One row per point: setting, seed, run_name, finished (a finished run with the same
    parameters exists: it is loaded, not trained), steps (planned training steps)."""
    n_train = int((pairs["split"] == "train").sum())
    rows = []
    for point in sweep.points(recipe):
        name = point.recipe.run_name(pairs)
        finished = is_current(models_dir(runs_dir) / name, point.recipe.run_params(pairs))
        rows.append(
            {
                "setting": point.setting,
                "seed": point.seed,
                "run_name": name,
                "finished": finished,
                "steps": point.recipe.planned_steps(n_train),
            }
        )
    return pd.DataFrame(rows, columns=["setting", "seed", "run_name", "finished", "steps"])


def run_sweep(
    pairs: pd.DataFrame,
    recipe: Recipe,
    sweep: SweepConfig,
    suites: Mapping[str, Suite],
    runs_dir: str | os.PathLike,
    *,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    echo: Callable[[str], None] = print,
    train_kwargs: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Train or load every point of `sweep` and score it on `suites`; see the module
    docstring. `pairs`: the training pairs (`recipe.training_pairs(corpus_pairs)`).
    Prints one line per point: setting, seed, trained or loaded, seconds."""
    started = time.perf_counter()
    missing = [n for n in sweep.suites if n not in suites]
    if missing:
        raise InputError(
            f"suites {missing} of the sweep were not built; "
            "build them with sweeps.build_sweep_suites(corpus, sweep)"
        )
    suites = {n: suites[n] for n in sweep.suites}
    scoring = scoring_params(suites, sweep)
    points = sweep.points(recipe)
    per_query_frames, geometry_frames, rows = [], [], []
    for index, point in enumerate(points, 1):
        clock = time.perf_counter()
        run_params = point.recipe.run_params(pairs)
        name = point.recipe.run_name(pairs)
        run_folder = models_dir(runs_dir) / name
        score_folder = Path(runs_dir) / "ablations" / "points" / f"{name}-{params_hash(scoring, 6)}"
        run_finished = is_current(run_folder, run_params)
        if run_finished and is_current(score_folder, _score_params(run_folder, scoring)):
            status, scores_new = "loaded", False
            manifest = load_manifest(score_folder) or {}
            train_seconds = float(manifest.get("train_seconds", 0.0))
            score_seconds = float(manifest.get("score_seconds", 0.0))
        else:
            with quiet_output():
                # a point is scored on the suites below: validation during training
                # would only cost time
                result = training.train_or_load(
                    pairs,
                    point.recipe,
                    run_folder,
                    progress=False,
                    **{"validate": False, **dict(train_kwargs or {})},
                )
            if not result.finished:
                raise InputError(f"training of {name} stopped before its last step")
            status = "loaded" if result.loaded else "trained"
            train_seconds = float((load_manifest(run_folder) or {}).get("seconds", result.seconds))
            score_clock = time.perf_counter()
            per_item, geometry = _score_point(result.model, suites, sweep, point.recipe)
            score_seconds = time.perf_counter() - score_clock
            with atomic_dir(score_folder) as tmp:
                per_item.to_parquet(tmp / "per_query.parquet", index=False)
                geometry.to_parquet(tmp / "geometry.parquet", index=False)
                write_manifest(
                    tmp,
                    kind=POINT_KIND,
                    params=_score_params(run_folder, scoring),
                    inputs={"run": str(run_folder)},
                    seconds=score_seconds,
                    extra={
                        "train_seconds": train_seconds,
                        "score_seconds": score_seconds,
                        "setting": point.setting,
                        "seed": point.seed,
                    },
                )
            scores_new = True
            del result
        per_item = pd.read_parquet(score_folder / "per_query.parquet")
        geometry = pd.read_parquet(score_folder / "geometry.parquet")
        for frame, bucket in ((per_item, per_query_frames), (geometry, geometry_frames)):
            frame.insert(0, "seed", point.seed)
            frame.insert(0, "setting", point.setting)
            bucket.append(frame)
        seconds = time.perf_counter() - clock
        rows.append(
            {
                "setting": point.setting,
                "seed": point.seed,
                # the steps the run really trained (its manifest), not the ones planned
                "steps": int((load_manifest(run_folder) or {}).get("global_step", 0)),
                "run_name": name,
                "status": status,
                "scored_now": scores_new,
                "train_seconds": train_seconds,
                "score_seconds": score_seconds,
                "seconds_now": seconds,
            }
        )
        what = (
            status
            if status == "trained"
            else ("loaded, scored now" if scores_new else "loaded with its scores")
        )
        echo(
            f"[{index}/{len(points)}] {sweep.axis}={point.setting} seed={point.seed}: "
            f"{what} in {seconds:.1f} s"
        )
    per_query = pd.concat(per_query_frames, ignore_index=True)
    geometry = pd.concat(geometry_frames, ignore_index=True)
    rows = pd.DataFrame(rows)
    table = summary_table(per_query, suites, points, bootstrap)
    steps = rows.set_index(["setting", "seed"])["steps"]
    table["steps"] = [steps[(a, b)] for a, b in zip(table["setting"], table["seed"], strict=True)]
    return SweepResult(
        sweep, table[TABLE_COLUMNS], per_query, geometry, rows, time.perf_counter() - started
    )


def summary_table(
    per_query: pd.DataFrame,
    suites: Mapping[str, Suite],
    points: Sequence[SweepPoint],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> pd.DataFrame:
    """The contract table: every metric of every point on every suite, with the bootstrap
    interval over queries (or pairs) of evaluation.summarise."""
    by_label = {p.label: p for p in points}
    labelled = per_query.assign(
        model=[f"{s}|{d}" for s, d in zip(per_query["setting"], per_query["seed"], strict=True)]
    )
    labelled = labelled.drop(columns=["setting", "seed"])
    metrics, _ = summarise(labelled, suites, base=None, config=bootstrap)
    metrics["setting"] = [by_label[m].setting for m in metrics["model"]]
    metrics["seed"] = [by_label[m].seed for m in metrics["model"]]
    columns = [c for c in TABLE_COLUMNS if c != "steps"]  # run_sweep adds the steps
    return metrics[columns].reset_index(drop=True)


# ============================================================================ files
def sweep_paths(folder: str | os.PathLike, name: str) -> dict[str, Path]:
    folder = Path(folder)
    return {
        "table": folder / f"{name}.csv",
        "details": folder / name,
        "manifest": folder / f"{name}.manifest.json",
    }


def write_sweep(
    result: SweepResult, folder: str | os.PathLike, params: Mapping[str, Any] | None = None
) -> Path:
    """Write `<folder>/<name>.csv` (the contract), `<folder>/<name>/` (points.csv,
    per_query.parquet, geometry.parquet) and, last, `<folder>/<name>.manifest.json`
    (its absence marks an unfinished write). Returns the table's path."""
    paths = sweep_paths(folder, result.config.name)
    paths["manifest"].unlink(missing_ok=True)
    with atomic_dir(paths["details"]) as tmp:
        result.points.to_csv(tmp / "points.csv", index=False)
        result.per_query.to_parquet(tmp / "per_query.parquet", index=False)
        result.geometry.to_parquet(tmp / "geometry.parquet", index=False)
    with atomic_path(paths["table"]) as tmp:
        result.table.to_csv(tmp, index=False)
    # write_manifest hashes a folder's files: stage the table and details together
    staging = Path(folder) / f".{result.config.name}.manifest-staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        os.link(paths["table"], staging / paths["table"].name)
        for file in paths["details"].iterdir():
            (staging / result.config.name).mkdir(exist_ok=True)
            os.link(file, staging / result.config.name / file.name)
        write_manifest(
            staging,
            kind=SWEEP_KIND,
            params={"sweep": result.config.to_dict(), **dict(params or {})},
            seconds=result.seconds,
            extra={
                "points": int(len(result.points)),
                "trained_now": int((result.points["status"] == "trained").sum()),
            },
        )
        os.replace(staging / MANIFEST, paths["manifest"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths["table"]


def load_sweep(folder: str | os.PathLike, name: str) -> dict[str, pd.DataFrame]:
    """The tables of a finished sweep (`name`: pooling or temperature)."""
    paths = sweep_paths(folder, name)
    if not paths["manifest"].is_file():
        notebook = "03_ablate_pooling" if name == "pooling" else "04_ablate_temperature"
        raise InputError(f"no finished {name} sweep in {folder}; run notebook {notebook} first")
    return {
        "table": pd.read_csv(paths["table"]),
        "points": pd.read_csv(paths["details"] / "points.csv"),
        "per_query": pd.read_parquet(paths["details"] / "per_query.parquet"),
        "geometry": pd.read_parquet(paths["details"] / "geometry.parquet"),
    }


# ============================================================================ reading
def headline(table: pd.DataFrame, suites: Mapping[str, Suite] | None = None) -> pd.DataFrame:
    """The rows of each suite's headline metric: acc@1 (retrieval), spearman (similarity)."""
    if suites is not None:
        wanted = {n: HEADLINE_METRIC[s.kind] for n, s in suites.items()}
        keep = [wanted.get(s) == m for s, m in zip(table["suite"], table["metric"], strict=True)]
        return table[keep].reset_index(drop=True)
    return table[table["metric"].isin(HEADLINE_METRIC.values())].reset_index(drop=True)


def seed_summary(table: pd.DataFrame, suite: str, metric: str) -> pd.DataFrame:
    """Per setting: the mean over seeds, and the seed-to-seed range (max - min) and std."""
    rows = table[(table["suite"] == suite) & (table["metric"] == metric)]
    grouped = rows.groupby("setting", sort=False)["value"]
    out = pd.DataFrame(
        {
            "mean": grouped.mean(),
            "seed_range": grouped.max() - grouped.min(),
            "seed_std": grouped.std(ddof=1),
            "seeds": grouped.size(),
        }
    )
    return out.reset_index()


@dataclass(frozen=True)
class Comparison:
    """The best setting against the paper's default on one suite and metric. When the
    default is itself the best, `other` is the runner-up and `margin` is the default's
    lead over it. `within_noise`: the interval covers 0, or |margin| is no larger than the
    seed-to-seed range of either setting."""

    suite: str
    metric: str
    best: Any
    default: Any
    other: Any
    margin: float
    ci_low: float
    ci_high: float
    seed_range: float
    within_noise: bool

    @property
    def default_is_best(self) -> bool:
        return self.best == self.default


def _per_item_means(per_query: pd.DataFrame, suite: str, setting, column: str) -> pd.Series:
    """A setting's per-item values averaged over its seeds (the bootstrap's unit is the
    query, so the seeds of one query are averaged first)."""
    rows = per_query[(per_query["suite"] == suite) & (per_query["setting"] == setting)]
    if rows.empty:
        raise InputError(f"no results for setting {setting!r} on suite {suite!r}")
    return rows.groupby("item")[column].mean()


def _tables(result: Mapping[str, pd.DataFrame] | SweepResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(result, SweepResult):
        return result.table, result.per_query
    return result["table"], result["per_query"]


def paired_difference(
    result: Mapping[str, pd.DataFrame] | SweepResult,
    first,
    second,
    suite: str,
    metric: str = "acc@1",
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> tuple[float, float, float]:
    """(metric of `first` - metric of `second`, low, high) on `suite`: each setting's
    per-item values averaged over its seeds, then a paired bootstrap over the items
    (queries; pairs for spearman, both correlations recomputed)."""
    _, per_query = _tables(result)
    if metric == "spearman":
        a = _per_item_means(per_query, suite, first, "cosine")
        b = _per_item_means(per_query, suite, second, "cosine").loc[a.index]
        gold = _per_item_means(per_query, suite, first, "gold").loc[a.index]
        return interval(spearman_difference, [a, b, gold], bootstrap)
    if metric not in RETRIEVAL_METRICS:
        raise ParameterError("metric", metric, f"one of {', '.join(RETRIEVAL_METRICS)} or spearman")
    a = _per_item_means(per_query, suite, first, metric)
    b = _per_item_means(per_query, suite, second, metric).loc[a.index]
    return interval(mean_difference, [a, b], bootstrap)


def compare_to_default(
    result: Mapping[str, pd.DataFrame] | SweepResult,
    default,
    suite: str,
    metric: str = "acc@1",
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    parameter: str = "default",
) -> Comparison:
    """Best setting (highest mean over seeds) against `default` (see Comparison).
    `parameter`: the name an error gives when `default` is not among the settings."""
    table, _ = _tables(result)
    seeds = seed_summary(table, suite, metric)
    if seeds.empty:
        raise InputError(f"no {metric} results on suite {suite!r} in the sweep")
    settings = list(seeds["setting"])
    if default not in settings:
        raise ParameterError(
            parameter,
            settings,
            f"a list that includes the paper's setting {default!r}, the "
            "reference every other setting is compared with",
        )
    ranked = seeds.sort_values("mean", ascending=False, kind="stable")
    best = ranked["setting"].iloc[0]
    runner_up = ranked["setting"].iloc[1] if len(ranked) > 1 else best
    first, second = (best, default) if best != default else (default, runner_up)
    margin, low, high = paired_difference(result, first, second, suite, metric, bootstrap)
    spread = float(seeds.set_index("setting").loc[[first, second], "seed_range"].max())
    within = bool(low <= 0 <= high or abs(margin) <= spread)
    return Comparison(
        suite, metric, best, default, second, float(margin), float(low), float(high), spread, within
    )


def compare_settings(
    result: Mapping[str, pd.DataFrame] | SweepResult,
    default,
    suite: str,
    metric: str = "acc@1",
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> pd.DataFrame:
    """Every other setting against `default` on the same items of `suite`: difference
    (setting - default, each query's value averaged over seeds first) with its paired
    bootstrap interval, the interval's half-width (the smallest difference that interval
    could tell from 0), and a verdict: higher, lower, or within noise (covers 0)."""
    table, _ = _tables(result)
    rows = []
    for setting in seed_summary(table, suite, metric)["setting"]:
        if setting == default:
            continue
        diff, low, high = paired_difference(result, setting, default, suite, metric, bootstrap)
        verdict = "higher" if low > 0 else "lower" if high < 0 else "within noise"
        rows.append([setting, diff, low, high, (high - low) / 2, verdict])
    columns = ["setting", "difference", "ci_low", "ci_high", "half_width", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def grid_text(sweep: SweepConfig, full_settings: Sequence, full_seeds: Sequence[int]) -> str:
    """A sentence for the chapter: the grid of this run against the full grid of the paper
    profile (`full_settings`, `full_seeds`), and why it is smaller if it is."""
    listed = ", ".join(str(s) for s in sweep.settings)
    if set(sweep.settings) >= set(full_settings) and set(sweep.seeds) >= set(full_seeds):
        return f"This run sweeps the full grid: {listed}, with seeds {_seeds(sweep.seeds)}."
    return (
        f"This run sweeps {listed}, with seeds {_seeds(sweep.seeds)}; the paper profile sweeps "
        f"{', '.join(str(s) for s in full_settings)}, with seeds {_seeds(full_seeds)}. The "
        "grid is smaller here, not the points: each point costs a full training run, and "
        "the teaching book has to build in minutes on a laptop's CPU."
    )


def _seeds(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds)


# ============================================================================ cost
@dataclass(frozen=True)
class CostEstimate:
    """Training time of the points of a sweep that are not finished yet."""

    points: int
    finished: int
    to_train: int
    steps_to_train: int
    batch_size: int
    seconds_per_pair: float  # NaN when there is no basis for an estimate
    basis: str  # "paper" (the paper's reported time), "measured" (notebook 02's run), "none"

    @property
    def seconds(self) -> float:
        return self.steps_to_train * self.batch_size * self.seconds_per_pair

    @property
    def hours(self) -> float:
        return self.seconds / 3600


def estimate_cost(
    plan: pd.DataFrame,
    recipe: Recipe,
    pairs: pd.DataFrame,
    runs_dir: str | os.PathLike,
    use_paper_time: bool,
) -> CostEstimate:
    """Training time of the points still to train: their steps x batch x seconds per pair.
    Seconds per pair: the paper's reported time (`use_paper_time`, for the paper's
    recipe), else the measured time of notebook 02's run of `recipe`, if it is finished."""
    from cardioembed import paper

    basis, per_pair = "none", float("nan")
    run = load_manifest(models_dir(runs_dir) / recipe.run_name(pairs)) or {}
    if use_paper_time:  # 658.6 minutes for 2 epochs of 106,386 triplets
        pairs_seen = paper.CORPUS["train_triplets"] * paper.RECIPE["epochs"]
        basis, per_pair = "paper", paper.RECIPE["training_minutes"] * 60 / pairs_seen
    elif run.get("global_step") and run.get("seconds"):
        per_pair = float(run["seconds"]) / (int(run["global_step"]) * recipe.batch_size)
        basis = "measured"
    todo = plan[~plan["finished"]]
    return CostEstimate(
        points=len(plan),
        finished=int(plan["finished"].sum()),
        to_train=len(todo),
        steps_to_train=int(todo["steps"].sum()),
        batch_size=recipe.batch_size,
        seconds_per_pair=per_pair,
        basis=basis,
    )


# ============================================================================ chapters
def headline_suites(suites: Mapping[str, Suite]) -> tuple[str, str | None]:
    """The suite a sweep is judged on (the first retrieval suite, else the first) and an
    out-of-domain retrieval suite: its partner of the same format if the sweep scores it,
    else any out-of-domain retrieval suite of the sweep, else None."""
    from cardioembed.evaluation.suites import SPECIFIC_PAIRS

    names = list(suites)
    main = next((n for n in names if suites[n].kind == "retrieval"), names[0])
    partner = next(
        (out for inside, out in SPECIFIC_PAIRS.values() if inside == main and out in suites), None
    )
    if partner is None:  # e.g. the paper's own task: compare with any out-of-domain retrieval
        partner = next(
            (
                n
                for n in ("hpo-noncardio-name", "icd10cm-other-inclusion")
                if n in suites and n != main
            ),
            None,
        )
    return main, partner


def geometry_summary(geometry: pd.DataFrame, order: Sequence | None = None) -> pd.DataFrame:
    """Per setting (seeds together): mean cosine of a query with its own positive, with
    other documents, and the gap between the two."""
    means = geometry.groupby(["setting", "kind"])["cosine"].mean().unstack("kind")
    out = pd.DataFrame({"positive": means["positive"], "negative": means["negative"]})
    out["gap"] = out["positive"] - out["negative"]
    if order is not None:
        out = out.reindex([s for s in order if s in out.index])
    return out.rename_axis("setting")


def describe_cost(cost: CostEstimate, device: str) -> str:
    """One sentence: how much training the sweep still needs, and on what basis."""
    if cost.to_train == 0:
        return (
            f"All {cost.points} points are finished already: they are loaded, nothing is trained."
        )
    head = (
        f"{cost.to_train} of the {cost.points} points are trained "
        f"({cost.finished} finished already are loaded)"
    )
    if cost.basis == "none":
        return (
            f"{head}; there is no estimate of their time until notebook 02 has trained "
            "this recipe once (its measured time is the basis)."
        )
    if cost.basis == "paper":
        from cardioembed import paper

        basis = (
            f"the paper's reported {paper.RECIPE['training_minutes']:g} minutes on "
            f"{paper.RECIPE['gpu']} for 2 epochs of {paper.CORPUS['train_triplets']:,} "
            "triplets, scaled to the pairs each point sees"
        )
    else:
        basis = (
            "the measured time of notebook 02's run of this recipe on this machine, "
            "scaled to the pairs each point sees"
        )
    hours = f"{cost.hours:,.1f}" if cost.hours >= 1 else f"{cost.hours:.2f}"
    return (
        f"{head}: about {hours} {device} hours ({cost.seconds / 60:,.0f} minutes) of "
        f"training, from {basis}."
    )


def wide_results(
    table: pd.DataFrame, suites: Mapping[str, Suite], order: Sequence | None = None
) -> pd.DataFrame:
    """The headline metric per setting (rows) and suite (columns): the mean over seeds,
    then each seed's value in seed order (the intervals are in the figures)."""
    rows = headline(table, suites)
    cells: dict[tuple, str] = {}
    for (setting, suite), group in rows.groupby(["setting", "suite"], sort=False):
        seeds = ", ".join(f"{value:.3f}" for value in group.sort_values("seed")["value"])
        cells[(setting, suite)] = f"{group['value'].mean():.3f} ({seeds})"
    settings = list(order) if order is not None else list(dict.fromkeys(rows["setting"]))
    frame = pd.DataFrame(
        {
            suite: [cells.get((s, suite), "") for s in settings]
            for suite in suites
            if suite in set(rows["suite"])
        },
        index=pd.Index([str(s) for s in settings], name="setting"),
    )
    return frame


def plan_numbers(
    sweep: SweepConfig,
    plan: pd.DataFrame,
    cost: CostEstimate,
    suites: Mapping[str, Suite],
    recipe_steps: int,
    device: str,
) -> dict[str, Any]:
    """What the chapters say before the sweep starts (glue keys, the same in 03 and 04).
    `recipe_steps`: the training steps of the recipe's own length. ``reduction_text``, a
    sentence the findings chapter quotes too, says how each point is trained and scored."""
    documents = max((len(s.corpus) for s in suites.values() if s.kind == "retrieval"), default=0)
    reduction = (
        f"Every point trains the recipe's full length ({recipe_steps} steps) and is scored "
        "on every held-out query of every suite"
    )
    if sweep.max_documents:
        reduction += f", each retrieval corpus cut to {documents} documents (a quick run)"
    reduction += "."
    return {
        "n_settings": len(sweep.settings),
        "n_seeds": len(sweep.seeds),
        "n_points": cost.points,
        "estimate_text": describe_cost(cost, device),
        "estimate_to_train": int(cost.to_train),
        "reduction_text": reduction,
    }


def chapter_numbers(
    result: SweepResult,
    comparison: Comparison,
    suites: Mapping[str, Suite],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> dict[str, Any]:
    """The results the chapters quote through glue (the same keys in notebooks 03 and
    04)."""
    main, ood = headline_suites(suites)
    seeds = seed_summary(result.table, main, comparison.metric).set_index("setting")
    first = comparison.best if not comparison.default_is_best else comparison.default
    second = comparison.default if not comparison.default_is_best else comparison.other
    if ood is not None:
        ood_metric = HEADLINE_METRIC[suites[ood].kind]
        ood_margin = paired_difference(result, first, second, ood, ood_metric, bootstrap)
        ood_seeds = seed_summary(result.table, ood, ood_metric).set_index("setting")
        ood_best, ood_default = (
            float(ood_seeds.loc[comparison.best, "mean"]),
            float(ood_seeds.loc[comparison.default, "mean"]),
        )
    else:
        ood_margin = (float("nan"),) * 3
        ood_best = ood_default = float("nan")
    reasons = []
    if comparison.ci_low <= 0 <= comparison.ci_high:
        reasons.append("the interval covers 0")
    if abs(comparison.margin) <= comparison.seed_range:
        reasons.append("the margin is no larger than the seed-to-seed range")
    if not reasons:
        reasons.append("the interval excludes 0 and the margin exceeds the seed-to-seed range")
    if comparison.default_is_best:
        compared = (
            f"the paper's default ({comparison.default}) minus the runner-up ({comparison.other})"
        )
    else:
        compared = f"the best ({comparison.best}) minus the paper's default ({comparison.default})"
    geometry = geometry_summary(result.geometry, list(result.config.settings))
    points = result.points
    others = compare_settings(result, comparison.default, main, comparison.metric, bootstrap)
    return {
        "points_steps": int(points["steps"].min()),
        "detectable_difference": float(others["half_width"].max()) if len(others) else 0.0,
        "n_settings_differ": int((others["verdict"] != "within noise").sum()),
        "n_settings_compared": int(len(others)),
        "seeds_text": "seeds " + ", ".join(str(seed) for seed in result.config.seeds),
        "points_trained_now": int((points["status"] == "trained").sum()),
        "points_loaded": int((points["status"] == "loaded").sum()),
        "sweep_seconds_now": float(result.seconds),
        "sweep_seconds_recorded": float((points["train_seconds"] + points["score_seconds"]).sum()),
        "headline_suite": main,
        "ood_suite": ood or "(not scored)",
        "headline_metric": "Spearman" if comparison.metric == "spearman" else "Acc@1",
        "n_queries": int(suites[main].n_items),
        "best_setting": str(comparison.best),
        "default_setting": str(comparison.default),
        "other_setting": str(comparison.other),
        "default_is_best": "is" if comparison.default_is_best else "is not",
        "compared_text": compared,
        "best_value": float(seeds.loc[comparison.best, "mean"]),
        "default_value": float(seeds.loc[comparison.default, "mean"]),
        "margin": comparison.margin,
        "margin_low": comparison.ci_low,
        "margin_high": comparison.ci_high,
        "seed_range": comparison.seed_range,
        "verdict": "within noise" if comparison.within_noise else "larger than the noise",
        "verdict_reason": " and ".join(reasons),
        "ood_best_value": ood_best,
        "ood_default_value": ood_default,
        "ood_margin": float(ood_margin[0]),
        "ood_margin_low": float(ood_margin[1]),
        "ood_margin_high": float(ood_margin[2]),
        "geometry_widest": str(geometry["gap"].idxmax()),
        "geometry_widest_gap": float(geometry["gap"].max()),
        "geometry_narrowest": str(geometry["gap"].idxmin()),
        "geometry_narrowest_gap": float(geometry["gap"].min()),
        "geometry_crowded": str(geometry["negative"].idxmax()),
        "geometry_crowded_negative": float(geometry["negative"].max()),
        "geometry_spread": str(geometry["negative"].idxmin()),
        "geometry_spread_negative": float(geometry["negative"].min()),
    }


__all__ = [
    "AXES",
    "TABLE_COLUMNS",
    "Recipe",
    "SweepConfig",
    "SweepPoint",
    "SweepResult",
    "Comparison",
    "CostEstimate",
    "build_sweep_suites",
    "cosine_geometry",
    "plan_sweep",
    "run_sweep",
    "summary_table",
    "write_sweep",
    "load_sweep",
    "headline",
    "seed_summary",
    "compare_to_default",
    "estimate_cost",
    "models_dir",
    "paired_difference",
    "compare_settings",
    "grid_text",
    "headline_suites",
    "geometry_summary",
    "describe_cost",
    "wide_results",
    "plan_numbers",
    "chapter_numbers",
]
