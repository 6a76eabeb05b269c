"""The GPU path's weights in low precision, run for real on the CPU: base weights in
bfloat16 (what `dtype="auto"` picks on a GPU) or in 8 bits (`quantization="int8"`, as the
paper's base), LoRA adapters in float32, a few steps of training, the folder saved and
reloaded by plain sentence-transformers. Qwen3 (the paper's architecture, tiny, random
weights) and SmolLM2 (a real decoder) stand in for Qwen3-Embedding-8B."""

import math

import numpy as np
import pytest
import torch
from conftest import write_tiny_qwen3
from sentence_transformers import SentenceTransformer
from test_training import make_pairs

from cardioembed.profiles import notebook_values
from cardioembed.training.recipe import Recipe, train

TEXTS = ["cardiac term 3 of kind 3", "a sentence about the aortic valve and its leaflets"]


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory):
    return write_tiny_qwen3(tmp_path_factory.mktemp("qwen3"), causal=False, layers=2, width=64)


def train_and_reload(base: str, tmp_path, **changes):
    recipe = Recipe.from_parameters(
        {
            **notebook_values("02"),
            "base_model": base,
            "pooling": "eos",
            "max_seq_length": 24,
            "lora_target_modules": "all-linear",
            "lora_top_layers": 0,
            "lora_dropout": 0.0,
            "batch_size": 4,
            "max_steps": 3,
            "eval_steps": 100,
            "warmup_ratio": 0.0,
            **changes,
        }
    )
    result = train(make_pairs(12, 0), recipe, tmp_path / "run", validate=False)
    assert result.finished and result.global_step == 3
    losses = result.history["loss"].dropna()
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    named = dict(result.model.named_parameters())
    lora = {n: p for n, p in named.items() if "lora_" in n}
    # only the adapter learns, in float32; LoRA's B starts at zero and has moved
    assert lora and all(p.dtype == torch.float32 and p.requires_grad for p in lora.values())
    assert not any(p.requires_grad for n, p in named.items() if n not in lora)
    assert any(p.abs().max() > 0 for n, p in lora.items() if "lora_B" in n)
    trained = result.model.encode(TEXTS, convert_to_numpy=True).astype(np.float32)
    reloaded = SentenceTransformer(str(tmp_path / "run"))  # as a user loads it: float32
    again = reloaded.encode(TEXTS, convert_to_numpy=True).astype(np.float32)
    assert np.isfinite(again).all()
    return result.model, np.abs(again - trained).max()


@pytest.mark.slow
@pytest.mark.parametrize("base", ["qwen3", "smollm2"])
def test_bfloat16_base_with_float32_adapters_trains_saves_and_reloads(base, qwen3_dir, tmp_path):
    model, difference = train_and_reload(
        str(qwen3_dir) if base == "qwen3" else "smollm2", tmp_path, dtype="bfloat16"
    )
    frozen = [p for n, p in model.named_parameters() if "lora_" not in n]
    assert all(p.dtype == torch.bfloat16 for p in frozen)
    # the embeddings come back within bfloat16's precision (about 3 significant digits)
    assert difference < 2e-2


@pytest.mark.slow
def test_int8_base_with_float32_adapters_trains_saves_and_reloads(qwen3_dir, tmp_path):
    import bitsandbytes as bnb

    model, difference = train_and_reload(
        str(qwen3_dir), tmp_path, dtype="float32", quantization="int8"
    )
    linear = [m for n, m in model.named_modules() if n.endswith("q_proj.base_layer")]
    assert linear and all(isinstance(m, bnb.nn.Linear8bitLt) for m in linear)
    # reloaded in float32, not 8 bits: the same embeddings within 8-bit rounding
    assert difference < 5e-2
