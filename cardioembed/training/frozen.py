"""The frozen lower layers of an encoder, computed once per text and shared by every run.

With `lora_top_layers: N` the embeddings and the layers below the last N are frozen and
give a text the same output in every run. `frozen_lower_layers` puts a stand-in in their
place that looks each text up by its token ids and computes only new texts, in eval mode
(no dropout). peft runs the whole frozen base on every step; ``benchmarks/training.py``
prints what this saves. The states are kept in memory (at most `MAX_BYTES`, the rest
recomputed) and in a file per content key (sha256 of the frozen weights and the depth) in
`<profile folder>/cache/frozen/`; a damaged or unwritable file is a warning.

Supported: encoders with right padding and learned absolute positions (BERT and kin),
where a text's states do not depend on its batch. Other models run as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch

from cardioembed.artifacts import atomic_path, tolerate_cache
from cardioembed.models import has_absolute_positions, hash_tensors

MAX_BYTES = 2 * 1024**3  # hidden states kept in memory, over all models; beyond: recomputed
_STORES: dict[str, dict[bytes, object]] = {}
_STORED = {"bytes": 0}


def _keep(store: dict, key: bytes, state) -> None:
    size = state.numel() * state.element_size()
    if _STORED["bytes"] + size <= MAX_BYTES:
        store[key] = state
        _STORED["bytes"] += size


def clear() -> None:
    """Forget every text stored in memory, as a new process starts (the files on disk stay)."""
    _STORES.clear()
    _STORED["bytes"] = 0


def store_dir(profile_folder: str | Path) -> Path:
    return Path(profile_folder) / "cache" / "frozen"


def _load(path: Path | None, key: str) -> dict[bytes, object]:
    """The store of `key` from its file, if that holds this very key."""
    store: dict[bytes, object] = {}
    if path is not None and path.is_file():
        with tolerate_cache(path.parent):  # a damaged file: recomputed, then written again
            saved = torch.load(path, weights_only=True)
            if saved["key"] == key and isinstance(saved["states"], dict):  # not an older format
                for key_bytes, state in saved["states"].items():
                    _keep(store, key_bytes, state)
    return store


@contextlib.contextmanager
def frozen_lower_layers(
    model, n_frozen: int, store_dir: str | Path | None = None
) -> Iterator[dict[str, int]]:
    """Within the block, the embeddings and first `n_frozen` layers of `model` are computed
    once per text (kept in memory and `store_dir`). Yields counters of texts `computed` and
    `reused`; does nothing when `n_frozen` is 0 or the model is not a supported encoder."""
    counters = {"computed": 0, "reused": 0}
    hf = model.transformers_model
    layers = getattr(getattr(hf, "encoder", None), "layer", None)
    right_padded = getattr(model.tokenizer, "padding_side", "right") == "right"
    if n_frozen <= 0 or layers is None or not has_absolute_positions(hf) or not right_padded:
        yield counters
        return
    layers = list(layers)  # `Recipe.lora_config` leaves at least one adapted
    frozen = (hf.embeddings, *layers[:n_frozen])
    # Stored by a sha256 of the frozen weights (bytes, shapes, dtypes): every copy of the
    # same base (the untrained model, each run's) shares one store.
    digest = hashlib.sha256(f"frozen-{n_frozen}".encode())
    for module in frozen:
        hash_tensors(digest, (*module.named_parameters(), *module.named_buffers()))
    key = digest.hexdigest()[:24]
    path = Path(store_dir) / f"{key}.pt" if store_dir else None
    if key not in _STORES:
        _STORES[key] = _load(path, key)
    store = _STORES[key]
    size_before = len(store)
    pad_id = model.tokenizer.pad_token_id
    inputs: dict = {}

    def remember_inputs(module, args, kwargs):
        # sentence-transformers calls the model's forward directly (no hooks): the
        # embeddings module is where the token ids pass through a call
        inputs["ids"] = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        inputs["types"] = kwargs.get("token_type_ids")

    @torch.no_grad()
    def compute(rows: list[int], attention_mask) -> torch.Tensor:
        index = torch.tensor(rows, device=inputs["ids"].device)
        modes = [m.training for m in frozen]
        for m in frozen:
            m.eval()
        try:
            types = inputs["types"]
            h = hf.embeddings.forward(  # forward, not a call: no hook remembers these inputs
                input_ids=inputs["ids"][index],
                token_type_ids=None if types is None else types[index],
            )
            mask = None if attention_mask is None else attention_mask[index]
            for layer in frozen[1:]:
                h = type(layer).forward(layer, h, mask)  # the class's own, not the stand-in
        finally:
            for m, mode in zip(frozen, modes, strict=True):
                m.train(mode)
        return h

    def first_layer(hidden_states, attention_mask=None, *args, **kwargs):
        """Stands in for the first frozen layer: returns the output of the last one."""
        ids = inputs["ids"]
        # right padding: a text's tokens are the ones before its first padding token
        lengths = (ids != pad_id).sum(dim=1).tolist()
        keys = [ids[i, :n].cpu().numpy().tobytes() for i, n in enumerate(lengths)]
        missing = [i for i, key in enumerate(keys) if key not in store]
        rows = {}
        if missing:
            h = compute(missing, attention_mask)
            for j, i in enumerate(missing):
                rows[i] = h[j, : lengths[i]].clone()
                if keys[i] not in store:
                    _keep(store, keys[i], rows[i])
        counters["computed"] += len(missing)
        counters["reused"] += len(keys) - len(missing)
        out = hidden_states.new_zeros(hidden_states.shape)
        for i, (key, n) in enumerate(zip(keys, lengths, strict=True)):
            out[i, :n] = rows[i] if i in rows else store[key]
        # Under reentrant gradient checkpointing a segment whose inputs need no gradient
        # gives its adapter none: the whole model's embeddings output needs one there
        # (`enable_input_require_grads`), and so does this output, which replaces it.
        return out.requires_grad_(torch.is_grad_enabled() and hf.is_activation_checkpointing)

    def other_layer(hidden_states, *args, **kwargs):
        """Stands in for the other frozen layers: their work is in the first's output."""
        return hidden_states

    # The stand-ins replace the frozen layers' forward on the instances only: the module
    # tree, its parameters and its repr stay as they are (saving, fingerprints).
    layers[0].forward = first_layer
    for layer in layers[1:n_frozen]:
        layer.forward = other_layer
    hook = hf.embeddings.register_forward_pre_hook(remember_inputs, with_kwargs=True)
    try:
        yield counters
    finally:
        hook.remove()
        for layer in layers[:n_frozen]:
            del layer.forward
    if path is not None and len(store) > size_before:
        with tolerate_cache(path.parent), atomic_path(path) as tmp:
            torch.save({"key": key, "states": store}, tmp)


@contextlib.contextmanager
def share_frozen_layers(models, recipe, store_dir: str | Path | None = None) -> Iterator[None]:
    """`frozen_lower_layers` for every model (BM25 aside) at `recipe`'s depth: the base and
    every run of one recipe compute those layers once between them."""
    with contextlib.ExitStack() as stack:
        for model in models:
            if hasattr(model, "transformers_model"):  # not BM25
                n_frozen = recipe.frozen_layers(model)
                stack.enter_context(frozen_lower_layers(model, n_frozen, store_dir))
        yield
