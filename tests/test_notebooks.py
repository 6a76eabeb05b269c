"""Every notebook, executed through the runner with the smoke profile, as a user would."""

import json

import pandas as pd
import pytest

from cardioembed import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    code = cli.main(["run", "--profile", "smoke", "-p", f"runs_root={out / 'runs'}",
                     "--output-dir", str(out / "executed")])
    assert code == 0
    return out


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
