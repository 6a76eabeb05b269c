import json
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


def run_cells(notebook: str, cell_ids, namespace: dict) -> dict:
    """Execute code cells of `notebooks/<notebook>.ipynb`, found by their ids, in order, in
    `namespace` (the names the notebook's earlier cells would have defined)."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    sources = {cell.get("id"): "".join(cell["source"]) for cell in cells}
    for cell_id in cell_ids:
        exec(compile(sources[cell_id], f"{notebook}.ipynb:{cell_id}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


def _executed_run(tmp_path_factory, profile: str, reuse_env: str) -> Path:
    """Every notebook executed through the runner with `profile`, as a user would:
    `<folder>/executed/*.ipynb` and `<folder>/runs/<profile>/`; $`reuse_env` names a
    finished one to reuse instead."""
    if os.environ.get(reuse_env):
        return Path(os.environ[reuse_env])
    from cardioembed import cli

    out = tmp_path_factory.mktemp(profile)
    command = ["run", "--profile", profile, "-p", f"runs_root={out / 'runs'}"]
    assert cli.main([*command, "--output-dir", str(out / "executed")]) == 0
    return out


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The smoke profile, once per test session."""
    return _executed_run(tmp_path_factory, "smoke", SMOKE_RUN_ENV)


# A finished rehearsal run (a folder with executed/ and runs/) to reuse.
REHEARSAL_RUN_ENV = "CARDIOEMBED_REHEARSAL_RUN"


@pytest.fixture(scope="session")
def rehearsal_run(tmp_path_factory) -> Path:
    """The rehearsal profile (the paper's path on a CPU), once per test session."""
    return _executed_run(tmp_path_factory, "rehearsal", REHEARSAL_RUN_ENV)


def write_tiny_qwen3(folder: Path, *, causal: bool, layers: int, width: int) -> Path:
    """A Qwen3 model folder with random weights (no download) and SmolLM2's tokenizer:
    the paper's architecture at a size a CPU test can afford."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    from cardioembed.models import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_dir()))
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=layers,
        num_attention_heads=width // 16,
        num_key_value_heads=max(1, width // 32),
        head_dim=16,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    (Qwen3ForCausalLM if causal else Qwen3Model)(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
