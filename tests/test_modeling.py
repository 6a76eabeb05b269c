"""Embedding models: pooling, padding, prompts, LoRA targets, hub failures."""

from __future__ import annotations

import numpy as np
import pytest

from cardioembed.errors import InputError, ParameterError
from cardioembed.modeling import (
    LoraSpec,
    ModelSpec,
    add_lora,
    build_model,
    count_parameters,
    lora_targets,
    model_type,
    portable_base,
)

SHORT = "Atrial fibrillation."
LONG = (
    "Atrial fibrillation is a supraventricular tachyarrhythmia with uncoordinated atrial "
    "activation and consequently ineffective atrial contraction, often in older patients."
)


@pytest.fixture(scope="module")
def models():
    return {}


def _model(models, pooling, instruction=None):
    key = (pooling, instruction)
    if key not in models:
        models[key] = build_model(
            ModelSpec("minilm", pooling=pooling, max_seq_length=32, query_instruction=instruction)
        )
    return models[key]


@pytest.mark.parametrize("pooling", ["eos", "mean", "cls"])
def test_embedding_alone_equals_in_batch(models, pooling):
    model = _model(models, pooling)
    alone = model.encode([SHORT], convert_to_numpy=True)[0]
    batch = model.encode([LONG, SHORT, "Heart."], convert_to_numpy=True)
    np.testing.assert_allclose(alone, batch[1], atol=1e-5)
    # the long text really was padded against: it is longer than the short one
    assert len(model.tokenizer(LONG)["input_ids"]) > len(model.tokenizer(SHORT)["input_ids"])


def test_pooling_modes_differ_and_spec_round_trips(models):
    eos = _model(models, "eos").encode([SHORT])[0]
    mean = _model(models, "mean").encode([SHORT])[0]
    assert np.abs(eos - mean).max() > 1e-3
    spec = ModelSpec("minilm", pooling="eos", max_seq_length=32, query_instruction="x")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert models[("eos", None)][1].pooling_mode == "lasttoken"


def test_eos_padding_side_for_bert(models):
    # An absolute-position encoder (BERT) keeps right padding: left padding would shift
    # its positions. Last-token pooling still takes the last real token.
    model = _model(models, "eos")
    assert model.tokenizer.padding_side == "right"
    features = model.tokenize([SHORT, LONG])
    mask = features["attention_mask"]
    assert mask[0, 0] == 1 and mask[0, -1] == 0


def test_eos_padding_rule_by_position_encoding():
    """Rotary (decoder) models such as Qwen3 and Llama are shift-invariant and pad on the
    left under eos pooling; learned absolute positions (BERT) are not. The decoder itself is
    checked in the slow SmolLM2 test."""
    from transformers import LlamaConfig, LlamaModel

    import cardioembed.modeling as modeling

    tiny = LlamaModel(
        LlamaConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
        )
    )
    assert not modeling.has_absolute_positions(tiny)
    assert modeling.has_absolute_positions(_bert())


def _bert():
    from transformers import BertConfig, BertModel

    return BertModel(
        BertConfig(
            vocab_size=100,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )


def test_query_instruction_applies_to_queries_only(models):
    model = _model(models, "mean", "Given a cardiology term, retrieve its definition")
    assert model.prompts["query"] == (
        "Instruct: Given a cardiology term, retrieve its definition\nQuery:"
    )
    plain = _model(models, "mean")
    doc = model.encode([SHORT])[0]
    query = model.encode([SHORT], prompt_name="query")[0]
    np.testing.assert_allclose(doc, plain.encode([SHORT])[0], atol=1e-6)
    assert np.abs(doc - query).max() > 1e-3
    explicit = plain.encode([model.prompts["query"] + SHORT])[0]
    np.testing.assert_allclose(query, explicit, atol=1e-5)


def test_lora_targets_per_architecture():
    assert lora_targets("bert") == ("query", "key", "value", "dense")
    full = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    for name in ("qwen2", "qwen3", "llama", "Qwen3"):
        assert lora_targets(name) == full
    with pytest.raises(ParameterError):
        lora_targets("t5")


def test_add_lora_trains_few_parameters():
    model = build_model(ModelSpec("minilm", pooling="mean", max_seq_length=32))
    _, total_before = count_parameters(model)
    add_lora(model, LoraSpec(rank=4, alpha=8, target_modules="auto"))
    trainable, total = count_parameters(model)
    assert model_type(model) == "bert"
    assert 0 < trainable < total
    assert total == total_before + trainable
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n for n in names)
    assert any(".query." in n for n in names) and any(".dense." in n for n in names)
    # LoRA B starts at zero: the embedding does not move until trained
    assert LoraSpec.from_dict(LoraSpec(target_modules=("q", "v")).to_dict()).target_modules == (
        "q",
        "v",
    )


def test_bad_specs_raise():
    with pytest.raises(ParameterError):
        ModelSpec("minilm", pooling="max")
    with pytest.raises(ParameterError):
        ModelSpec("minilm", dtype="float16")
    with pytest.raises(ParameterError):
        LoraSpec(rank=0)
    with pytest.raises(InputError):
        build_model(ModelSpec("/no/such/folder", max_seq_length=32))


def test_portable_base_never_records_site_packages():
    from cardioembed.modeling import minilm_dir

    assert portable_base("minilm") == "minilm"
    assert portable_base(str(minilm_dir())) == "minilm"
    assert portable_base("Qwen/Qwen3-Embedding-8B") == "Qwen/Qwen3-Embedding-8B"


def test_hub_unreachable_raises_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(InputError) as info:
        build_model(ModelSpec("Qwen/Qwen3-Embedding-0.6B-not-cached", pooling="eos"))
    message = str(info.value)
    assert "base_model=/path/to/" in message
    assert "hf download" in message


@pytest.mark.slow
def test_smollm2_decoder_eos_left_padding(tmp_path_factory):
    model = build_model(ModelSpec("smollm2", pooling="eos", max_seq_length=32))
    assert model.tokenizer.padding_side == "left"
    assert model.tokenizer.pad_token is not None
    assert model_type(model) == "llama"
    features = model.tokenize([SHORT, LONG])
    assert features["attention_mask"][0, 0] == 0 and features["attention_mask"][0, -1] == 1
    alone = model.encode([SHORT])[0]
    batch = model.encode([LONG, SHORT])[1]
    np.testing.assert_allclose(alone, batch, atol=1e-4)


def test_lora_on_top_layers_only_adapts_the_last_layers():
    import re

    model = build_model(ModelSpec("minilm", pooling="mean", max_seq_length=32))
    add_lora(model, LoraSpec(rank=4, alpha=8, top_layers=2))
    layers = {
        int(m.group(1))
        for n, p in model.named_parameters()
        if p.requires_grad
        for m in [re.search(r"\.layer\.(\d+)\.", n)]
        if m
    }
    n_layers = model.transformers_model.config.num_hidden_layers
    assert layers == {n_layers - 2, n_layers - 1}
    with pytest.raises(ParameterError, match="lora_top_layers"):
        add_lora(build_model(ModelSpec("minilm", max_seq_length=32)), LoraSpec(top_layers=99))
    with pytest.raises(ParameterError, match="lora_top_layers"):
        LoraSpec(top_layers=-1)
