import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Nothing is ever fetched from a model hub: tests must pass offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT
