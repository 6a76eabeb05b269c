"""Ablation sweeps: bad grids named, the visible loop of notebooks 03 and 04, reuse of the
run of notebook 02 and of finished points, the CSV contract, the paired comparison."""

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
from cardioembed.book.tables import estimate
from cardioembed.errors import ParameterError
from cardioembed.evaluation.metrics import BootstrapConfig
from cardioembed.evaluation.suites import RetrievalSuite, SimilaritySuite
from cardioembed.profiles import notebook_values
from cardioembed.sweeps import (
    TABLE_COLUMNS,
    check_sweep,
    compare_settings,
    compare_to_default,
    cosine_geometry,
    headline,
    headline_suites,
    load_scores,
    score_point,
    write_sweep,
)
from cardioembed.training.recipe import Recipe

ROOT = Path(__file__).resolve().parent.parent
SWEEP_NOTEBOOKS = [
    ROOT / "notebooks" / "03_ablate_pooling.ipynb",
    ROOT / "notebooks" / "04_ablate_temperature.ipynb",
]
BOOTSTRAP = BootstrapConfig(n_resamples=200)


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
    names = ["valve defect", "septal defect", "atrial anomaly", "ventricular anomaly"]
    queries = {f"q{i}": name for i, name in enumerate([*names, "aortic anomaly", "arrhythmia"])}
    retrieval = RetrievalSuite(
        "hpo-cardio-name", queries, corpus, {f"q{i}": {f"d{i}"} for i in range(6)}
    )
    texts = list(corpus.values())
    similarity = SimilaritySuite(
        "hpo-noncardio-similarity",
        [(texts[i], texts[(i + 1) % 6]) for i in range(6)],
        [0.1, 0.5, 0.3, 0.9, 0.2, 0.4],
        [(f"d{i}", f"d{(i + 1) % 6}") for i in range(6)],
    )
    return {"hpo-cardio-name": retrieval, "hpo-noncardio-similarity": similarity}


# The recipe of notebook 02, shrunk to one training step on tiny pairs.
RECIPE = Recipe.from_parameters(
    {
        **notebook_values("02"),
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


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "axis, settings, seeds, suites, parameter",
    [
        ("pooling", ["eos", "max-pool"], [42], ["hpo-cardio-name"], "sweep_poolings"),
        ("pooling", [], [42], ["hpo-cardio-name"], "sweep_poolings"),
        ("temperature", [0.05, 0], [42], ["hpo-cardio-name"], "sweep_temperatures"),
        ("temperature", [-0.1], [42], ["hpo-cardio-name"], "sweep_temperatures"),
        ("temperature", ["warm"], [42], ["hpo-cardio-name"], "sweep_temperatures"),
        ("temperature", [0.05, 0.05], [42], ["hpo-cardio-name"], "sweep_temperatures"),
        ("temperature", [0.05], [], ["hpo-cardio-name"], "sweep_seeds"),
        ("temperature", [0.05], [1.5], ["hpo-cardio-name"], "sweep_seeds"),
        ("temperature", [0.05], [42, 42], ["hpo-cardio-name"], "sweep_seeds"),
        ("temperature", [0.05], [42], ["mteb"], "sweep_suites"),
        ("temperature", [0.05], [42], [], "sweep_suites"),
    ],
)
def test_bad_sweep_parameters_name_the_parameter(axis, settings, seeds, suites, parameter):
    with pytest.raises(ParameterError) as info:
        check_sweep(RECIPE, axis, settings, seeds, suites)
    assert info.value.name == parameter


def test_a_good_sweep_passes_the_check():
    check_sweep(RECIPE, "pooling", ["eos", "mean"], [42, 43], ["hpo-cardio-name"])
    check_sweep(RECIPE, "temperature", [0.01, 0.05], [42], ["hpo-noncardio-similarity"])


@pytest.mark.parametrize("notebook", SWEEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_sweep_notebooks_show_their_loop_on_notebook_02s_recipe(notebook):
    """A sweep notebook declares only what it varies and how points are scored; the recipe
    comes from the run notebook 02 recorded, so no recipe value has a second home; the
    loop that trains and scores the points is a visible cell."""
    declared = set(papermill.inspect_notebook(str(notebook)))
    recipe_names = {f.name for f in dataclasses.fields(Recipe)}
    assert not declared & recipe_names
    for name in ("sweep_seeds", "sweep_suites", "sweep_max_documents", "eval_sample_size"):
        assert name in declared
    # no point may be shorter than the recipe, nor scored on a sample of the queries
    assert not {"sweep_max_steps", "sweep_max_queries"} & declared
    cells = json.loads(notebook.read_text())["cells"]
    code = "".join("".join(c["source"]) for c in cells)
    assert "Recipe.of_run(main_run(" in code
    loop = [c for c in cells if "train_or_load(" in "".join(c["source"])]
    assert len(loop) == 1 and not loop[0]["metadata"].get("tags")
    assert "recipe.replace(" in "".join(loop[0]["source"])


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


def test_headline_suites_pick_the_first_retrieval_suite_and_an_out_of_domain_one():
    suites = tiny_suites()
    assert headline_suites(suites) == ("hpo-cardio-name", None)
    ood = RetrievalSuite("hpo-noncardio-name", {"q": "x"}, {"d": "y"}, {"q": {"d"}})
    similarity_first = {"hpo-noncardio-similarity": suites["hpo-noncardio-similarity"]}
    assert headline_suites({**similarity_first, **suites, "hpo-noncardio-name": ood}) == (
        "hpo-cardio-name",
        "hpo-noncardio-name",
    )


def _sweep_of(rates, rng_seed: int = 0) -> dict:
    """A sweep on one suite of 400 queries: (setting, seed, hit rate) per point."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for setting, seed, rate in rates:
        hits = (rng.random(400) < rate).astype(float)
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


def _synthetic_sweep(gap: float) -> dict:
    """Two settings x two seeds on one suite: 'b' scores `gap` more often than 'a'."""
    return _sweep_of([(s, seed, r) for s, r in (("a", 0.5), ("b", 0.5 + gap)) for seed in (1, 2)])


def test_compare_to_default_finds_a_real_difference_and_noise():
    """The words and numbers the chapters and the findings glue, in every case: the paper's
    setting against the best other one (its rival), whichever of the two is best."""
    worse = compare_to_default(_synthetic_sweep(0.4), "a", "s", "acc@1", BOOTSTRAP)
    assert (worse["best_setting"], worse["rival_setting"]) == ("b", "b")
    assert -0.5 < worse["margin"] < -0.3 and worse["margin_high"] < 0  # the paper's minus b
    assert worse["default_value"] - worse["rival_value"] == pytest.approx(worse["margin"])
    assert worse["verdict"] == "below zero" and worse["claim_verdict"] == "not confirmed"
    same = compare_to_default(_synthetic_sweep(0.0), "a", "s", "acc@1", BOOTSTRAP)
    assert same["verdict"] == "within noise" and same["claim_verdict"] == "cannot tell"
    best = compare_to_default(_synthetic_sweep(-0.3), "a", "s", "acc@1", BOOTSTRAP)
    assert (best["best_setting"], best["rival_setting"]) == ("a", "b")  # the runner-up
    assert best["margin"] > 0 and best["margin_low"] > 0
    assert best["verdict"] == "above zero" and best["claim_verdict"] == "confirmed"
    untestable = compare_to_default(
        _synthetic_sweep(-0.3), "a", "s", "acc@1", BOOTSTRAP, measured=False
    )
    assert untestable["claim_verdict"] == "not measured at this scale"
    with pytest.raises(ParameterError) as info:
        compare_to_default(_synthetic_sweep(0.1), "c", "s", "acc@1", BOOTSTRAP, "sweep_poolings")
    assert info.value.name == "sweep_poolings"


def test_a_single_setting_has_nothing_to_compare():
    sweep = _synthetic_sweep(0.4)
    sweep = {name: frame[frame["setting"] == "a"] for name, frame in sweep.items()}
    alone = compare_to_default(sweep, "a", "s", "acc@1", BOOTSTRAP)
    assert (alone["best_setting"], alone["rival_setting"]) == ("a", "none")
    assert np.isnan([alone["margin"], alone["margin_low"], alone["rival_value"]]).all()
    assert alone["verdict"] == "not measured"
    assert alone["claim_verdict"] == "not measured at this scale"
    assert estimate(alone["margin"], alone["margin_low"], alone["margin_high"]) == "–"
    assert compare_settings(sweep, "a", "s", "acc@1", BOOTSTRAP).empty


def test_a_single_seed_gives_no_seed_range_and_judges_that_seed():
    sweep = _synthetic_sweep(0.4)
    sweep = {name: frame[frame["seed"] == 1] for name, frame in sweep.items()}
    one = compare_to_default(sweep, "a", "s", "acc@1", BOOTSTRAP)
    assert one["n_seeds"] == 1 and one["seed_range"] == 0
    assert one["verdict"] == "below zero" and one["claim_verdict"] == "not confirmed"


def test_the_claim_holds_only_if_it_holds_for_every_seed():
    """Seed 1 shows a clear lead of the paper's setting, seed 2 none: the seeds' mean may
    lead, but the claim is not confirmed."""
    sweep = _sweep_of([("a", 1, 0.9), ("b", 1, 0.4), ("a", 2, 0.5), ("b", 2, 0.5)], rng_seed=1)
    mixed = compare_to_default(sweep, "a", "s", "acc@1", BOOTSTRAP)
    assert mixed["margin_low"] > 0  # over the seeds' mean the paper's setting leads
    assert mixed["claim_verdict"] == "cannot tell"


def test_the_paired_difference_is_the_mean_over_queries_of_seed_averaged_differences():
    sweep = _synthetic_sweep(0.2)
    per_query = sweep["per_query"]
    means = per_query.groupby(["setting", "item"])["acc@1"].mean().unstack("setting")
    expected = float((means["b"] - means["a"]).mean())
    row = compare_settings(sweep, "a", "s", "acc@1", BOOTSTRAP).iloc[0]
    assert row["difference"] == pytest.approx(expected)
    assert row["ci_low"] < expected < row["ci_high"]


def test_every_setting_is_compared_with_the_default_on_the_same_queries():
    clear = compare_settings(_synthetic_sweep(0.4), "a", "s", "acc@1", BOOTSTRAP)
    assert list(clear["setting"]) == ["b"] and clear["verdict"].iloc[0] == "above zero"
    row = clear.iloc[0]
    assert row["half_width"] == pytest.approx((row["ci_high"] - row["ci_low"]) / 2)
    # 400 queries: a 95% interval of a difference in Acc@1 is a few hundredths wide
    assert 0.01 < row["half_width"] < 0.1
    same = compare_settings(_synthetic_sweep(0.0), "a", "s", "acc@1", BOOTSTRAP)
    assert same["verdict"].iloc[0] == "within noise"
    lower = compare_settings(_synthetic_sweep(-0.4), "a", "s", "acc@1", BOOTSTRAP)
    assert lower["verdict"].iloc[0] == "below zero"


# ----------------------------------------------------------------------------- trained
TEMPERATURES, SEEDS = (0.05, 0.1), (42, 43)


def sweep_points(pairs, suites, runs) -> list:
    """The loop of notebook 04."""
    points = []
    for tau in TEMPERATURES:
        for seed in SEEDS:
            point = RECIPE.replace(temperature=tau, train_seed=seed)
            scores = load_scores(pairs, point, suites, runs, seed=42)
            if scores is None:
                folder = runs / "models" / point.run_name(pairs)
                run = training.train_or_load(pairs, point, folder, validate=False)
                scores = score_point(run, pairs, point, suites, runs, seed=42)
            points.append(scores)
    return points


@pytest.fixture()
def count_training(monkeypatch):
    calls = []
    real_train = training.train

    def counting_train(pairs, recipe, *args, **kwargs):
        calls.append((recipe.temperature, recipe.train_seed))
        return real_train(pairs, recipe, *args, **kwargs)

    monkeypatch.setattr(training, "train", counting_train)
    return calls


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Notebook 02's run of RECIPE, then a 2 x 2 temperature sweep that includes it."""
    runs = tmp_path_factory.mktemp("runs") / "tiny"
    pairs, suites = make_pairs(), tiny_suites()
    training.train_or_load(pairs, RECIPE, runs / "models" / RECIPE.run_name(pairs))
    calls: list = []
    real_train = training.train

    def counting_train(pairs, recipe, *args, **kwargs):
        calls.append((recipe.temperature, recipe.train_seed))
        return real_train(pairs, recipe, *args, **kwargs)

    training.train = counting_train
    try:
        points = sweep_points(pairs, suites, runs)
    finally:
        training.train = real_train
    sweep = write_sweep(
        points, "temperature", suites, BOOTSTRAP, runs / "ablations" / "temperature", {"p": 1}
    )
    return runs, pairs, suites, sweep, calls


def test_the_run_of_notebook_02_counts_as_a_sweep_point(swept):
    runs, pairs, suites, sweep, calls = swept
    assert sorted(calls) == [(0.05, 43), (0.1, 42), (0.1, 43)]  # (0.05, 42) is notebook 02's
    assert list(sweep["points"]["status"]) == ["loaded", "trained", "trained", "trained"]
    assert sweep["points"]["scored_now"].all()


def test_table_contract_and_files(swept):
    runs, pairs, suites, sweep, calls = swept
    table = sweep["table"]
    assert list(table.columns) == TABLE_COLUMNS
    # every point trained the recipe's full length, and the table says so
    assert set(table["steps"]) == {RECIPE.max_steps}
    assert set(table["suite"]) == set(suites)
    assert set(table["setting"]) == set(TEMPERATURES) and set(table["seed"]) == set(SEEDS)
    assert set(table.loc[table["suite"] == "hpo-cardio-name", "metric"]) >= {"acc@1", "mrr@10"}
    assert set(table.loc[table["suite"] == "hpo-noncardio-similarity", "metric"]) == {"spearman"}
    acc = table[table["metric"] == "acc@1"]
    assert (acc["ci_low"] <= acc["value"]).all() and (acc["value"] <= acc["ci_high"]).all()
    assert set(sweep["geometry"]["kind"]) == {"positive", "negative"}
    assert set(headline(table, suites)["metric"]) == {"acc@1", "spearman"}
    folder = runs / "ablations" / "temperature"
    on_disk = pd.read_csv(folder / "temperature.csv")
    assert list(on_disk.columns) == TABLE_COLUMNS and len(on_disk) == len(table)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "ablation-sweep" and "temperature.csv" in manifest["outputs"]
    assert list(pd.read_csv(folder / "points.csv")["status"]) == list(sweep["points"]["status"])
    loaded = {"table": on_disk, "per_query": pd.read_parquet(folder / "per_query.parquet")}
    comparison = compare_to_default(loaded, 0.05, "hpo-cardio-name", "acc@1", BOOTSTRAP)
    assert comparison["margin_low"] <= comparison["margin"] <= comparison["margin_high"]


def test_a_restarted_sweep_does_only_what_is_missing(swept, count_training):
    runs, pairs, suites, sweep, calls = swept
    again = write_sweep(
        sweep_points(pairs, suites, runs), "temperature", suites, BOOTSTRAP, runs / "again", {}
    )
    assert count_training == []  # everything reused, nothing trained or scored
    assert not again["points"]["scored_now"].any()
    pd.testing.assert_frame_equal(again["table"], sweep["table"])

    # an interruption: one run folder lost, one point's scores lost
    names = list(sweep["points"]["run_name"])
    shutil.rmtree(runs / "models" / names[3])
    for scores in (runs / "ablations" / "points").glob(names[1] + "-*"):
        shutil.rmtree(scores)
    resumed = sweep_points(pairs, suites, runs)
    assert count_training == [(0.1, 43)]  # only the missing run is trained
    assert [p.status for p in resumed] == ["loaded", "loaded", "loaded", "trained"]
    assert [p.scored_now for p in resumed] == [False, True, False, True]
    table = write_sweep(resumed, "temperature", suites, BOOTSTRAP, runs / "resumed", {})["table"]
    # the rescored point gives the same numbers from the same run
    same = table["seed"].eq(43) & table["setting"].eq(0.05)
    pd.testing.assert_frame_equal(table[same], sweep["table"][same])
