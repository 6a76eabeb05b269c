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
    corpus = smoke_run / "runs" / "smoke" / "corpus"
    pairs = pd.read_parquet(corpus / "pairs.parquet")
    assert set(pairs["split"]) == {"train", "validation", "test"}
    assert (pairs.groupby("group")["split"].nunique() == 1).all()
    assert len(pd.read_parquet(corpus / "audit.parquet")) == 0
    assert (pairs["anchor"].str.len() > 0).all() and (pairs["positive"].str.len() > 0).all()
    assert "paraphrase" in set(pairs["kind"])  # smoke exercises the paper's strategy
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["params"]["max_items_per_source"] == 300


def test_training_notebook_saved_a_reloadable_main_model(smoke_run):
    from cardioembed.training import MODEL_FILE, load_history, main_run

    models = smoke_run / "runs" / "smoke" / "models"
    folder = main_run(models)
    record = json.loads((folder / MODEL_FILE).read_text())
    assert record["base"] == "minilm"  # portable, never a site-packages path
    assert (folder / "adapter" / "adapter_model.safetensors").is_file()
    assert record["global_step"] == 3 == len(load_history(folder).dropna(subset=["loss"]))
    assert json.loads((folder / "manifest.json").read_text())["kind"] == "lora-adapter"


def test_evaluation_notebook_writes_the_metrics_contract(smoke_run):
    from cardioembed.training import main_run

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


@pytest.mark.parametrize(
    "sweep, settings", [("pooling", {"eos", "mean"}), ("temperature", {0.05, 0.1})]
)
def test_ablation_notebooks_write_the_sweep_contract(smoke_run, sweep, settings):
    folder = smoke_run / "runs" / "smoke" / "ablations"
    table = pd.read_csv(folder / f"{sweep}.csv")
    assert list(table.columns) == [
        "setting",
        "seed",
        "suite",
        "metric",
        "value",
        "ci_low",
        "ci_high",
    ]
    found = set(table["setting"]) if sweep == "pooling" else set(table["setting"].astype(float))
    assert found == settings
    assert set(table["seed"]) == {42, 43}
    ok = table.dropna(subset=["value"])
    assert ((ok["ci_low"] <= ok["value"] + 1e-9) & (ok["value"] <= ok["ci_high"] + 1e-9)).all()
    assert json.loads((folder / f"{sweep}.manifest.json").read_text())["kind"] == "ablation-sweep"


def test_the_point_shared_by_both_sweeps_is_trained_once(smoke_run):
    points = pd.read_csv(smoke_run / "runs" / "smoke" / "ablations" / "temperature" / "points.csv")
    shared = points[points["setting"].astype(float) == 0.05]
    assert len(shared) and (shared["status"] == "loaded").all()


def test_executed_notebooks_carry_no_progress_bars_or_network_retries(smoke_run):
    """What the book renders: a progress bar or a hub retry log in a cell's output is noise
    (and a retry means minutes lost waiting on a network that is not there)."""
    noise = re.compile(r"it/s\]|\d+%\|.*\||Retrying in \d+s")
    for path in sorted((smoke_run / "executed").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for index, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream":
                    text = "".join(output.get("text", ""))
                    assert not noise.search(text), f"{path.name} cell {index}: {text[:200]!r}"
