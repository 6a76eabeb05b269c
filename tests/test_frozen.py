"""The frozen lower layers shared across runs: same embeddings, same gradients, model intact."""

from __future__ import annotations

import logging

import pytest
import torch
from test_runner import unwritable

from cardioembed.profiles import notebook_values
from cardioembed.training import frozen
from cardioembed.training.frozen import frozen_lower_layers
from cardioembed.training.recipe import Recipe

TEXTS = [
    "atrial fibrillation",
    "An irregular heart rhythm that starts in the upper chambers of the heart.",
    "Ventricular septal defect",
    "A hole in the wall between the two lower chambers of the heart.",
]


def adapted(top_layers: int = 2, pooling: str = "mean"):
    recipe = Recipe.from_parameters(
        {**notebook_values("02"), "lora_top_layers": top_layers, "pooling": pooling}
    )
    model = recipe.load_base()
    model.add_adapter(recipe.lora_config(model))
    with torch.no_grad():  # a trained adapter: B is zero at initialisation
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return recipe, model.eval()


@pytest.fixture(autouse=True)
def empty_store():
    frozen.clear()
    yield
    frozen.clear()


def test_embeddings_are_those_of_the_whole_model_alone_and_in_any_batch():
    recipe, model = adapted()
    n_frozen = recipe.frozen_layers(model)
    assert n_frozen == 4  # MiniLM has 6 layers, the adapter is on the last 2
    whole = model.encode(TEXTS, convert_to_tensor=True)
    with frozen_lower_layers(model, n_frozen) as counters:
        first = model.encode(TEXTS, convert_to_tensor=True)
        assert counters == {"computed": 4, "reused": 0}
        # read back from memory: each text alone, then in a batch with other padding
        alone = torch.cat([model.encode([t], convert_to_tensor=True) for t in TEXTS])
        mixed = model.encode([*TEXTS[::-1], "heart"], convert_to_tensor=True)[:4].flip(0)
        assert counters["reused"] == 8 and counters["computed"] == 5
    for other in (first, alone, mixed):
        assert (other - whole).abs().max().item() < 1e-5


def test_the_loss_and_its_gradients_are_those_of_the_whole_model():
    recipe, model = adapted()
    loss = recipe.loss(model)
    features = [model.tokenize(TEXTS[0::2]), model.tokenize(TEXTS[1::2])]

    def gradients():
        model.zero_grad()
        value = loss(features, labels=None)
        value.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return value.item(), grads

    whole_loss, whole = gradients()
    with frozen_lower_layers(model, recipe.frozen_layers(model)):
        gradients()  # fills the store
        shared_loss, shared = gradients()  # reads it
    assert shared_loss == pytest.approx(whole_loss, abs=1e-5)
    assert whole.keys() == shared.keys() and all("layer.4" in n or "layer.5" in n for n in whole)
    for name in whole:
        assert torch.allclose(whole[name], shared[name], atol=1e-5), name


def test_the_model_is_left_as_it_was():
    recipe, model = adapted()
    before = (repr(model), [n for n, _ in model.named_parameters()])
    with frozen_lower_layers(model, recipe.frozen_layers(model)):
        assert (repr(model), [n for n, _ in model.named_parameters()]) == before
    layers = model.transformers_model.encoder.layer
    assert all("forward" not in vars(layer) for layer in layers)  # the stand-ins are gone
    assert not model.transformers_model.embeddings._forward_pre_hooks


def test_the_frozen_part_runs_without_dropout_in_training_mode():
    recipe, model = adapted()
    model.train()
    trunk = model.transformers_model.encoder.layer[3]
    outputs = []
    trunk.register_forward_hook(lambda module, args, output: outputs.append(output))
    with frozen_lower_layers(model, recipe.frozen_layers(model)):
        features = model.tokenize(TEXTS)
        model(features)
        frozen.clear()  # computed again, not read back
        model(features)
    assert len(outputs) == 2 and torch.equal(outputs[0], outputs[1])


def test_nothing_is_shared_where_it_would_not_be_exact():
    recipe, model = adapted(top_layers=0)
    assert recipe.frozen_layers(model) == 0
    with frozen_lower_layers(model, 0) as counters:
        model.encode(TEXTS)
    assert counters == {"computed": 0, "reused": 0}
    _, left_padded = adapted()
    left_padded.tokenizer.padding_side = "left"  # positions would shift with the padding
    with frozen_lower_layers(left_padded, 4) as counters:
        left_padded.encode(TEXTS)
    assert counters == {"computed": 0, "reused": 0}


def test_another_process_reads_the_stored_states_from_disk(tmp_path, caplog):
    recipe, model = adapted()
    whole = model.encode(TEXTS, convert_to_tensor=True)
    with frozen_lower_layers(model, 4, tmp_path):
        model.encode(TEXTS)
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1
    frozen.clear()  # what a new process starts with
    with frozen_lower_layers(model, 4, tmp_path) as counters:
        again = model.encode(TEXTS, convert_to_tensor=True)
    assert counters == {"computed": 0, "reused": 4}
    assert (again - whole).abs().max().item() < 1e-5
    files[0].write_bytes(b"damaged")
    frozen.clear()
    with frozen_lower_layers(model, 4, tmp_path) as counters:
        model.encode(TEXTS)
    assert counters == {"computed": 4, "reused": 0}  # recomputed, and written again
    assert f"the cache {tmp_path} cannot be used" in caplog.text
    _, other = adapted(top_layers=3)  # another depth: another file
    with frozen_lower_layers(other, 3, tmp_path):
        other.encode(TEXTS)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_an_unwritable_store_is_one_warning_and_the_states_are_computed(tmp_path, caplog):
    _, model = adapted()
    whole = model.encode(TEXTS, convert_to_tensor=True)
    with unwritable(tmp_path / "store") as store:
        for _ in range(2):
            frozen.clear()
            with frozen_lower_layers(model, 4, store) as counters:
                got = model.encode(TEXTS, convert_to_tensor=True)
    assert counters == {"computed": 4, "reused": 0} and (got - whole).abs().max() < 1e-5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"the cache {store} cannot be used" in warnings[0]


def test_a_store_of_other_weights_is_never_read(tmp_path):
    """The key is the frozen weights' content: one changed weight, another store; a file
    of other weights put under this key's name is recomputed, not trusted."""
    _, model = adapted()
    with frozen_lower_layers(model, 4, tmp_path):
        model.encode(TEXTS)
    (mine,) = tmp_path.glob("*.pt")
    _, changed = adapted()
    with torch.no_grad():
        changed.transformers_model.encoder.layer[1].output.dense.weight[0, 0] += 1e-3
    frozen.clear()
    foreign = tmp_path / "foreign"
    with frozen_lower_layers(changed, 4, foreign) as counters:
        expected = changed.encode(TEXTS, convert_to_tensor=True)
    assert counters["computed"] == 4
    (theirs,) = foreign.glob("*.pt")
    assert theirs.name != mine.name
    mine.write_bytes(theirs.read_bytes())  # the other weights' states under this name
    frozen.clear()
    with frozen_lower_layers(model, 4, tmp_path) as counters:
        got = model.encode(TEXTS, convert_to_tensor=True)
    assert counters == {"computed": 4, "reused": 0}
    assert (got - model.encode(TEXTS, convert_to_tensor=True)).abs().max() < 1e-5
    assert (got - expected).abs().max() > 1e-6


@pytest.mark.parametrize("reentrant", [True, False])
def test_gradients_with_gradient_checkpointing_are_those_of_the_whole_model(reentrant):
    recipe, model = adapted()
    model.train()
    for module in model.modules():  # the comparison needs no dropout noise
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    hf = model.transformers_model
    hf.activation_checkpointing_enable({"use_reentrant": reentrant})
    hf.enable_input_require_grads()  # what the trainer does with activation_checkpointing
    loss = recipe.loss(model)
    features = [model.tokenize(TEXTS[0::2]), model.tokenize(TEXTS[1::2])]

    def gradients():
        model.zero_grad()
        loss(features, labels=None).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    whole = gradients()
    with frozen_lower_layers(model, recipe.frozen_layers(model)):
        gradients()  # fills the store
        shared = gradients()  # reads it
    assert whole.keys() == shared.keys()
    for name in whole:
        assert whole[name].abs().max() > 0, name
        assert torch.allclose(whole[name], shared[name], atol=1e-5), name


def test_a_store_written_in_the_earlier_format_is_recomputed_without_a_warning(tmp_path, caplog):
    """An earlier version saved one joined tensor of states under the same key."""
    _, model = adapted()
    with frozen_lower_layers(model, 4, tmp_path):
        model.encode(TEXTS)
    (path,) = tmp_path.glob("*.pt")
    saved = torch.load(path, weights_only=True)
    keys = list(saved["states"])
    states = [saved["states"][k] for k in keys]
    lengths = torch.tensor([s.shape[0] for s in states])
    earlier = {"key": saved["key"], "keys": keys, "lengths": lengths, "states": torch.cat(states)}
    torch.save(earlier, path)
    frozen.clear()
    with frozen_lower_layers(model, 4, tmp_path) as counters:
        model.encode(TEXTS)
    assert counters == {"computed": 4, "reused": 0}
    assert "cannot be used" not in caplog.text
    assert isinstance(torch.load(path, weights_only=True)["states"], dict)  # written anew
