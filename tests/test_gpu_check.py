"""The arithmetic of `make gpu-check`'s projection of the paper profile's hours, on
recorded figures (no GPU needed)."""

import importlib.util
from pathlib import Path

import pytest

from cardioembed import paper

spec = importlib.util.spec_from_file_location(
    "gpu_check", Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
)
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)

# A small model measured at 200,000 training tokens/s, 1,000,000 encoding tokens/s and
# 5,000 new paraphrase tokens/s (135M parameters, SmolLM2's size).
SMALL = 1.35e8
MEASURED = dict(train_tps=2e5, encode_tps=1e6, paraphrase_tps=5e3)


def project(**changes):
    figures = {**MEASURED, **changes}
    return gpu_check.paper_hours(
        figures["train_tps"], SMALL, figures["paraphrase_tps"], SMALL, figures["encode_tps"]
    )


def test_the_paper_training_time_comes_back_from_its_own_throughput():
    """At the throughput the paper's 658.6 minutes imply for Qwen3-Embedding-8B, the
    projection gives those minutes back."""
    corpus = paper.CORPUS
    tokens = corpus["train_triplets"] * paper.RECIPE["epochs"] * 3 * corpus["tokens_per_sentence"]
    implied_tps = tokens / (paper.RECIPE["training_minutes"] * 60)
    hours = gpu_check.paper_hours(implied_tps, gpu_check.PAPER_BASE_PARAMETERS, 1.0, 1.0, 1.0)[
        "training"
    ]
    assert hours * 60 == pytest.approx(paper.RECIPE["training_minutes"])


def test_hours_scale_with_parameters_over_throughput():
    base = project()
    assert project(train_tps=4e5)["training"] == pytest.approx(base["training"] / 2)
    assert project(encode_tps=5e5)["encoding"] == pytest.approx(base["encoding"] * 2)
    assert project(paraphrase_tps=1e4)["paraphrasing"] == pytest.approx(base["paraphrasing"] / 2)
    # 106,386 triplets x 2 epochs x 3 texts x 28.4 tokens at 200,000 tokens/s on 135M
    # parameters, scaled to 7.57e9 parameters: about 1.4 hours
    assert base["training"] == pytest.approx(106_386 * 2 * 3 * 28.4 / 2e5 * 7.57e9 / SMALL / 3600)
    assert 1.3 < base["training"] < 1.5
