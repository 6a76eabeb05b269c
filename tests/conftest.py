import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Nothing is ever fetched from a model hub: tests must pass offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A finished smoke run (a folder with executed/ and runs/) to reuse instead of executing
# the notebooks again, e.g. while working on the book's tests.
SMOKE_RUN_ENV = "CARDIOEMBED_SMOKE_RUN"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """Every notebook executed through the runner with the smoke profile, once per test
    session: `<folder>/executed/*.ipynb` and `<folder>/runs/smoke/`."""
    if os.environ.get(SMOKE_RUN_ENV):
        return Path(os.environ[SMOKE_RUN_ENV])
    from cardioembed import cli

    out = tmp_path_factory.mktemp("smoke")
    code = cli.main(
        [
            "run",
            "--profile",
            "smoke",
            "-p",
            f"runs_root={out / 'runs'}",
            "--output-dir",
            str(out / "executed"),
        ]
    )
    assert code == 0
    return out


# A finished rehearsal run (a folder with executed/ and runs/) to reuse.
REHEARSAL_RUN_ENV = "CARDIOEMBED_REHEARSAL_RUN"


@pytest.fixture(scope="session")
def rehearsal_run(tmp_path_factory) -> Path:
    """Every notebook executed through the runner with the rehearsal profile (the paper's
    path on a CPU), once per test session: `<folder>/executed/` and `<folder>/runs/`."""
    if os.environ.get(REHEARSAL_RUN_ENV):
        return Path(os.environ[REHEARSAL_RUN_ENV])
    from cardioembed import cli

    out = tmp_path_factory.mktemp("rehearsal")
    code = cli.main(
        [
            "run",
            "--profile",
            "rehearsal",
            "-p",
            f"runs_root={out / 'runs'}",
            "--output-dir",
            str(out / "executed"),
        ]
    )
    assert code == 0
    return out
