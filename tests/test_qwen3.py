"""Qwen3, the paper's architecture, at a tiny size with random weights (no download):
what Qwen3-Embedding-8B meets in the recipe. LoRA targets, last-token pooling under left
padding, the query form on queries only, and GradCache with gradient checkpointing
giving the plain loss's values and gradients on a batch with a query prompt."""

import pytest
import torch
from conftest import write_tiny_qwen3

from cardioembed.models import QWEN3_QUERY_TEMPLATE
from cardioembed.profiles import notebook_values
from cardioembed.training.recipe import Recipe

TASK = "Given a cardiology term, retrieve the text that defines it"
QWEN3_LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
N_LAYERS = 2


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory):
    """A Qwen3 model folder (2 layers, width 64, random weights) with SmolLM2's
    tokenizer, as `hf download Qwen/Qwen3-Embedding-8B` would leave one."""
    return write_tiny_qwen3(
        tmp_path_factory.mktemp("qwen3-tiny"), causal=False, layers=N_LAYERS, width=64
    )


def _recipe(folder, **changes) -> Recipe:
    values = {
        **notebook_values("02"),
        "base_model": str(folder),
        "pooling": "eos",
        "max_seq_length": 64,
        "query_instruction": TASK,
        "lora_top_layers": 0,
        "lora_dropout": 0.0,
        "dtype": "float32",
    }
    return Recipe.from_parameters({**values, **changes})


def test_all_linear_lora_targets_every_qwen3_projection(qwen3_dir):
    recipe = _recipe(qwen3_dir)
    model = recipe.load_base()
    assert type(model.transformers_model).__name__ == "Qwen3Model"
    model.add_adapter(recipe.lora_config(model))
    adapted = [
        name
        for name, module in model.transformers_model.named_modules()
        if hasattr(module, "lora_A")
    ]
    assert {name.rsplit(".", 1)[-1] for name in adapted} == QWEN3_LINEAR
    assert len(adapted) == len(QWEN3_LINEAR) * N_LAYERS
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)  # the base stays frozen


def test_last_token_pooling_is_the_same_alone_and_in_a_left_padded_batch(qwen3_dir):
    model = _recipe(qwen3_dir).load_base()
    tokenizer = model.tokenizer
    assert tokenizer.padding_side == "left"
    texts = [
        "atrial flutter",
        "A rapid, regular atrial rhythm at about 300 beats per minute, usually from a "
        "macro-reentrant circuit in the right atrium.",
        "syncope",
    ]
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert len(set(lengths)) == 3  # the batch is padded
    batch = model.encode(texts, convert_to_tensor=True)
    for text, embedding in zip(texts, batch, strict=True):
        alone = model.encode([text], convert_to_tensor=True)[0]
        torch.testing.assert_close(embedding, alone, atol=1e-5, rtol=1e-4)
        # and it is the last token's hidden state, normalised
        with torch.no_grad():
            hidden = model.transformers_model(**tokenizer([text], return_tensors="pt"))
        last = torch.nn.functional.normalize(hidden.last_hidden_state[0, -1], dim=-1)
        torch.testing.assert_close(alone, last, atol=1e-5, rtol=1e-4)


def test_the_qwen3_query_form_goes_on_queries_only(qwen3_dir, tmp_path):
    recipe = _recipe(qwen3_dir)
    prompt = QWEN3_QUERY_TEMPLATE.format(task=TASK)
    assert recipe.query_prompt == prompt == f"Instruct: {TASK}\nQuery:"
    model = recipe.load_base()
    query = "fast irregular heartbeat"
    with_prompt = model.encode([query], prompt_name="query", convert_to_tensor=True)
    by_hand = model.encode([prompt + query], convert_to_tensor=True)
    plain = model.encode([query], convert_to_tensor=True)
    torch.testing.assert_close(with_prompt, by_hand)
    assert not torch.allclose(with_prompt, plain)
    # training: the anchors (queries) take the prompt, positives and negatives do not
    assert recipe.training_arguments(tmp_path).prompts == {"anchor": prompt}


def _one_batch_loss_and_gradients(recipe: Recipe, folder, rows):
    """Loss and LoRA gradients of one training batch, through the trainer's own collator
    (which applies the prompts) and its `compute_loss`, with gradient checkpointing on."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    torch.manual_seed(0)
    model = recipe.load_base()
    model.add_adapter(recipe.lora_config(model))
    with torch.no_grad():  # LoRA B starts at zero: give both factors a gradient
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * 0.05)
    model.transformers_model.activation_checkpointing_enable(
        activation_checkpointing_kwargs={"use_reentrant": False}
    )
    model.transformers_model.enable_input_require_grads()
    model.train()
    assert model.transformers_model.is_activation_checkpointing
    trainer = SentenceTransformerTrainer(
        model=model,
        args=recipe.training_arguments(folder, evaluate=False),
        train_dataset=Dataset.from_dict(rows),
        loss=recipe.loss(model),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    anchors = model.tokenizer.batch_decode(batch["anchor_input_ids"], skip_special_tokens=True)
    positives = model.tokenizer.batch_decode(batch["positive_input_ids"], skip_special_tokens=True)
    assert all(a.strip().startswith("Instruct:") for a in anchors)
    assert not any("Instruct:" in p for p in positives)
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    gradients = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), gradients, type(trainer.loss).__name__


def test_gradcache_with_checkpointing_matches_the_plain_loss_with_a_query_prompt(
    qwen3_dir, tmp_path
):
    rows = {
        "anchor": [f"cardiac finding number {i}" for i in range(8)],
        "positive": [f"a description of the heart finding numbered {i} in words" for i in range(8)],
        "negative": [f"an unrelated sentence about the lungs, item {i}" for i in range(8)],
    }
    plain = _recipe(qwen3_dir, batch_size=8, mini_batch_size=0, gradient_checkpointing=True)
    cached = plain.replace(mini_batch_size=2)
    loss_a, grads_a, name_a = _one_batch_loss_and_gradients(plain, tmp_path / "a", rows)
    loss_b, grads_b, name_b = _one_batch_loss_and_gradients(cached, tmp_path / "b", rows)
    assert (name_a, name_b) == (
        "MultipleNegativesRankingLoss",
        "CachedMultipleNegativesRankingLoss",
    )
    torch.testing.assert_close(loss_a, loss_b, atol=1e-5, rtol=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) == 2 * len(QWEN3_LINEAR) * N_LAYERS
    for name in grads_a:
        assert grads_a[name].abs().sum() > 0, name
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-3)
