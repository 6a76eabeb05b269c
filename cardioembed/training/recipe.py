"""LoRA training with InfoNCE and in-batch negatives (the CardioEmbed recipe).

A :class:`Recipe` is notebook 02's parameters (same names; their defaults live in that
notebook's parameters cell only). It builds what the libraries take: the base model
(`models.load_base`), peft's `LoraConfig`, sentence-transformers' training arguments and
its `MultipleNegativesRankingLoss` (InfoNCE on cosine similarity, scale = 1/temperature).

`train(pairs, recipe, folder)` writes a sentence-transformers model folder, atomically:
`SentenceTransformer(folder)` loads it (the base by its hub id or local path, the LoRA
adapter applied), with the model card sentence-transformers writes, plus `history.csv`
(loss and validation metrics per step) and `manifest.json` (the recipe, the data hash,
the environment). An interrupted run resumes from its last checkpoint
(`folder/checkpoints/`, removed once the run is finished).

Several processes: `torchrun --nproc_per_node N -m cardioembed.training.cli ...` runs the
same code; every process sees its own shard of the data, `gather_across_devices=True`
makes every process's batch a negative for all others, rank 0 writes the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cardioembed.artifacts import (
    atomic_dir,
    is_current,
    load_manifest,
    params_hash,
    write_json,
    write_manifest,
)
from cardioembed.errors import InputError, ParameterError
from cardioembed.training.frozen import frozen_lower_layers
from cardioembed.training.models import POOLINGS, load_base, load_model, query_prompt, torch_dtype

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
CHECKPOINTS = "checkpoints"
RUN_PARAMS_FILE = "run_params.json"
ARTIFACT_KIND = "sentence-transformer-lora"
MAIN_RUN_FILE = "main.json"


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


def _whole(name: str, value, minimum: int, expected: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ParameterError(name, value, expected)


@dataclass(frozen=True)
class Recipe:
    """The training recipe: notebook 02's parameters, checked once, so a bad value is a
    ParameterError before anything is trained. No defaults here: they are notebook 02's."""

    base_model: str
    pooling: str
    max_seq_length: int
    query_instruction: str
    train_kinds: tuple[str, ...]
    lora_rank: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: str
    lora_top_layers: int
    temperature: float
    epochs: float
    batch_size: int
    learning_rate: float
    warmup_ratio: float
    mini_batch_size: int
    use_hard_negatives: bool
    train_seed: int
    eval_steps: int
    max_steps: int
    gradient_checkpointing: bool
    dtype: str

    def __post_init__(self):
        kinds = (self.train_kinds,) if isinstance(self.train_kinds, str) else self.train_kinds
        object.__setattr__(self, "train_kinds", tuple(kinds))
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            raise ParameterError(
                "base_model", self.base_model, "'minilm', 'smollm2', a hub id or a folder"
            )
        if self.pooling not in POOLINGS:
            raise ParameterError("pooling", self.pooling, f"one of {sorted(POOLINGS)}")
        _whole("max_seq_length", self.max_seq_length, 2, "an integer >= 2")
        _whole("lora_rank", self.lora_rank, 1, "an integer >= 1")
        if not self.lora_alpha > 0:
            raise ParameterError("lora_alpha", self.lora_alpha, "a positive number")
        if not 0 <= self.lora_dropout < 1:
            raise ParameterError("lora_dropout", self.lora_dropout, "a number in [0, 1)")
        if not isinstance(self.lora_target_modules, str) or not self.lora_target_modules.strip():
            raise ParameterError(
                "lora_target_modules",
                self.lora_target_modules,
                "'all-linear' or comma-separated module names such as 'q_proj,v_proj'",
            )
        _whole(
            "lora_top_layers", self.lora_top_layers, 0, "0 (every layer) or how many last layers"
        )
        scale_from_temperature(self.temperature)
        if not self.epochs > 0:
            raise ParameterError("epochs", self.epochs, "a number > 0")
        _whole(
            "batch_size", self.batch_size, 2, "an integer >= 2 (in-batch negatives need a batch)"
        )
        if not self.learning_rate > 0:
            raise ParameterError("learning_rate", self.learning_rate, "a number > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ParameterError("warmup_ratio", self.warmup_ratio, "a number in [0, 1)")
        _whole("mini_batch_size", self.mini_batch_size, 0, "0 (plain loss) or a GradCache size")
        _whole("eval_steps", self.eval_steps, 1, "an integer >= 1")
        if not isinstance(self.max_steps, int) or (self.max_steps < 1 and self.max_steps != -1):
            raise ParameterError("max_steps", self.max_steps, "-1 (use epochs) or an integer >= 1")
        torch_dtype(self.dtype)

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> Recipe:
        """The recipe from notebook 02's parameters (other names are ignored)."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            raise InputError(
                f"the recipe lacks {', '.join(missing)}: pass every parameter of notebook "
                "02_train_lora (recipe_defaults() reads them from it); a run trained by an "
                "older version of the study has to be trained again with notebook 02"
            )
        return cls(**{n: values[n] for n in names})

    @classmethod
    def of_run(cls, folder: str | os.PathLike) -> Recipe:
        """The recipe a finished run was trained with (from its manifest)."""
        manifest = load_manifest(folder)
        if manifest is None or "recipe" not in manifest.get("params", {}):
            raise InputError(f"{folder} holds no finished training run (no manifest.json)")
        return cls.from_parameters(manifest["params"]["recipe"])

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["train_kinds"] = list(self.train_kinds)
        return data

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------ what the libraries take
    def load_base(self, device: str | None = None):
        return load_base(
            self.base_model,
            self.pooling,
            self.max_seq_length,
            self.query_instruction,
            dtype=self.dtype,
            device=device,
        )

    def frozen_layers(self, model) -> int:
        """How many lower layers of `model` the adapter leaves frozen (0: it adapts all)."""
        if not self.lora_top_layers:
            return 0
        return int(model.transformers_model.config.num_hidden_layers) - self.lora_top_layers

    @property
    def query_prompt(self) -> str | None:
        return query_prompt(self.query_instruction)

    def lora_config(self, model):
        """peft's LoraConfig for `model`: "all-linear" is peft's own choice of every
        attention and feed-forward projection (the paper adapts all of them)."""
        import torch
        from peft import LoraConfig, TaskType

        targets = self.lora_target_modules.strip()
        if targets != "all-linear":
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        elif self.lora_top_layers:
            # peft takes "all-linear" only for every layer: name the linear layers instead
            targets = sorted(
                {
                    name.rsplit(".", 1)[-1]
                    for name, module in model.transformers_model.named_modules()
                    if isinstance(module, torch.nn.Linear) and "pooler" not in name
                }
            )
        layers = None
        if self.lora_top_layers:
            n_layers = int(model.transformers_model.config.num_hidden_layers)
            if self.lora_top_layers > n_layers:
                raise ParameterError(
                    "lora_top_layers",
                    self.lora_top_layers,
                    f"at most {n_layers}, this model's layers",
                )
            layers = list(range(n_layers - self.lora_top_layers, n_layers))
        return LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=targets,
            # BERT's pooler is unused by every pooling here: LoRA on it would be dead weight
            # (and trips DistributedDataParallel's unused-parameter check)
            exclude_modules=r".*pooler.*" if hasattr(model.transformers_model, "pooler") else None,
            layers_to_transform=layers,
        )

    def loss(self, model, gather_across_devices: bool = False):
        """InfoNCE with in-batch negatives; GradCache when `mini_batch_size` > 0."""
        from sentence_transformers.sentence_transformer import losses

        scale = scale_from_temperature(self.temperature)
        if not self.mini_batch_size:
            return losses.MultipleNegativesRankingLoss(
                model, scale=scale, gather_across_devices=gather_across_devices
            )
        return losses.CachedMultipleNegativesRankingLoss(
            model,
            scale=scale,
            mini_batch_size=self.mini_batch_size,
            gather_across_devices=gather_across_devices,
        )

    def training_arguments(
        self, output_dir: str | os.PathLike, progress: bool | None = None, evaluate: bool = True
    ):
        """`progress`: the trainer's progress bar; None shows it unless TQDM_DISABLE is set
        (the notebooks set it, so the book shows no bar)."""
        import torch
        from sentence_transformers import SentenceTransformerTrainingArguments
        from sentence_transformers.base.sampler import BatchSamplers

        distributed = _world_size() > 1
        extra: dict[str, Any] = {}
        if distributed:
            extra["ddp_find_unused_parameters"] = False
            if not torch.cuda.is_available():
                # without these transformers falls back to one process per copy of the data
                extra.update(use_cpu=True, ddp_backend="gloo")
        return SentenceTransformerTrainingArguments(
            output_dir=str(output_dir),
            num_train_epochs=self.epochs,
            max_steps=self.max_steps,
            per_device_train_batch_size=self.batch_size,
            per_device_eval_batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            warmup_steps=self.warmup_ratio,  # transformers 5: a float < 1 is a ratio
            lr_scheduler_type="cosine",
            seed=self.train_seed,
            data_seed=self.train_seed,
            bf16=torch_dtype(self.dtype) == torch.bfloat16,  # mixed precision with bf16 weights
            # duplicates in a batch would be false negatives
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            prompts={"anchor": self.query_prompt} if self.query_prompt else None,
            eval_strategy="steps" if evaluate else "no",
            eval_steps=self.eval_steps,
            save_strategy="steps",
            save_steps=max(self.eval_steps, 50),  # checkpoints no more often than 50 steps
            save_total_limit=2,
            logging_steps=1,
            logging_first_step=True,
            report_to="none",
            disable_tqdm=os.environ.get("TQDM_DISABLE") == "1"
            if progress is None
            else not progress,
            dataloader_drop_last=distributed,
            dataloader_pin_memory=torch.cuda.is_available(),  # pinning warns on a CPU
            activation_checkpointing=self.gradient_checkpointing,
            **extra,
        )

    # ------------------------------------------------------------ data and names
    def training_pairs(self, corpus_pairs: pd.DataFrame) -> pd.DataFrame:
        """The corpus pairs this recipe trains on (every split, so validation matches)."""
        return select_pairs(corpus_pairs, self.train_kinds)

    def run_params(self, pairs: pd.DataFrame) -> dict[str, Any]:
        """What identifies a run: the recipe and the data (its manifest's `params`)."""
        return {"recipe": self.to_dict(), "data_hash": data_fingerprint(pairs)}

    def run_name(self, pairs: pd.DataFrame) -> str:
        """A readable, unique folder name, e.g. `minilm-eos-r16-tau0.05-e1-b64-lr2e-3-s42-1a2b3c`;
        the hash covers every parameter and the data."""
        base = Path(self.base_model.rstrip("/")).name or self.base_model
        base = "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in base.lower()).strip("-.")
        steps = f"m{self.max_steps}" if self.max_steps > 0 else f"e{self.epochs:g}"
        lr = f"{self.learning_rate:.0e}" if self.learning_rate < 1e-2 else f"{self.learning_rate:g}"
        lr = lr.replace("e-0", "e-").replace("e+0", "e")
        tag = params_hash(self.run_params(pairs), 6)
        return (
            f"{base or 'model'}-{self.pooling}-r{self.lora_rank}-tau{self.temperature:g}-{steps}"
            f"-b{self.batch_size}-lr{lr}-s{self.train_seed}-{tag}"
        )

    def planned_steps(self, n_train_pairs: int) -> int:
        """Optimizer steps of a run on one process: `max_steps`, else epochs x batches."""
        if self.max_steps > 0:
            return int(self.max_steps)
        return int(math.ceil(math.ceil(n_train_pairs / self.batch_size) * self.epochs))


def recipe_defaults() -> dict[str, Any]:
    """Notebook 02's parameter defaults: the one home of the recipe's defaults."""
    from cardioembed.book.profiles import notebook_values

    return notebook_values("02", "teaching")


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


# ----------------------------------------------------------------------------- data
def data_fingerprint(pairs: pd.DataFrame) -> str:
    """A stable hash of the pairs that training uses (order matters: it seeds batches)."""
    cols = [c for c in ("anchor", "positive", "negative", "split") if c in pairs.columns]
    frame = pairs[cols].astype("string").fillna("<NA>")
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(cols).encode()).hexdigest()[:16]


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


def select_pairs(pairs: pd.DataFrame, kinds) -> pd.DataFrame:
    """The pairs of the given kinds (all splits, so validation matches training). An
    empty or unknown kind is an error that lists the kinds the corpus has."""
    _check_pairs(pairs)
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    available = sorted(pairs["kind"].dropna().unique()) if "kind" in pairs.columns else []
    unknown = [k for k in kinds if k not in available]
    if not kinds or unknown:
        raise ParameterError(
            "train_kinds",
            kinds,
            "a non-empty list of kinds from the corpus: "
            f"{', '.join(available) or '(the pairs have no kind column)'}",
        )
    chosen = pairs[pairs["kind"].isin(kinds)].reset_index(drop=True)
    if not (chosen["split"] == "train").any():
        raise ParameterError("train_kinds", kinds, "kinds that have train pairs in the corpus")
    return chosen


def _train_dataset(pairs: pd.DataFrame, use_hard_negatives: bool):
    from datasets import Dataset

    train = pairs[pairs["split"] == "train"]
    if len(train) < 2:
        raise InputError(f"pairs hold {len(train)} train pair(s): at least 2 are needed")
    columns = ["anchor", "positive"]
    if use_hard_negatives:
        n = len(train) if "negative" not in train else int(train["negative"].isna().sum())
        if n:
            raise ParameterError(
                "use_hard_negatives",
                True,
                f"{n} of {len(train)} train pairs have no negative; mine them first "
                "(sentence_transformers.util.mine_hard_negatives) or set it to False",
            )
        columns.append("negative")
    frame = train[columns].astype(str).reset_index(drop=True)
    return Dataset.from_pandas(frame, preserve_index=False)


def build_evaluator(pairs: pd.DataFrame, query_prompt: str | None, batch_size: int = 64):
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
        queries[f"q{i}"] = str(anchor)
        relevant[f"q{i}"] = {did}
    return InformationRetrievalEvaluator(
        queries=queries,
        corpus={did: text for text, did in doc_ids.items()},
        relevant_docs=relevant,
        name="validation",
        batch_size=batch_size,
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[10],
        write_csv=False,
        query_prompt_name="query" if query_prompt else None,
    )


# ----------------------------------------------------------------------------- processes
def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


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


# ----------------------------------------------------------------------------- train
@contextlib.contextmanager
def _no_vocabulary_warning():
    """Offline, peft cannot ask the hub whether the base's vocabulary changed and warns on
    every save; LoRA on attention and feed-forward layers never changes it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not find a config file")
        yield


def train(
    pairs: pd.DataFrame,
    recipe: Recipe,
    output_dir: str | os.PathLike,
    resume: bool = True,
    progress: bool | None = None,
    *,
    device: str | None = None,
    gather_across_devices: bool = False,
    stop_after_steps: int | None = None,
    record_anchors_to: str | os.PathLike | None = None,
    validate: bool = True,
) -> TrainResult:
    """Train a LoRA adapter; see the module docstring for what is written.

    `resume`: continue from the last checkpoint in `output_dir/checkpoints` (made with the
    same recipe and data) instead of starting over. `stop_after_steps`: stop (with a
    checkpoint) once that global step is reached, without writing the model: the run is
    left to be resumed, as after an interruption or in a time-boxed session. `validate`:
    score the validation pairs every `eval_steps` (False: a run that is scored elsewhere,
    such as a sweep point, saves that time; its history then has no validation column)."""
    import torch
    from peft.tuners.tuners_utils import cast_adapter_dtype
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import TrainerCallback, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    start = time.time()
    _check_pairs(pairs)
    output_dir = Path(output_dir)
    ckpt_dir = output_dir / CHECKPOINTS
    params = recipe.run_params(pairs)
    train_dataset = _train_dataset(pairs, recipe.use_hard_negatives)

    # Checkpoints belong to one recipe and data: never resume another run's.
    marker = ckpt_dir / RUN_PARAMS_FILE
    last = get_last_checkpoint(str(ckpt_dir)) if resume and ckpt_dir.is_dir() else None
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
        write_json(marker, {"params_hash": params_hash(params), "params": params})
    _barrier()

    set_seed(recipe.train_seed)
    local_rank = os.environ.get("LOCAL_RANK")
    if device is None and local_rank is not None and torch.cuda.is_available():
        device = f"cuda:{local_rank}"  # each process its own GPU, not all of them on GPU 0
    model = recipe.load_base(device=device)
    model.add_adapter(recipe.lora_config(model))
    # peft gives the adapter its base layer's dtype: train it in float32 beside bf16 weights
    cast_adapter_dtype(model.transformers_model, "default")
    if recipe.gradient_checkpointing:
        model.transformers_model.enable_input_require_grads()
    evaluator = (
        build_evaluator(pairs, recipe.query_prompt, batch_size=recipe.batch_size)
        if validate
        else None
    )
    args = recipe.training_arguments(ckpt_dir, progress, evaluate=evaluator is not None)

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if stop_after_steps is not None and state.global_step >= stop_after_steps:
                control.should_save = True
                control.should_training_stop = True
            return control

    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        loss=recipe.loss(model, gather_across_devices),
        evaluator=evaluator,
        callbacks=[StopAfter()],
    )
    if record_anchors_to is not None:
        _record_anchors(trainer, Path(record_anchors_to))
    start_step = int(Path(last).name.rsplit("-", 1)[-1]) if last else 0
    if last:
        logger.info("resuming from %s", last)
    # checkpoints save the adapter too; the frozen layers run once per distinct text
    with _no_vocabulary_warning(), frozen_lower_layers(model, recipe.frozen_layers(model)):
        trainer.train(resume_from_checkpoint=last)
    state = trainer.state
    history = pd.DataFrame(state.log_history)
    if "step" in history:
        history = history.sort_values("step", kind="stable").reset_index(drop=True)
    finished = state.global_step >= state.max_steps
    seconds = time.time() - start
    result = TrainResult(
        output_dir, history, state.global_step, finished, seconds, last, start_step
    )
    result.model = model
    if not finished:
        return result

    if _rank() == 0:
        with atomic_dir(output_dir) as tmp, _no_vocabulary_warning():
            model.save_pretrained(str(tmp))  # modules, adapter, tokenizer, model card
            history.to_csv(tmp / HISTORY_FILE, index=False)
            write_manifest(
                tmp,
                kind=ARTIFACT_KIND,
                params=params,
                inputs={"pairs": params["data_hash"]},
                seconds=seconds,
                extra={
                    "global_step": state.global_step,
                    "resumed_from": last,
                    "world_size": _world_size(),
                    "n_train_pairs": len(train_dataset),
                },
            )
    _barrier()
    return result


def load_trained(output_dir: str | os.PathLike, device: str | None = None):
    """The model of a finished run: `SentenceTransformer(folder)` (the base loaded by its
    recorded reference, the adapter applied), in eval mode. The adapter is not merged
    into the weights: on the teaching model it adds a few rank-16 products to two layers."""
    if load_manifest(output_dir) is None:
        raise InputError(f"{output_dir} holds no finished training run; run notebook 02_train_lora")
    return load_model(output_dir, device=device, dtype=Recipe.of_run(output_dir).dtype).eval()


def load_history(output_dir: str | os.PathLike) -> pd.DataFrame:
    path = Path(output_dir) / HISTORY_FILE
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def train_or_load(
    pairs: pd.DataFrame, recipe: Recipe, output_dir: str | os.PathLike, **kwargs
) -> TrainResult:
    """Load-or-compute: load the finished run in `output_dir` if it was made with the same
    recipe and data, else train (resuming where possible)."""
    if is_current(output_dir, recipe.run_params(pairs)):
        manifest = load_manifest(output_dir) or {}
        return TrainResult(
            Path(output_dir),
            load_history(output_dir),
            int(manifest.get("global_step", 0)),
            True,
            0.0,
            loaded=True,
            model=load_trained(output_dir, device=kwargs.get("device")),
        )
    return train(pairs, recipe, output_dir, **kwargs)


# ----------------------------------------------------------------------------- main run
def record_main_run(models_dir: str | os.PathLike, name: str) -> Path:
    """Mark run `name` as the study's main model (notebook 02's): the evaluation chapter
    compares it with its base, the ablations take their recipe from it."""
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
    if load_manifest(folder) is None:
        raise InputError(
            f"the main model {folder} is missing or unfinished; run notebook 02_train_lora again"
        )
    return folder


def trained_runs(models_dir: str | os.PathLike) -> dict[str, Path]:
    """Every finished run in `models_dir`, by name."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and load_manifest(p)}


def adapter_megabytes(output_dir: str | os.PathLike) -> float:
    """Size on disk of a finished run's adapter weights, in MB."""
    return (Path(output_dir) / "adapter_model.safetensors").stat().st_size / 1e6
