"""Embedding models: pooling, padding, prompts, LoRA targets, hub failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cardioembed.errors import InputError, ParameterError
from cardioembed.models import (
    MINILM_HUB_ID,
    load_model,
    load_resolved,
    model_identity,
    resolve_base,
)
from cardioembed.profiles import notebook_values
from cardioembed.training.recipe import Recipe


def _recipe(**changes) -> Recipe:
    return Recipe.from_parameters({**notebook_values("02"), **changes})


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
        models[key] = _recipe(pooling=pooling, query_instruction=instruction or "").load_base()
    return models[key]


@pytest.mark.parametrize("pooling", ["eos", "mean", "cls"])
def test_embedding_alone_equals_in_batch(models, pooling):
    model = _model(models, pooling)
    alone = model.encode([SHORT], convert_to_numpy=True)[0]
    batch = model.encode([LONG, SHORT, "Heart."], convert_to_numpy=True)
    np.testing.assert_allclose(alone, batch[1], atol=1e-5)
    # the long text really was padded against: it is longer than the short one
    assert len(model.tokenizer(LONG)["input_ids"]) > len(model.tokenizer(SHORT)["input_ids"])


def test_pooling_modes_differ(models):
    eos = _model(models, "eos").encode([SHORT])[0]
    mean = _model(models, "mean").encode([SHORT])[0]
    assert np.abs(eos - mean).max() > 1e-3
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

    import cardioembed.models as modeling

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


def test_lora_all_linear_adapts_attention_and_feed_forward_only():
    """peft's "all-linear" on MiniLM: query, key, value and every dense layer of each
    transformer layer; never the unused pooler."""
    model = _recipe(pooling="mean").load_base()
    total_before = sum(p.numel() for p in model.parameters())
    model.add_adapter(_recipe(lora_rank=4, lora_alpha=8, lora_top_layers=0).lora_config(model))
    adapter = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    total = sum(p.numel() for p in model.parameters())
    assert 0 < adapter < total and total == total_before + adapter
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all("lora_" in n for n in names)
    for part in (".query.", ".key.", ".value.", ".attention.output.dense.", ".intermediate.dense."):
        assert any(part in n for n in names), part
    assert not any("pooler" in n for n in names)


def test_base_model_is_loaded_and_recorded_by_its_hub_id():
    """The packaged MiniLM is loaded through the local hub cache under its hub id, so a
    saved adapter names its base portably (no path inside a Python installation)."""
    model = _recipe(pooling="mean").load_base()
    assert model.transformers_model.config._name_or_path == MINILM_HUB_ID


def test_bad_parameters_raise():
    with pytest.raises(ParameterError, match="pooling"):
        _recipe(pooling="max")
    with pytest.raises(ParameterError, match="lora_rank"):
        _recipe(lora_rank=0)
    with pytest.raises(ParameterError, match="temperature"):
        _recipe(temperature=0)
    with pytest.raises(InputError):
        _recipe(base_model="/no/such/folder").load_base()


def test_hub_unreachable_raises_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(InputError) as info:
        _recipe(base_model="Qwen/Qwen3-Embedding-0.6B-not-cached", pooling="eos").load_base()
    message = str(info.value)
    assert "base_model=/path/to/" in message
    assert "hf download" in message


@pytest.mark.parametrize(
    "kind, says",
    [
        ("GatedRepoError", "base_model 'org/model' is gated on the hub"),
        ("RepositoryNotFoundError", "base_model 'org/model' is not a model on the Hugging Face"),
    ],
)
def test_a_load_that_fails_on_the_hub_says_what_the_preflight_says(kind, says):
    """transformers wraps the hub's error in an OSError; the message is the preflight's."""
    from unittest import mock

    from huggingface_hub import errors

    def load(location):
        try:
            raise getattr(errors, kind)("refused", response=mock.Mock())
        except errors.HfHubHTTPError as error:
            raise OSError(f"{location} cannot be loaded") from error

    with pytest.raises(InputError, match=says):
        load_resolved("org/model", "base_model", load)


def test_other_hub_failures_name_the_hub_the_error_and_its_first_line():
    """A pinned revision the hub lacks says so; an unforeseen hub failure keeps its type."""
    from unittest import mock

    from huggingface_hub import errors

    def fails_with(error):
        def load(location):
            try:
                raise error
            except OSError as cause:
                raise OSError(f"{location} cannot be loaded\nmore text") from cause

        return load

    missing = errors.RevisionNotFoundError("no such revision", response=mock.Mock())
    with pytest.raises(InputError, match=r"the hub has no revision 'v9' of org/model"):
        load_resolved("org/model@v9", "extra_models['x']", fails_with(missing))
    with pytest.raises(InputError) as info:
        load_resolved("org/model", "base_model", fails_with(OSError("rate limited")))
    assert str(info.value) == (
        "cannot load base_model 'org/model' from the Hugging Face hub "
        "(OSError: org/model cannot be loaded)"
    )


def test_a_baseline_is_loaded_by_pinned_hub_id_or_alias(monkeypatch):
    """`extra_models` takes hub ids pinned to a revision (the paper's baselines) and the
    study's aliases (local stand-ins); offline, a hub id not in the cache is one clear
    error that names the parameter, at once."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    pinned = "thenlper/gte-base@c078288308d8dee004ab72c6191778064285ec0c"
    with pytest.raises(InputError) as info:
        load_model(pinned, parameter="extra_models['GTE-Base']")
    assert "thenlper/gte-base" in str(info.value)
    assert "--revision c078288308d8dee004ab72c6191778064285ec0c" in str(info.value)
    assert "-p 'extra_models={GTE-Base: /path/to/gte-base, ...}'" in str(info.value)
    assert model_identity(pinned) == pinned  # the revision is what a cache key records
    stand_in = load_model("minilm", parameter="extra_models['MiniLM']")
    texts = ["atrial fibrillation", "a fast irregular heartbeat"]
    plain = _recipe(pooling="mean", max_seq_length=256).load_base()
    # the packaged folder has no Normalize module: the same directions
    assert np.allclose(
        stand_in.encode(texts, normalize_embeddings=True), plain.encode(texts), atol=1e-5
    )


@pytest.mark.slow
def test_smollm2_decoder_eos_left_padding(tmp_path_factory):
    model = _recipe(base_model="smollm2", pooling="eos").load_base()
    assert model.tokenizer.padding_side == "left"
    assert model.tokenizer.pad_token is not None
    assert model.transformers_model.config.model_type == "llama"
    features = model.tokenize([SHORT, LONG])
    assert features["attention_mask"][0, 0] == 0 and features["attention_mask"][0, -1] == 1
    alone = model.encode([SHORT])[0]
    batch = model.encode([LONG, SHORT])[1]
    np.testing.assert_allclose(alone, batch, atol=1e-4)


def test_lora_on_top_layers_only_adapts_the_last_layers():
    import re

    model = _recipe(pooling="mean").load_base()
    model.add_adapter(_recipe(lora_rank=4, lora_alpha=8, lora_top_layers=2).lora_config(model))
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
        _recipe(lora_top_layers=99).lora_config(_recipe(pooling="mean").load_base())
    with pytest.raises(ParameterError, match="lora_top_layers"):
        _recipe(lora_top_layers=-1)


@pytest.mark.slow  # converts SmolLM2 again (about 25 s)
def test_smollm2_is_converted_for_this_process_when_the_cache_cannot_be_written(
    tmp_path, monkeypatch, caplog
):
    """A read-only model cache costs a warning and a conversion, never the run."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CARDIOEMBED_CACHE", str(blocker / "cache"))
    with caplog.at_level("WARNING"):
        location, from_hub = resolve_base("smollm2")
    assert not from_hub and (Path(location) / "tokenizer_config.json").is_file()
    assert f"{blocker / 'cache'}" in caplog.text
    assert "set CARDIOEMBED_CACHE to a writable folder" in caplog.text
