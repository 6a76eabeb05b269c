"""LoRA training with InfoNCE and in-batch negatives (the CardioEmbed recipe).

`train(pairs, ModelSpec, LoraSpec, TrainConfig, output_dir)` fine-tunes a LoRA adapter on
(anchor, positive[, negative]) pairs with `MultipleNegativesRankingLoss` (InfoNCE on
cosine similarity, scale = 1/temperature) through `SentenceTransformerTrainer`. It
resumes from the last checkpoint of an interrupted run, and writes, atomically:

    output_dir/
      adapter/                 the LoRA adapter (adapter_config.json records the
                               portable base reference, not a local path)
      cardioembed_model.json   ModelSpec, LoraSpec, TrainConfig, base reference, data hash
      history.csv              the trainer's log: loss per step, evaluation metrics
      manifest.json            parameters, environment, hashes (artifacts.write_manifest)

Checkpoints live in `output_dir/checkpoints/` while training runs and are removed once
the run is finished (`keep_checkpoints=True` keeps them).

Several processes: `torchrun --nproc_per_node N -m cardioembed.train_cli ...` runs the
same code; every process sees its own shard of the data, `gather_across_devices=True`
makes every process's batch a negative for all others, rank 0 writes the artifact.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .artifacts import atomic_dir, is_current, load_manifest, params_hash, write_manifest
from .errors import InputError, ParameterError
from .modeling import LoraSpec, ModelSpec, add_lora, build_model, portable_base

logger = logging.getLogger(__name__)

MODEL_FILE = "cardioembed_model.json"
ADAPTER_DIR = "adapter"
HISTORY_FILE = "history.csv"
CHECKPOINTS = "checkpoints"
RUN_PARAMS_FILE = "run_params.json"
ARTIFACT_KIND = "lora-adapter"
FORMAT_VERSION = 1


def scale_from_temperature(tau: float) -> float:
    """The InfoNCE logit scale for temperature `tau`: 1/tau (0.05 -> 20). The only place
    this is computed."""
    try:
        value = float(tau)
    except (TypeError, ValueError):
        raise ParameterError("temperature", tau, "a number > 0, such as 0.05") from None
    if not math.isfinite(value) or value <= 0:
        raise ParameterError("temperature", tau, "a number > 0, such as 0.05")
    return 1.0 / value


@dataclass(frozen=True)
class TrainConfig:
    """How to train. `mini_batch_size`: None -> MultipleNegativesRankingLoss; an integer ->
    CachedMultipleNegativesRankingLoss (GradCache) with mini-batches of that size.
    `bf16`: None -> on when CUDA is available."""

    epochs: float = 1
    batch_size: int = 64
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.1
    scheduler: str = "cosine"
    seed: int = 42
    temperature: float = 0.05
    mini_batch_size: int | None = None
    use_hard_negatives: bool = False
    eval_steps: int = 100
    save_steps: int = 100
    max_steps: int = -1
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    gather_across_devices: bool = False
    logging_steps: int = 1

    def __post_init__(self):
        scale_from_temperature(self.temperature)
        if not self.epochs > 0:
            raise ParameterError("epochs", self.epochs, "a number > 0")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise ParameterError(
                "batch_size", self.batch_size, "an integer >= 2 (in-batch negatives need a batch)"
            )
        if not self.learning_rate > 0:
            raise ParameterError("learning_rate", self.learning_rate, "a number > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ParameterError("warmup_ratio", self.warmup_ratio, "a number in [0, 1)")
        if self.mini_batch_size is not None and (
            not isinstance(self.mini_batch_size, int) or self.mini_batch_size < 1
        ):
            raise ParameterError("mini_batch_size", self.mini_batch_size, "None or an integer >= 1")
        for name in ("eval_steps", "save_steps", "logging_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "an integer >= 1")
        if not isinstance(self.max_steps, int) or (self.max_steps < 1 and self.max_steps != -1):
            raise ParameterError("max_steps", self.max_steps, "-1 (use epochs) or an integer >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TrainResult:
    output_dir: Path
    history: pd.DataFrame
    global_step: int
    finished: bool
    seconds: float
    resumed_from: str | None = None
    start_step: int = 0
    loaded: bool = False
    model: Any = field(default=None, repr=False)


# ----------------------------------------------------------------------------- names
def data_fingerprint(pairs: pd.DataFrame) -> str:
    """A stable hash of the pairs that training uses (order matters: it seeds batches)."""
    import hashlib

    cols = [c for c in ("anchor", "positive", "negative", "split") if c in pairs.columns]
    frame = pairs[cols].astype("string").fillna("<NA>")
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(cols).encode()).hexdigest()[:16]


def _short_base(base: str) -> str:
    name = Path(base.rstrip("/")).name or base
    keep = "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in name.lower())
    return keep.strip("-.") or "model"


def _fmt_float(value: float) -> str:
    text = f"{value:.0e}" if value < 1e-2 else f"{value:g}"
    return text.replace("e-0", "e-").replace("e+0", "e")


def run_params(
    model_spec: ModelSpec, lora_spec: LoraSpec, train_config: TrainConfig, data_hash: str
) -> dict[str, Any]:
    """The parameters that identify a run (its manifest's `params`)."""
    spec = model_spec.to_dict()
    spec["base"] = portable_base(model_spec.base)
    return {
        "model_spec": spec,
        "lora_spec": lora_spec.to_dict(),
        "train_config": train_config.to_dict(),
        "data_hash": data_hash,
    }


def run_name(
    model_spec: ModelSpec, lora_spec: LoraSpec, train_config: TrainConfig, data_hash: str
) -> str:
    """A readable, unique folder name, e.g. `minilm-eos-r16-tau0.05-e1-b64-lr2e-3-s42-1a2b3c`;
    the hash covers every parameter and the data."""
    tag = params_hash(run_params(model_spec, lora_spec, train_config, data_hash), length=6)
    steps = (
        f"m{train_config.max_steps}" if train_config.max_steps > 0 else f"e{train_config.epochs:g}"
    )
    return (
        f"{_short_base(portable_base(model_spec.base))}-{model_spec.pooling}"
        f"-r{lora_spec.rank}-tau{train_config.temperature:g}-{steps}"
        f"-b{train_config.batch_size}-lr{_fmt_float(train_config.learning_rate)}"
        f"-s{train_config.seed}-{tag}"
    )


# ----------------------------------------------------------------------------- data
def select_pairs(pairs: pd.DataFrame, kinds) -> pd.DataFrame:
    """The pairs of the given kinds (all splits, so validation matches training). An
    empty or unknown kind is an error that lists the kinds the corpus has."""
    _check_pairs(pairs)
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = list(kinds or [])
    available = sorted(pairs["kind"].dropna().unique()) if "kind" in pairs.columns else []
    unknown = [k for k in kinds if k not in available]
    if not kinds or unknown:
        raise ParameterError(
            "train_kinds",
            kinds,
            f"a non-empty list of kinds from the corpus: "
            f"{', '.join(available) or '(the pairs have no kind column)'}",
        )
    chosen = pairs[pairs["kind"].isin(kinds)].reset_index(drop=True)
    if not (chosen["split"] == "train").any():
        raise ParameterError("train_kinds", kinds, "kinds that have train pairs in the corpus")
    return chosen


MAIN_RUN_FILE = "main.json"


def record_main_run(models_dir: str | os.PathLike, name: str) -> Path:
    """Mark run `name` as the study's main model (notebook 02's), which the evaluation
    chapter compares with the base model."""
    from .artifacts import write_json

    return write_json(Path(models_dir) / MAIN_RUN_FILE, {"run_name": name})


def main_run(models_dir: str | os.PathLike) -> Path:
    """The folder of the main model recorded by notebook 02."""
    models_dir = Path(models_dir)
    pointer = models_dir / MAIN_RUN_FILE
    if not pointer.is_file():
        raise InputError(
            f"no main model recorded in {models_dir}; run notebook 02_train_lora "
            "first (cardioembed run --only 02)"
        )
    folder = models_dir / json.loads(pointer.read_text())["run_name"]
    if not (folder / MODEL_FILE).is_file():
        raise InputError(
            f"the main model {folder} is missing or unfinished; run notebook 02_train_lora again"
        )
    return folder


def adapter_megabytes(output_dir: str | os.PathLike) -> float:
    """Size on disk of a finished run's adapter, in MB."""
    folder = Path(output_dir) / ADAPTER_DIR
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _check_pairs(pairs: pd.DataFrame) -> None:
    if not isinstance(pairs, pd.DataFrame):
        raise InputError("pairs must be a pandas DataFrame with columns anchor, positive, split")
    missing = {"anchor", "positive", "split"} - set(pairs.columns)
    if missing:
        raise InputError(
            f"pairs lack the column(s) {sorted(missing)}; expected anchor, positive, "
            "negative (optional), split, group, source, kind"
        )
    bad = set(pairs["split"].dropna().unique()) - {"train", "validation", "test"}
    if bad:
        raise InputError(
            f"pairs have unknown split values {sorted(bad)}; use train/validation/test"
        )


def _train_dataset(pairs: pd.DataFrame, config: TrainConfig):
    from datasets import Dataset

    train = pairs[pairs["split"] == "train"]
    if len(train) < 2:
        raise InputError(f"pairs hold {len(train)} train pair(s): at least 2 are needed")
    columns = ["anchor", "positive"]
    if config.use_hard_negatives:
        if "negative" not in train.columns or train["negative"].isna().any():
            n = (
                len(train)
                if "negative" not in train.columns
                else int(train["negative"].isna().sum())
            )
            raise ParameterError(
                "use_hard_negatives",
                True,
                f"{n} of {len(train)} train pairs have no negative; mine them first "
                "(sentence_transformers.util.mine_hard_negatives) or set it to False",
            )
        columns.append("negative")
    frame = train[columns].astype(str).reset_index(drop=True)
    return Dataset.from_pandas(frame, preserve_index=False)


def build_evaluator(pairs: pd.DataFrame, model_spec: ModelSpec, batch_size: int = 64):
    """An InformationRetrievalEvaluator on the validation pairs: each anchor must find its
    own positive among all validation positives. None without validation pairs."""
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    val = pairs[pairs["split"] == "validation"]
    if val.empty:
        return None
    doc_ids: dict[str, str] = {}
    queries, relevant = {}, {}
    for i, (anchor, positive) in enumerate(zip(val["anchor"], val["positive"], strict=True)):
        did = doc_ids.setdefault(str(positive), f"d{len(doc_ids)}")
        qid = f"q{i}"
        queries[qid] = str(anchor)
        relevant.setdefault(qid, set()).add(did)
    corpus = {did: text for text, did in doc_ids.items()}
    return InformationRetrievalEvaluator(
        queries=queries,
        corpus=corpus,
        relevant_docs=relevant,
        name="validation",
        batch_size=batch_size,
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[10],
        write_csv=False,
        query_prompt_name="query" if model_spec.query_prompt else None,
    )


# ----------------------------------------------------------------------------- helpers
def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _distributed_kwargs() -> dict[str, Any]:
    """Training arguments for several processes. On CPU the process group must be told
    to use gloo and the CPU, else transformers falls back to one process per copy of the
    data (every rank trains on all of it)."""
    import torch

    if _world_size() <= 1:
        return {}
    kwargs: dict[str, Any] = {"ddp_find_unused_parameters": False}
    if not torch.cuda.is_available():
        kwargs.update(use_cpu=True, ddp_backend="gloo")
    return kwargs


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    return get_last_checkpoint(str(folder))


def _make_loss(model, config: TrainConfig):
    from sentence_transformers.sentence_transformer import losses

    scale = scale_from_temperature(config.temperature)
    if config.mini_batch_size is None:
        return losses.MultipleNegativesRankingLoss(
            model, scale=scale, gather_across_devices=config.gather_across_devices
        )
    return losses.CachedMultipleNegativesRankingLoss(
        model,
        scale=scale,
        mini_batch_size=config.mini_batch_size,
        gather_across_devices=config.gather_across_devices,
    )


def _history_frame(log_history: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(log_history)
    if "step" in frame.columns:
        frame = frame.sort_values("step", kind="stable").reset_index(drop=True)
    return frame


def _record_anchors(trainer, folder: Path) -> None:
    """Make the trainer's collator append every anchor it batches to
    `folder/anchors_rank<r>.txt` (to check how the data are sharded across processes)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"anchors_rank{_rank()}.txt"
    collator = trainer.data_collator
    base_cls = type(collator)

    def __call__(self, features):
        with open(path, "a") as handle:
            for feature in features:
                handle.write(str(feature.get("anchor", "")).replace("\n", " ") + "\n")
        return base_cls.__call__(self, features)

    collator.__class__ = type(f"Recording{base_cls.__name__}", (base_cls,), {"__call__": __call__})


def _portable_adapter_config(adapter_dir: Path, base_ref: str) -> None:
    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_ref
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- train
def train(
    pairs_df: pd.DataFrame,
    model_spec: ModelSpec,
    lora_spec: LoraSpec,
    train_config: TrainConfig,
    output_dir: str | os.PathLike,
    resume: bool = True,
    progress: bool = True,
    *,
    device: str | None = None,
    cache: str | os.PathLike | None = None,
    stop_after_steps: int | None = None,
    keep_checkpoints: bool = False,
    record_anchors_to: str | os.PathLike | None = None,
) -> TrainResult:
    """Train a LoRA adapter; see the module docstring for what is written.

    `resume`: continue from the last checkpoint in `output_dir/checkpoints` (made with the
    same parameters) instead of starting over. `stop_after_steps`: stop (with a checkpoint)
    once that global step is reached, without writing the final artifact: the run is left
    to be resumed, as after an interruption or in a time-boxed session."""
    import torch
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import TrainerCallback, set_seed

    start = time.time()
    _check_pairs(pairs_df)
    output_dir = Path(output_dir)
    ckpt_dir = output_dir / CHECKPOINTS
    data_hash = data_fingerprint(pairs_df)
    params = run_params(model_spec, lora_spec, train_config, data_hash)
    train_dataset = _train_dataset(pairs_df, train_config)

    # Checkpoints belong to one set of parameters: never resume another run's.
    marker = ckpt_dir / RUN_PARAMS_FILE
    last = _last_checkpoint(ckpt_dir) if resume else None
    if last is not None:
        recorded = json.loads(marker.read_text()).get("params_hash") if marker.is_file() else None
        if recorded != params_hash(params):
            raise InputError(
                f"{ckpt_dir} holds checkpoints of a run with other parameters or data; "
                "remove that folder, or train with resume=False to start over"
            )
    if _rank() == 0:
        if not resume and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            json.dumps(
                {"params_hash": params_hash(params), "params": params}, indent=2, default=str
            )
        )
    _barrier()

    set_seed(train_config.seed)
    model = build_model(model_spec, device=device, cache=cache)
    add_lora(model, lora_spec)
    if train_config.gradient_checkpointing:
        model.transformers_model.enable_input_require_grads()

    bf16 = torch.cuda.is_available() if train_config.bf16 is None else train_config.bf16
    evaluator = build_evaluator(pairs_df, model_spec, batch_size=train_config.batch_size)
    prompts = {"anchor": model_spec.query_prompt} if model_spec.query_prompt else None
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=train_config.epochs,
        max_steps=train_config.max_steps,
        per_device_train_batch_size=train_config.batch_size,
        per_device_eval_batch_size=train_config.batch_size,
        learning_rate=train_config.learning_rate,
        warmup_steps=train_config.warmup_ratio,  # transformers 5: a float < 1 is a ratio
        lr_scheduler_type=train_config.scheduler,
        seed=train_config.seed,
        data_seed=train_config.seed,
        bf16=bf16,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=prompts,
        eval_strategy="steps" if evaluator is not None else "no",
        eval_steps=train_config.eval_steps,
        save_strategy="steps",
        save_steps=train_config.save_steps,
        save_total_limit=2,
        logging_steps=train_config.logging_steps,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=not progress,
        dataloader_drop_last=_world_size() > 1,
        dataloader_pin_memory=torch.cuda.is_available(),  # pinning warns and helps nothing on CPU
        **_distributed_kwargs(),
        **({"gradient_checkpointing": True} if train_config.gradient_checkpointing else {}),
    )

    callbacks = []
    if stop_after_steps is not None:

        class _StopAfter(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= stop_after_steps:
                    control.should_save = True
                    control.should_training_stop = True
                return control

        callbacks.append(_StopAfter())

    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        loss=_make_loss(model, train_config),
        evaluator=evaluator,
        callbacks=callbacks,
    )
    if record_anchors_to is not None:
        _record_anchors(trainer, Path(record_anchors_to))

    start_step = 0
    if last is not None:
        logger.info("resuming from %s", last)
        start_step = int(Path(last).name.rsplit("-", 1)[-1])
    trainer.train(resume_from_checkpoint=last)
    state = trainer.state
    history = _history_frame(state.log_history)
    finished = state.global_step >= state.max_steps
    seconds = time.time() - start
    if not finished:
        return TrainResult(
            output_dir, history, state.global_step, False, seconds, last, start_step, model=model
        )

    if _rank() == 0:
        base_ref = portable_base(model_spec.base)
        with atomic_dir(output_dir) as tmp:
            adapter_dir = tmp / ADAPTER_DIR
            model.transformers_model.save_pretrained(str(adapter_dir))
            _portable_adapter_config(adapter_dir, base_ref)
            record = {
                "format": FORMAT_VERSION,
                "base": base_ref,
                "adapter": ADAPTER_DIR,
                "model_spec": params["model_spec"],
                "lora_spec": params["lora_spec"],
                "train_config": params["train_config"],
                "data_hash": data_hash,
                "global_step": state.global_step,
                "world_size": _world_size(),
                "n_train_pairs": len(train_dataset),
            }
            (tmp / MODEL_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            history.to_csv(tmp / HISTORY_FILE, index=False)
            write_manifest(
                tmp,
                kind=ARTIFACT_KIND,
                params=params,
                inputs={"pairs": data_hash},
                seconds=seconds,
                extra={"global_step": state.global_step, "resumed_from": last},
            )
            if keep_checkpoints and ckpt_dir.exists():
                os.replace(ckpt_dir, tmp / CHECKPOINTS)
    _barrier()
    return TrainResult(
        output_dir, history, state.global_step, True, seconds, last, start_step, model=model
    )


# ----------------------------------------------------------------------------- load
def trained_model_spec(output_dir: str | os.PathLike) -> ModelSpec:
    """The ModelSpec a finished run was trained with, its base by its portable name: the
    untrained model to compare it with is `build_model(trained_model_spec(folder))`."""
    path = Path(output_dir) / MODEL_FILE
    if not path.is_file():
        raise InputError(f"{output_dir} holds no trained model ({MODEL_FILE} is missing)")
    record = json.loads(path.read_text())
    return ModelSpec.from_dict({**record["model_spec"], "base": record["base"]})


def load_trained(
    output_dir: str | os.PathLike,
    device: str | None = None,
    cache: str | os.PathLike | None = None,
    merge: bool = False,
):
    """The trained model of a finished run: the base rebuilt from its portable reference,
    then the adapter loaded and checked (every saved adapter weight must be in the model
    with the saved value, against adapters silently dropped on load).

    `merge=True` then folds the adapter into the base weights (peft's ``merge``), the
    usual step before inference: encoding skips the adapter's extra matrix products and
    gives the same embeddings to within float rounding. Use it to evaluate, not to train
    further."""
    import torch
    from safetensors.torch import load_file

    output_dir = Path(output_dir)
    spec = trained_model_spec(output_dir)
    record = json.loads((output_dir / MODEL_FILE).read_text())
    model = build_model(spec, device=device, cache=cache)
    adapter_dir = output_dir / record.get("adapter", ADAPTER_DIR)
    model.load_adapter(str(adapter_dir))

    saved = {
        name.removeprefix("base_model.model."): tensor
        for name, tensor in load_file(str(adapter_dir / "adapter_model.safetensors")).items()
    }
    adapter_name = ".default."
    loaded = {
        name.replace(adapter_name, "."): param
        for name, param in model.transformers_model.named_parameters()
        if "lora_" in name
    }
    if len(saved) == 0 or set(saved) != set(loaded):
        raise RuntimeError(
            f"adapter of {output_dir} did not load: {len(saved)} saved tensors, "
            f"{len(loaded)} in the model, {len(set(saved) ^ set(loaded))} names differ"
        )
    for name, tensor in saved.items():
        if not torch.equal(loaded[name].detach().cpu().to(tensor.dtype), tensor):
            raise RuntimeError(f"adapter weight {name} of {output_dir} differs after loading")
    if merge:
        from peft.tuners.tuners_utils import BaseTunerLayer

        for module in model.transformers_model.modules():
            if isinstance(module, BaseTunerLayer):
                module.merge()
    model.eval()
    return model


def load_history(output_dir: str | os.PathLike) -> pd.DataFrame:
    path = Path(output_dir) / HISTORY_FILE
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def train_or_load(
    pairs_df: pd.DataFrame,
    model_spec: ModelSpec,
    lora_spec: LoraSpec,
    train_config: TrainConfig,
    output_dir: str | os.PathLike,
    **kwargs,
) -> TrainResult:
    """Load-or-compute: load the finished run in `output_dir` if it was made with the same
    parameters and data, else train (resuming where possible)."""
    output_dir = Path(output_dir)
    params = run_params(model_spec, lora_spec, train_config, data_fingerprint(pairs_df))
    if is_current(output_dir, params):
        manifest = load_manifest(output_dir) or {}
        model = load_trained(output_dir, device=kwargs.get("device"), cache=kwargs.get("cache"))
        return TrainResult(
            output_dir,
            load_history(output_dir),
            int(manifest.get("global_step", 0)),
            True,
            0.0,
            loaded=True,
            model=model,
        )
    return train(pairs_df, model_spec, lora_spec, train_config, output_dir, **kwargs)


__all__ = [
    "TrainConfig",
    "TrainResult",
    "scale_from_temperature",
    "run_name",
    "run_params",
    "data_fingerprint",
    "build_evaluator",
    "select_pairs",
    "record_main_run",
    "main_run",
    "adapter_megabytes",
    "train",
    "train_or_load",
    "load_trained",
    "trained_model_spec",
    "load_history",
]
