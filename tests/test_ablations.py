"""Ablation sweeps: configuration, the recipe of notebook 02, reuse of finished points,
the CSV contract, the comparison with the paper's default."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

import cardioembed.training.recipe as training
from cardioembed.errors import ParameterError
from cardioembed.evaluation.suites import RetrievalSuite, SimilaritySuite
from cardioembed.sweeps import (
    TABLE_COLUMNS,
    SweepConfig,
    compare_to_default,
    cosine_geometry,
    estimate_cost,
    load_sweep,
    plan_sweep,
    run_sweep,
    write_sweep,
)
from cardioembed.training.recipe import Recipe, recipe_defaults

ROOT = Path(__file__).resolve().parent.parent

SWEEP_NOTEBOOKS = [
    ROOT / "notebooks" / "03_ablate_pooling.ipynb",
    ROOT / "notebooks" / "04_ablate_temperature.ipynb",
]


def make_pairs(n_train: int = 16, n_val: int = 4) -> pd.DataFrame:
    rows = [
        {
            "anchor": f"cardiac term {i}",
            "split": "train" if i < n_train else "validation",
            "positive": f"definition {i}: an abnormality of heart structure number {i * 7}",
            "negative": None,
            "group": f"g{i}",
            "source": "test",
            "kind": "name-definition",
        }
        for i in range(n_train + n_val)
    ]
    return pd.DataFrame(rows)


def tiny_suites() -> dict:
    parts = ["valve", "septum", "atrium", "ventricle", "aorta", "rhythm"]
    corpus = {f"d{i}": f"an abnormality of the {part} of the heart" for i, part in enumerate(parts)}
    queries = {
        f"q{i}": name
        for i, name in enumerate(
            [
                "valve defect",
                "septal defect",
                "atrial anomaly",
                "ventricular anomaly",
                "aortic anomaly",
                "arrhythmia",
            ]
        )
    }
    retrieval = RetrievalSuite(
        "hpo-cardio-name", queries, corpus, {f"q{i}": {f"d{i}"} for i in range(6)}
    )
    texts = list(corpus.values())
    similarity = SimilaritySuite(
        "hpo-noncardio-similarity",
        [(texts[i], texts[(i + 1) % 6]) for i in range(6)],
        [0.1, 0.5, 0.3, 0.9, 0.2, 0.4],
    )
    return {"hpo-cardio-name": retrieval, "hpo-noncardio-similarity": similarity}


# The recipe of notebook 02, shrunk to one training step on tiny pairs.
RECIPE = Recipe.from_parameters(
    {
        **recipe_defaults(),
        "train_kinds": ("name-definition",),
        "lora_rank": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "lora_top_layers": 1,
        "batch_size": 8,
        "max_steps": 1,
        "eval_steps": 100,
    }
)
SUITE_NAMES = ("hpo-cardio-name", "hpo-noncardio-similarity")


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"axis": "pooling", "settings": ["eos", "max-pool"]}, "sweep_poolings"),
        ({"axis": "pooling", "settings": []}, "sweep_poolings"),
        ({"axis": "temperature", "settings": [0.05, 0]}, "sweep_temperatures"),
        ({"axis": "temperature", "settings": [-0.1]}, "sweep_temperatures"),
        ({"axis": "temperature", "settings": ["warm"]}, "sweep_temperatures"),
        ({"axis": "temperature", "settings": [0.05, 0.05]}, "sweep_temperatures"),
        ({"axis": "temperature", "settings": [0.05], "seeds": []}, "sweep_seeds"),
        ({"axis": "temperature", "settings": [0.05], "seeds": [1.5]}, "sweep_seeds"),
        ({"axis": "temperature", "settings": [0.05], "suites": ["mteb"]}, "sweep_suites"),
        ({"axis": "temperature", "settings": [0.05], "max_documents": -1}, "sweep_max_documents"),
    ],
)
def test_bad_sweep_parameters_name_the_parameter(kwargs, parameter):
    with pytest.raises(ParameterError) as info:
        SweepConfig(**kwargs)
    assert info.value.name == parameter


def test_sweep_points_vary_only_the_setting_and_the_seed():
    sweep = SweepConfig("temperature", [0.02, 0.05], seeds=[42, 43])
    points = sweep.points(RECIPE)
    assert [(p.setting, p.seed) for p in points] == [(0.02, 42), (0.02, 43), (0.05, 42), (0.05, 43)]
    first = points[0].recipe
    assert (first.temperature, first.train_seed) == (0.02, 42)
    # every point trains the recipe's own length: only the setting and the seed differ
    assert first.replace(temperature=RECIPE.temperature, train_seed=RECIPE.train_seed) == RECIPE
    # so the default point IS the recipe (notebook 02's run)
    same = SweepConfig("pooling", [RECIPE.pooling], seeds=[RECIPE.train_seed]).points(RECIPE)
    assert same[0].recipe == RECIPE
    assert RECIPE.replace(epochs=2, batch_size=32, max_steps=-1).planned_steps(100) == 8


@pytest.mark.parametrize("notebook", SWEEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_sweep_notebooks_take_the_recipe_from_notebook_02s_run(notebook):
    """A sweep notebook declares only what it varies and how points are scored; the recipe
    comes from the run notebook 02 recorded, so no recipe value has a second home."""
    declared = set(papermill.inspect_notebook(str(notebook)))
    recipe_names = {f.name for f in dataclasses.fields(Recipe)}
    assert not declared & recipe_names
    for name in ("sweep_seeds", "sweep_suites", "sweep_max_documents"):
        assert name in declared
    # no point may be shorter than the recipe, nor scored on a sample of the queries
    assert not {"sweep_max_steps", "sweep_max_queries"} & declared
    code = "".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"])
    assert "Recipe.of_run(main_run(" in code


# ----------------------------------------------------------------------------- pieces
def test_cosine_geometry_one_positive_and_n_negatives_per_query():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(3, 4))
    d = rng.normal(size=(5, 4))
    geometry = cosine_geometry(q, d, [[0], [1, 2], [4]], n_negatives=2, seed=0)
    assert (geometry["kind"] == "positive").sum() == 3
    assert (geometry["kind"] == "negative").sum() == 6
    scores = q @ d.T
    assert geometry["cosine"].iloc[3] == pytest.approx(scores[1, [1, 2]].max())


def _synthetic_result(gap: float, noise: float) -> dict:
    """Two settings x two seeds on one suite: 'b' scores `gap` more often than 'a'."""
    rng = np.random.default_rng(0)
    rows = []
    for setting, rate in (("a", 0.5), ("b", 0.5 + gap)):
        for seed in (1, 2):
            hits = (rng.random(400) < rate + rng.normal(0, noise)).astype(float)
            rows += [
                {"setting": setting, "seed": seed, "suite": "s", "item": f"q{i}", "acc@1": h}
                for i, h in enumerate(hits)
            ]
    per_query = pd.DataFrame(rows)
    table = (
        per_query.groupby(["setting", "seed", "suite"])["acc@1"]
        .mean()
        .rename("value")
        .reset_index()
        .assign(metric="acc@1", ci_low=0.0, ci_high=1.0, steps=70)
    )
    return {"table": table[TABLE_COLUMNS], "per_query": per_query}


def test_compare_to_default_finds_a_real_difference_and_noise():
    clear = compare_to_default(_synthetic_result(0.4, 0.0), "a", "s")
    assert clear.best == "b" and clear.other == "a"
    assert 0.3 < clear.margin < 0.5 and clear.ci_low > 0 and not clear.within_noise
    tiny = compare_to_default(_synthetic_result(0.0, 0.0), "a", "s")
    assert tiny.within_noise
    leader = compare_to_default(_synthetic_result(-0.3, 0.0), "a", "s")
    assert leader.default_is_best and leader.other == "b" and leader.margin > 0
    with pytest.raises(ParameterError):
        compare_to_default(_synthetic_result(0.1, 0.0), "c", "s")


def test_every_setting_is_compared_with_the_default_on_the_same_queries():
    from cardioembed.sweeps import compare_settings

    clear = compare_settings(_synthetic_result(0.4, 0.0), "a", "s")
    assert list(clear["setting"]) == ["b"] and clear["verdict"].iloc[0] == "higher"
    row = clear.iloc[0]
    assert row["half_width"] == pytest.approx((row["ci_high"] - row["ci_low"]) / 2)
    # 400 queries: a 95% interval of a difference in Acc@1 is a few hundredths wide
    assert 0.01 < row["half_width"] < 0.1
    same = compare_settings(_synthetic_result(0.0, 0.0), "a", "s")
    assert same["verdict"].iloc[0] == "within noise"
    assert compare_settings(_synthetic_result(-0.4, 0.0), "a", "s")["verdict"].iloc[0] == "lower"


def test_cost_estimate_from_the_paper():
    plan = pd.DataFrame(
        {
            "setting": ["eos", "mean"],
            "seed": [42, 42],
            "run_name": ["x", "y"],
            "finished": [True, False],
            "steps": [1664, 1664],
        }
    )
    recipe = RECIPE.replace(batch_size=128, epochs=2, max_steps=-1)
    cost = estimate_cost(plan, recipe, make_pairs(), "/nonexistent", use_paper_time=True)
    assert (cost.points, cost.finished, cost.to_train) == (2, 1, 1)
    # 1,664 steps of 128 pairs is 2 epochs of the paper's 106,386 triplets: its 658.6 min
    assert cost.hours == pytest.approx(658.6 / 60, rel=0.01)
    unknown = estimate_cost(plan, recipe, make_pairs(), "/nonexistent", use_paper_time=False)
    assert unknown.basis == "none" and np.isnan(unknown.hours)


# ----------------------------------------------------------------------------- trained
@pytest.fixture()
def count_training(monkeypatch):
    calls = []
    real_train = training.train

    def counting_train(pairs, recipe, output_dir, *args, **kwargs):
        calls.append((recipe.pooling, recipe.temperature, recipe.train_seed))
        return real_train(pairs, recipe, output_dir, *args, **kwargs)

    monkeypatch.setattr(training, "train", counting_train)
    return calls


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Notebook 02's run of RECIPE, then a 2 x 2 temperature sweep that includes it."""
    runs = tmp_path_factory.mktemp("runs") / "tiny"
    pairs = make_pairs()
    training.train_or_load(pairs, RECIPE, runs / "models" / RECIPE.run_name(pairs), progress=False)
    sweep = SweepConfig(
        "temperature", [0.05, 0.1], seeds=[42, 43], suites=SUITE_NAMES, geometry_negatives=3
    )
    suites = tiny_suites()
    lines: list[str] = []
    calls: list = []
    real_train = training.train

    def counting_train(pairs, recipe, *args, **kwargs):
        calls.append((recipe.temperature, recipe.train_seed))
        return real_train(pairs, recipe, *args, **kwargs)

    training.train = counting_train
    try:
        result = run_sweep(pairs, RECIPE, sweep, suites, runs, echo=lines.append)
    finally:
        training.train = real_train
    return runs, pairs, sweep, suites, result, lines, calls


def test_the_run_of_notebook_02_counts_as_a_sweep_point(swept):
    runs, pairs, sweep, suites, result, lines, calls = swept
    assert sorted(calls) == [(0.05, 43), (0.1, 42), (0.1, 43)]  # (0.05, 42) is notebook 02's
    assert len(lines) == 4 and "temperature=0.05 seed=42: loaded" in lines[0]
    assert all(" s" in line for line in lines) and "trained" in lines[1]
    assert list(result.points["status"]) == ["loaded", "trained", "trained", "trained"]


def test_table_contract_and_files(swept, tmp_path):
    runs, pairs, sweep, suites, result, lines, calls = swept
    table = result.table
    assert list(table.columns) == TABLE_COLUMNS
    # every point trained the recipe's full length, and the table says so
    assert set(table["steps"]) == {RECIPE.max_steps}
    assert set(table["suite"]) == set(SUITE_NAMES)
    assert set(table["setting"]) == {0.05, 0.1} and set(table["seed"]) == {42, 43}
    assert set(table.loc[table["suite"] == "hpo-cardio-name", "metric"]) >= {"acc@1", "mrr@10"}
    assert set(table.loc[table["suite"] == "hpo-noncardio-similarity", "metric"]) == {"spearman"}
    acc = table[table["metric"] == "acc@1"]
    assert (acc["ci_low"] <= acc["value"]).all() and (acc["value"] <= acc["ci_high"]).all()
    assert set(result.geometry["kind"]) == {"positive", "negative"}
    path = write_sweep(result, tmp_path / "ablations", params={"profile": "tiny"})
    assert path.name == "temperature.csv"
    on_disk = pd.read_csv(path)
    assert list(on_disk.columns) == TABLE_COLUMNS and len(on_disk) == len(table)
    manifest = json.loads((tmp_path / "ablations" / "temperature.manifest.json").read_text())
    assert manifest["kind"] == "ablation-sweep" and "temperature.csv" in manifest["outputs"]
    loaded = load_sweep(tmp_path / "ablations", "temperature")
    assert len(loaded["per_query"]) == len(result.per_query)
    comparison = compare_to_default(loaded, 0.05, "hpo-cardio-name")
    assert comparison.ci_low <= comparison.margin <= comparison.ci_high


def test_a_restarted_sweep_does_only_what_is_missing(swept, count_training):
    runs, pairs, sweep, suites, result, lines, calls = swept
    plan = plan_sweep(pairs, RECIPE, sweep, runs)
    assert plan["finished"].all()
    again = run_sweep(pairs, RECIPE, sweep, suites, runs, echo=lambda line: None)
    assert count_training == []  # everything reused, nothing trained or scored
    assert not again.points["scored_now"].any()
    pd.testing.assert_frame_equal(again.table, result.table)

    # an interruption: one run folder lost, one point's scores lost
    lost_run = plan.iloc[3]["run_name"]
    shutil.rmtree(runs / "models" / lost_run)
    scores = sorted((runs / "ablations" / "points").glob(plan.iloc[1]["run_name"] + "-*"))
    shutil.rmtree(scores[0])
    assert list(plan_sweep(pairs, RECIPE, sweep, runs)["finished"]) == [True, True, True, False]
    resumed = run_sweep(pairs, RECIPE, sweep, suites, runs, echo=lambda line: None)
    assert count_training == [("mean", 0.1, 43)]  # only the missing run is trained
    assert list(resumed.points["status"]) == ["loaded", "loaded", "loaded", "trained"]
    assert list(resumed.points["scored_now"]) == [False, True, False, True]


def test_chapter_numbers_and_figures(swept):
    from cardioembed.book import plots
    from cardioembed.sweeps import (
        chapter_numbers,
        headline,
        headline_suites,
        plan_numbers,
        wide_results,
    )

    runs, pairs, sweep, suites, result, lines, calls = swept
    assert headline_suites(suites) == ("hpo-cardio-name", None)
    comparison = compare_to_default(result, 0.05, "hpo-cardio-name")
    numbers = chapter_numbers(result, comparison, suites)
    assert numbers["default_setting"] == "0.05" and numbers["verdict"] in (
        "within noise",
        "larger than the noise",
    )
    assert numbers["margin_low"] <= numbers["margin"] <= numbers["margin_high"]
    plan = plan_sweep(pairs, RECIPE, sweep, runs)
    cost = estimate_cost(plan, RECIPE, pairs, runs, use_paper_time=False)
    assert cost.basis == "measured" and cost.to_train == 0
    steps = int(plan["steps"].max())
    said = plan_numbers(sweep, plan, cost, suites, steps, "CPU")
    assert "nothing is trained" in said["estimate_text"]
    assert f"full length ({steps} steps)" in said["reduction_text"]
    assert "every held-out query" in said["reduction_text"]
    assert numbers["points_steps"] == steps
    assert numbers["n_settings_compared"] == 1
    from cardioembed.sweeps import compare_settings

    others = compare_settings(result, 0.05, "hpo-cardio-name")
    assert list(others["setting"]) == [0.1]
    assert numbers["detectable_difference"] == others["half_width"].max() >= 0
    rows = headline(result.table, suites)
    assert set(rows["metric"]) == {"acc@1", "spearman"}
    assert wide_results(result.table, suites).shape == (2, 2)
    for figure in (
        plots.sweep_bars(rows, [0.05, 0.1], default=0.05),
        plots.sweep_curve(rows, default=0.05),
        plots.cosine_distributions(result.geometry, [0.05, 0.1]),
    ):
        assert figure.axes
