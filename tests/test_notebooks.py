"""Every notebook, executed through the runner with the smoke profile, as a user would."""

import json
import re

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # `smoke_run` (conftest.py) executes every notebook


def test_every_notebook_was_executed_and_records_its_environment(smoke_run, project_root):
    sources = sorted(p.name for p in (project_root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    executed = sorted(p.name for p in (smoke_run / "executed").glob("*.ipynb"))
    assert executed == sources
    for name in executed:
        meta = json.loads((smoke_run / "executed" / name).read_text())["metadata"]["cardioembed"]
        assert meta["profile"] == "smoke"
        assert meta["environment"]["packages"]["sentence-transformers"]


def test_corpus_artifact_is_leakage_safe(smoke_run):
    from cardioembed.curation.corpus import load_corpus

    corpus = load_corpus(smoke_run / "runs" / "smoke" / "corpus")["folder"]
    pairs = pd.read_parquet(corpus / "pairs.parquet")
    assert set(pairs["split"]) == {"train", "validation", "test"}
    assert (pairs.groupby("group")["split"].nunique() == 1).all()
    assert len(pd.read_parquet(corpus / "audit.parquet")) == 0
    assert (pairs["anchor"].str.len() > 0).all() and (pairs["positive"].str.len() > 0).all()
    assert "paraphrase" in set(pairs["kind"])  # smoke exercises the paper's strategy
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["params"]["max_items_per_source"] == 300


def test_training_notebook_saved_a_sentence_transformers_model(smoke_run):
    from sentence_transformers import SentenceTransformer

    from cardioembed.training.recipe import load_history, main_run

    folder = main_run(smoke_run / "runs" / "smoke" / "models")
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    record = json.loads((folder / "manifest.json").read_text())
    assert record["global_step"] == 3 == len(load_history(folder).dropna(subset=["loss"]))
    model = SentenceTransformer(str(folder))
    assert model.encode(["atrial flutter"]).shape == (1, 384)


def test_search_finds_a_training_terms_own_definition(smoke_run, capsys):
    """`cardioembed search` on the smoke run: for training terms whose own definition the
    main model ranks first among all passages (checked directly with sentence-transformers),
    the command prints that definition first."""
    from sentence_transformers import SentenceTransformer, util

    from cardioembed import cli
    from cardioembed.curation.corpus import load_corpus
    from cardioembed.evaluation.search import corpus_passages
    from cardioembed.training.recipe import main_run

    runs = smoke_run / "runs"
    corpus = load_corpus(runs / "smoke" / "corpus")
    passages = corpus_passages(corpus)
    pairs = corpus["pairs"]
    train = pairs[(pairs["split"] == "train") & (pairs["kind"] == "name-definition")].head(20)
    model = SentenceTransformer(str(main_run(runs / "smoke" / "models")))
    hits = util.semantic_search(
        model.encode(train["anchor"].tolist(), convert_to_tensor=True),
        model.encode(passages, convert_to_tensor=True),
        top_k=1,
    )
    found = [
        (a, p)
        for (a, p), h in zip(train[["anchor", "positive"]].values, hits, strict=True)
        if passages[h[0]["corpus_id"]] == p
    ]
    assert len(found) >= len(train) // 2  # the trained model knows most of its own terms
    anchor, definition = found[0]
    capsys.readouterr()
    code = cli.main(
        ["search", anchor, "--profile", "smoke", "--runs-root", str(runs), "--top", "3"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 4
    assert lines[1].startswith("  1. ") and lines[1].endswith(definition)
    base = cli.main(
        ["search", anchor, "--profile", "smoke", "--runs-root", str(runs), "--model", "base"]
    )
    assert base == 0 and capsys.readouterr().out.startswith("base, ")


def test_evaluation_notebook_writes_the_metrics_contract(smoke_run):
    from cardioembed.training.recipe import main_run

    out = smoke_run / "runs" / "smoke" / "evaluation"
    metrics = pd.read_csv(out / "metrics.csv")
    gains = pd.read_csv(out / "gains.csv")
    assert list(metrics.columns) == [
        "suite",
        "model",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n_queries",
    ]
    assert list(gains.columns) == ["suite", "model", "metric", "gain", "ci_low", "ci_high"]
    trained = main_run(smoke_run / "runs" / "smoke" / "models").name
    assert {"bm25", "base", trained} <= set(metrics["model"])
    assert set(metrics["suite"]) == {
        "hpo-cardio-name",
        "hpo-cardio-synonym",
        "icd10cm-ch9-inclusion",
        "pairs-heldout",
        "hpo-noncardio-name",
        "icd10cm-other-inclusion",
        "hpo-cardio-similarity",
        "hpo-noncardio-similarity",
    }
    ok = metrics.dropna(subset=["value"])
    assert ((ok["ci_low"] <= ok["value"] + 1e-9) & (ok["value"] <= ok["ci_high"] + 1e-9)).all()
    assert "cardio-specific:hpo-name" in set(gains["suite"])
    assert not (metrics["model"].eq("bm25") & metrics["metric"].eq("spearman")).any()


def test_evaluation_notebook_skips_an_mteb_task_it_cannot_load_at_once_with_the_reason(
    smoke_run,
):
    """Offline (the tests set HF_HUB_OFFLINE=1), a public MTEB task whose dataset is not in
    the local cache is skipped at once, with the reason; one in the cache is scored."""
    from io import StringIO

    cells = json.loads((smoke_run / "executed" / "05_evaluate.ipynb").read_text())["cells"]
    (cell,) = [c for c in cells if "pd.DataFrame(mteb_public(" in "".join(c["source"])]
    assert cell["metadata"]["papermill"]["duration"] < 60  # no waiting on the network
    outputs = [o["data"] for o in cell["outputs"] if "text/html" in o.get("data", {})]
    table = pd.read_html(StringIO("".join(outputs[0]["text/html"])))[0].set_index("task")
    assert list(table.index) == ["BIOSSES", "SciFact"]  # the default mteb_tasks
    assert table.loc["BIOSSES", "metric"] == "cosine_spearman"
    for row in table.itertuples():
        if row.status == "skipped":  # the dataset is not in a local cache
            assert "could not be loaded" in row.reason and "HF_HUB_OFFLINE=1" in row.reason
        else:
            assert row.status == "ok" and -1 <= float(row.value) <= 1


@pytest.mark.parametrize(
    "sweep, settings", [("pooling", {"eos", "mean"}), ("temperature", {0.05, 0.1})]
)
def test_ablation_notebooks_write_the_sweep_contract(smoke_run, sweep, settings):
    folder = smoke_run / "runs" / "smoke" / "ablations"
    table = pd.read_csv(folder / sweep / f"{sweep}.csv")
    assert list(table.columns) == [
        "setting",
        "seed",
        "steps",
        "suite",
        "metric",
        "value",
        "ci_low",
        "ci_high",
    ]
    found = set(table["setting"]) if sweep == "pooling" else set(table["setting"].astype(float))
    assert found == settings
    assert set(table["seed"]) == {42, 43}
    # every point trained the recipe's full length: the smoke recipe's 3 steps
    assert set(table["steps"]) == {3}
    ok = table.dropna(subset=["value"])
    assert ((ok["ci_low"] <= ok["value"] + 1e-9) & (ok["value"] <= ok["ci_high"] + 1e-9)).all()
    assert json.loads((folder / sweep / "manifest.json").read_text())["kind"] == "ablation-sweep"


def test_the_point_shared_by_both_sweeps_is_trained_once(smoke_run):
    points = pd.read_csv(smoke_run / "runs" / "smoke" / "ablations" / "temperature" / "points.csv")
    shared = points[points["setting"].astype(float) == 0.05]
    assert len(shared) and (shared["status"] == "loaded").all()


def test_the_headline_numbers_reuse_every_run_of_the_main_recipe(smoke_run):
    """Notebook 05 reports its headline numbers for every seed of the main recipe: the main
    run (notebook 02's key is the sweeps' point of the same seed) and the sweeps' runs are
    reused, and notebook 06 measures the leakage inflation on the same seeds."""
    from cardioembed.training.recipe import main_run

    runs = smoke_run / "runs" / "smoke"
    seeds = pd.read_csv(runs / "seeds" / "runs.csv")
    assert list(seeds["seed"]) == [42, 43, 44]
    main = main_run(runs / "models").name
    assert seeds.loc[seeds["seed"] == 42, "run_name"].item() == main
    pooling = pd.read_csv(runs / "ablations" / "pooling" / "points.csv")
    assert pooling.loc[pooling["run_name"] == main, "status"].tolist() == ["loaded"]
    assert set(seeds["run_name"]) & set(pooling["run_name"]) >= {main}
    gains = pd.read_csv(runs / "seeds" / "gains.csv")
    assert {"seed 42", "seed 43", "seed 44", "mean over seeds"} <= set(gains["model"])
    assert "cardio-specific:hpo-name" in set(gains["suite"])
    leakage = pd.read_csv(runs / "leakage" / "seeds.csv")
    assert sorted(set(leakage["seed"])) == [42, 43, 44]


def test_executed_notebooks_carry_no_progress_bars_or_network_retries(smoke_run):
    """What the book renders: a progress bar or a hub retry log in a cell's output is noise
    (and a retry means minutes lost waiting on a network that is not there)."""
    noise = re.compile(r"it/s\]|\d+%\|.*\||Retrying in \d+s")
    for path in sorted((smoke_run / "executed").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for index, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                html = "".join(output.get("data", {}).get("text/html", ""))
                assert "<progress" not in html, f"{path.name} cell {index}: a progress bar"
                if output.get("output_type") == "stream":
                    text = "".join(output.get("text", ""))
                    assert not noise.search(text), f"{path.name} cell {index}: {text[:200]!r}"


def test_leakage_notebook_measures_both_splits(smoke_run):
    from cardioembed.curation.corpus import load_corpus
    from cardioembed.training.recipe import Recipe, main_run

    folder = smoke_run / "runs" / "smoke" / "leakage"
    table = pd.read_csv(folder / "leakage.csv")
    columns = ["split", "model", "metric", "value", "ci_low", "ci_high", "queries", "steps"]
    assert list(table.columns) == columns
    assert set(table["split"]) == {"random", "group", "random - group"}
    # the untrained models (BM25 and any extra_models) take both tests too
    assert set(table["model"]) == {"base", "trained", "gain", "bm25"}
    assert set(table["steps"]) == {3} and table["queries"].nunique() == 1
    assert (
        (table["ci_low"] <= table["value"] + 1e-9) & (table["value"] <= table["ci_high"] + 1e-9)
    ).all()
    overlap = pd.read_csv(folder / "overlap.csv", index_col=0)
    random_split, group_split = overlap.columns
    runs = smoke_run / "runs" / "smoke"
    recipe = Recipe.of_run(main_run(runs / "models"))
    pairs = recipe.training_pairs(load_corpus(runs / "corpus")["pairs"])
    n = len(pairs)  # the random split cuts a permutation at 85% and 95%, as the paper
    assert overlap.loc["test_rows", random_split] == n - round(0.85 * n) - round(0.10 * n)
    assert overlap.loc["test_rows", group_split] == (pairs["split"] == "test").sum()
    assert overlap.loc["shared_groups", random_split] > 0  # a split by pair leaks
    assert overlap.loc["shared_groups", group_split] == 0
    assert overlap.loc["test_texts_with_train_near_duplicate", group_split] == 0


def test_transfer_notebook_scores_each_source_on_the_other(smoke_run):
    table = pd.read_csv(smoke_run / "runs" / "smoke" / "transfer" / "transfer.csv")
    assert list(table.columns) == [
        "trained_on",
        "suite",
        "suite_source",
        "seen_in_training",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "gain",
        "gain_low",
        "gain_high",
        "steps",
    ]
    assert set(table["trained_on"]) == {"base", "both", "hpo only", "icd10cm only"}
    assert set(table["suite"]) == {"hpo-cardio-name", "hpo-cardio-synonym", "icd10cm-ch9-inclusion"}
    unseen = table[~table["seen_in_training"]]
    assert set(zip(unseen["trained_on"], unseen["suite_source"], strict=True)) >= {
        ("hpo only", "icd10cm"),
        ("icd10cm only", "hpo"),
    }
    trained = table[table["trained_on"] != "base"]
    assert set(trained.loc[trained["trained_on"] == "both", "steps"]) == {3}
    assert (trained["steps"] > 0).all()
    assert (
        (trained["gain_low"] <= trained["gain"] + 1e-9)
        & (trained["gain"] <= trained["gain_high"] + 1e-9)
    ).all()
