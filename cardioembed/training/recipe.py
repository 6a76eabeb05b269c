"""LoRA training with InfoNCE and in-batch negatives (the CardioEmbed recipe). A `Recipe`
is notebook 02's parameters; its methods build the libraries' objects that notebook 02 shows,
`train` puts them together for the sweeps and the CLI, `TrainingRun` keeps one run folder."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from datasets import Dataset
from peft import LoraConfig, TaskType
from peft.tuners.tuners_utils import cast_adapter_dtype
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer import losses, modules
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
from transformers import BitsAndBytesConfig, TrainerCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint

from cardioembed.artifacts import (
    MANIFEST,
    artifact_id,
    atomic_dir,
    is_current,
    load_manifest,
    write_json,
    write_manifest,
)
from cardioembed.errors import InputError, ParameterError, check_int, check_number
from cardioembed.models import (
    QWEN3_QUERY_TEMPLATE,
    has_absolute_positions,
    load_model,
    load_resolved,
    model_identity,
)
from cardioembed.models import torch_dtype as resolve_dtype
from cardioembed.profiles import check_values
from cardioembed.training.frozen import frozen_lower_layers, store_dir

HISTORY_FILE = "history.csv"
ARTIFACT_KIND = "sentence-transformer-lora"
MAIN_RUN_FILE = "main.json"
# the study's pooling names -> sentence-transformers' pooling modes
POOLINGS = {"eos": "lasttoken", "mean": "mean", "cls": "cls", "weightedmean": "weightedmean"}
# Plain text in, the last hidden state out. Without this, sentence-transformers 6 renders
# every text of a tokenizer that has a chat template (SmolLM2's and Qwen3's do) through
# that template as a chat message, and puts the query prompt in a system message.
TEXT_ONLY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
# Offline, peft warns on every save that it cannot ask the hub whether the base's vocabulary
# changed; LoRA on attention and feed-forward layers never changes it.
warnings.filterwarnings("ignore", message="Could not find a config file")


def scale_from_temperature(tau: float) -> float:
    """The InfoNCE logit scale for temperature `tau`: 1/tau (0.05 -> 20), computed here only."""
    return 1.0 / check_number("temperature", tau, 1e-9, 1e9, "a number > 0, such as 0.05")


@dataclass(frozen=True)
class Recipe:
    """Notebook 02's parameters, checked once: a bad value is a ParameterError."""

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
    quantization: str

    def __post_init__(self):
        object.__setattr__(self, "train_kinds", tuple(self.train_kinds))  # hashable
        # base_model is checked where it is resolved (`models.resolve_base`)
        if not self.lora_target_modules.strip():
            expected = "'all-linear' or comma-separated module names such as 'q_proj,v_proj'"
            raise ParameterError("lora_target_modules", "", expected)
        if self.pooling not in POOLINGS:
            raise ParameterError("pooling", self.pooling, f"one of {sorted(POOLINGS)}")
        check_int("max_seq_length", self.max_seq_length, 2, "an integer >= 2")
        check_int("lora_rank", self.lora_rank, 1, "an integer >= 1")
        check_number("lora_alpha", self.lora_alpha, 1e-9, math.inf, "a positive number")
        check_number("lora_dropout", self.lora_dropout, 0, 0.999, "a number in [0, 1)")
        check_int("lora_top_layers", self.lora_top_layers, 0, "0 (all) or how many last layers")
        scale_from_temperature(self.temperature)
        check_number("epochs", self.epochs, 1e-9, math.inf, "a number > 0")
        check_int("batch_size", self.batch_size, 2, "an integer >= 2 (in-batch negatives)")
        check_number("learning_rate", self.learning_rate, 1e-12, math.inf, "a number > 0")
        check_number("warmup_ratio", self.warmup_ratio, 0, 0.999, "a number in [0, 1)")
        check_int("mini_batch_size", self.mini_batch_size, 0, "0 (plain loss) or a GradCache size")
        check_int("train_seed", self.train_seed, 0, "an integer >= 0")
        check_int("eval_steps", self.eval_steps, 1, "an integer >= 1")
        if check_int("max_steps", self.max_steps, -1, "-1 (use epochs) or >= 1") == 0:
            raise ParameterError("max_steps", 0, "-1 (use epochs) or an integer >= 1")
        resolve_dtype(self.dtype)
        if self.quantization not in ("none", "int8"):
            raise ParameterError("quantization", self.quantization, "one of none, int8")

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> Recipe:
        """The recipe from notebook 02's parameters (other names ignored), type-checked."""
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**check_values(values, "02_train_lora", names))

    @classmethod
    def of_run(cls, folder: str | os.PathLike) -> Recipe:
        manifest = load_manifest(folder)
        if manifest is None or "recipe" not in manifest.get("params", {}):
            raise InputError(f"{folder} holds no finished training run; run notebook 02_train_lora")
        return cls.from_parameters(manifest["params"]["recipe"])

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "train_kinds": list(self.train_kinds)}

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)

    @property
    def query_prompt(self) -> str | None:
        """The text put before every query: Qwen3's form around a task, a full prompt (one
        that holds "Query:") as given, or None."""
        if not self.query_instruction or "Query:" in self.query_instruction:
            return self.query_instruction or None
        return QWEN3_QUERY_TEMPLATE.format(task=self.query_instruction)

    def load_base(self, device: str | None = None):
        """The untrained model, Transformer -> Pooling -> Normalize, its weights in `dtype`
        or its linear layers in 8 bits (bitsandbytes, as the paper's base). The query
        instruction is the prompt named "query" (`encode(texts, prompt_name="query")`)."""
        model_kwargs = {"dtype": resolve_dtype(self.dtype)}
        if self.quantization == "int8":
            model_kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        transformer = load_resolved(
            self.base_model,
            "base_model",
            lambda location: modules.Transformer(
                location,
                max_seq_length=self.max_seq_length,
                model_kwargs=model_kwargs,
                # last-token pooling needs a decoder to pad on the LEFT: with right padding
                # the "last token" of a short text is padding (Qwen3-Embedding's model card)
                processor_kwargs={"padding_side": "left" if self.pooling == "eos" else "right"},
                modality_config=TEXT_ONLY,
                module_output_name="token_embeddings",
            ),
        )
        tokenizer = transformer.tokenizer
        if self.pooling == "eos" and has_absolute_positions(transformer.model):
            # Left padding would shift the learned absolute positions of an encoder such as
            # BERT (measured: 0.19 max difference between a text alone and in a batch);
            # last-token pooling finds the last real token under either padding.
            tokenizer.padding_side = "right"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(transformer.model.config, "pad_token_id", None) is None:
            transformer.model.config.pad_token_id = tokenizer.pad_token_id
        pooling = modules.Pooling(
            transformer.get_embedding_dimension(), pooling_mode=POOLINGS[self.pooling]
        )
        return SentenceTransformer(
            modules=[transformer, pooling, modules.Normalize()],
            device=device,
            prompts={"query": self.query_prompt} if self.query_prompt else None,
            similarity_fn_name="cosine",
        )

    def frozen_layers(self, model) -> int:
        """How many lower layers of `model` the adapter leaves frozen (0: none)."""
        if not self.lora_top_layers:
            return 0
        return int(model.transformers_model.config.num_hidden_layers) - self.lora_top_layers

    def lora_config(self, model):
        """peft's LoraConfig. "all-linear" is peft's choice of every attention and
        feed-forward projection; with `lora_top_layers` peft needs their names."""
        hf = model.transformers_model
        targets: str | list[str] = self.lora_target_modules.strip()
        if targets != "all-linear":
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        elif self.lora_top_layers:
            targets = sorted(
                {
                    name.rsplit(".", 1)[-1]
                    for name, module in hf.named_modules()
                    if isinstance(module, torch.nn.Linear) and "pooler" not in name
                }
            )
        n_frozen = self.frozen_layers(model)
        if n_frozen < 0:
            expected = f"at most {hf.config.num_hidden_layers} for this model"
            raise ParameterError("lora_top_layers", self.lora_top_layers, expected)
        return LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=targets,
            # BERT's pooler is unused by every pooling here: LoRA on it would be dead weight
            # (and trips DistributedDataParallel's unused-parameter check)
            exclude_modules=r".*pooler.*" if hasattr(hf, "pooler") else None,
            layers_to_transform=list(range(n_frozen, n_frozen + self.lora_top_layers)) or None,
        )

    def loss(self, model, gather_across_devices: bool = False):
        """InfoNCE with in-batch negatives, scale = 1/tau; GradCache (the same loss in less
        memory) when `mini_batch_size` > 0."""
        scale = scale_from_temperature(self.temperature)
        kwargs = {"scale": scale, "gather_across_devices": gather_across_devices}
        if not self.mini_batch_size:
            return losses.MultipleNegativesRankingLoss(model, **kwargs)
        return losses.CachedMultipleNegativesRankingLoss(
            model, mini_batch_size=self.mini_batch_size, **kwargs
        )

    def training_arguments(self, output_dir: str | os.PathLike, evaluate: bool = True):
        """sentence-transformers' training arguments (no progress bar with TQDM_DISABLE=1)."""
        distributed, cpu = world_size() > 1, not torch.cuda.is_available()
        return SentenceTransformerTrainingArguments(
            output_dir=str(output_dir),
            num_train_epochs=self.epochs,
            max_steps=self.max_steps,
            per_device_train_batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            warmup_steps=self.warmup_ratio,  # transformers 5: a float < 1 is a ratio
            lr_scheduler_type="cosine",
            seed=self.train_seed,
            data_seed=self.train_seed,
            bf16=resolve_dtype(self.dtype) == torch.bfloat16,  # mixed precision, bf16 weights
            # duplicates in a batch would be false negatives
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            prompts={"anchor": self.query_prompt} if self.query_prompt else None,
            eval_strategy="steps" if evaluate else "no",
            eval_steps=self.eval_steps,
            save_strategy="steps",
            save_steps=max(self.eval_steps, 50),  # checkpoints no more often than 50 steps
            save_total_limit=2,
            logging_steps=1,
            report_to="none",
            disable_tqdm=os.environ.get("TQDM_DISABLE") == "1",
            dataloader_drop_last=distributed,
            dataloader_pin_memory=torch.cuda.is_available(),  # pinning warns on a CPU
            activation_checkpointing=self.gradient_checkpointing,
            # without use_cpu, transformers refuses bf16 on a CPU and, under torchrun, falls
            # back to one process per copy of the data
            use_cpu=cpu,
            ddp_backend="gloo" if distributed and cpu else None,
            ddp_find_unused_parameters=False if distributed else None,
        )

    def training_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """The corpus pairs of `train_kinds`, every split (an unknown kind: the corpus's kinds)."""
        if missing := {"anchor", "positive", "split", "kind"} - set(pairs.columns):
            raise InputError(f"pairs lack the column(s) {sorted(missing)}; use notebook 01's pairs")
        kinds, available = list(self.train_kinds), sorted(pairs["kind"].dropna().unique())
        if not kinds or any(k not in available for k in kinds):
            raise ParameterError(
                "train_kinds",
                kinds,
                f"a non-empty list of kinds from the corpus: {', '.join(available)}",
            )
        chosen = pairs[pairs["kind"].isin(kinds)].reset_index(drop=True)
        if not (chosen["split"] == "train").any():
            raise ParameterError("train_kinds", kinds, "kinds that have train pairs in the corpus")
        return chosen

    def run_params(self, pairs: pd.DataFrame, gather_across_devices: bool = False) -> dict:
        """A run's key besides its code (`artifact_id` adds that)."""
        return {
            "recipe": self.to_dict(),
            "data_hash": data_fingerprint(pairs),
            "base": model_identity(self.base_model),
            "dtype": str(resolve_dtype(self.dtype)).removeprefix("torch."),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "processes": world_size(),
            "gather_across_devices": bool(gather_across_devices and world_size() > 1),
        }

    def run_name(self, pairs: pd.DataFrame, gather_across_devices: bool = False) -> str:
        """A readable folder name, `minilm-eos-r16-tau0.05-e1-b64-lr2e-3-s42-<key hash>`."""
        base = Path(self.base_model.rstrip("/")).name or self.base_model
        base = "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in base.lower()).strip("-.")
        steps = f"m{self.max_steps}" if self.max_steps > 0 else f"e{self.epochs:g}"
        lr = f"{self.learning_rate:.0e}" if self.learning_rate < 1e-2 else f"{self.learning_rate:g}"
        lr = lr.replace("e-0", "e-").replace("e+0", "e")
        key = artifact_id(ARTIFACT_KIND, self.run_params(pairs, gather_across_devices))
        return (
            f"{base or 'model'}-{self.pooling}-r{self.lora_rank}-tau{self.temperature:g}-{steps}"
            f"-b{self.batch_size}-lr{lr}-s{self.train_seed}-{key[:6]}"
        )


def data_fingerprint(pairs: pd.DataFrame) -> str:
    """A stable hash of the pairs that training uses (order matters: it seeds batches)."""
    cols = [c for c in ("anchor", "positive", "negative", "split") if c in pairs.columns]
    frame = pairs[cols].astype("string").fillna("<NA>")
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(cols).encode()).hexdigest()[:16]


def train_dataset(pairs: pd.DataFrame, use_hard_negatives: bool):
    """The train split as a `datasets.Dataset` of (anchor, positive[, negative]) columns."""
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
    return Dataset.from_pandas(train[columns].astype(str).reset_index(drop=True))


def validation_evaluator(pairs: pd.DataFrame, recipe: Recipe):
    """Each validation anchor finds its positive among all validation positives (or None)."""
    val = pairs[pairs["split"] == "validation"]
    if val.empty:
        return None
    documents = {text: f"d{i}" for i, text in enumerate(dict.fromkeys(val["positive"]))}
    return InformationRetrievalEvaluator(
        queries={f"q{i}": a for i, a in enumerate(val["anchor"])},
        corpus={did: text for text, did in documents.items()},
        relevant_docs={f"q{i}": {documents[p]} for i, p in enumerate(val["positive"])},
        name="validation",
        batch_size=recipe.batch_size,
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[10],
        write_csv=False,
        query_prompt_name="query" if recipe.query_prompt else None,
    )


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class RandomStateAcrossValidation(TrainerCallback):
    """Restores torch's generator after each evaluation (its DataLoader draws a seed), so a
    run that validates trains as one that does not: `validate` is no part of a run's key."""

    fork = None

    # the trainer's own flow callback, called first, has set should_evaluate by
    # on_step_end; on_evaluate comes before the checkpoint saves the random state
    def on_step_end(self, args, state, control, **kwargs):
        if control.should_evaluate:
            devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
            self.fork = torch.random.fork_rng(devices=devices)
            self.fork.__enter__()

    def on_evaluate(self, args, state, control, **kwargs):
        self.close()

    def close(self):
        """Restore the generator; nothing to do when no evaluation is under way."""
        if self.fork is not None:
            self.fork.__exit__(None, None, None)
            self.fork = None


class TrainingRun:
    """One run folder: its key, checkpoints, resuming and the atomic save (notebook 02)."""

    def __init__(self, pairs, recipe: Recipe, folder, gather_across_devices: bool = False):
        self.recipe, self.folder = recipe, Path(folder)
        self.params = recipe.run_params(pairs, gather_across_devices)
        self.checkpoints = self.folder / "checkpoints"
        self.started = time.time()
        self.resumed_from: str | None = None

    @property
    def finished(self) -> bool:
        """A finished run with this key (parameters, data, base and code)."""
        return is_current(self.folder, ARTIFACT_KIND, self.params)

    def resume_from(self, resume: bool = True) -> str | None:
        """The last checkpoint of this very run (never another run's); `resume=False`
        removes earlier checkpoints."""
        key = artifact_id(ARTIFACT_KIND, self.params)
        marker = self.checkpoints / "run_key.json"
        last = None
        if resume and self.checkpoints.is_dir():
            last = get_last_checkpoint(str(self.checkpoints))
        if last is not None:
            recorded = json.loads(marker.read_text()).get("key") if marker.is_file() else None
            if recorded != key:
                raise InputError(
                    f"{self.checkpoints} holds checkpoints of a run with other parameters, "
                    "data or code; remove that folder, or train with resume=False"
                )
        if rank() == 0:
            if not resume and self.checkpoints.exists():
                shutil.rmtree(self.checkpoints)
            write_json(marker, {"key": key, "params": self.params})
        _barrier()
        self.resumed_from = last
        return last

    @contextlib.contextmanager
    def training(self, trainer):
        """Around `trainer.train()`: frozen layers computed once per text, validation that
        keeps the random state."""
        model = trainer.model
        store = store_dir(self.folder.resolve().parent.parent)  # runs/<profile>/models/<run>
        callback = RandomStateAcrossValidation()
        trainer.add_callback(callback)
        try:
            with frozen_lower_layers(model, self.recipe.frozen_layers(model), store):
                yield
        finally:
            callback.close()  # an evaluation that raised
            trainer.remove_callback(callback)

    def save(self, trainer) -> None:
        """The model folder, written atomically on rank 0 (the checkpoints go)."""
        if rank() == 0:
            # peft keeps target_modules as a set and writes it in the process's hash order:
            # sorted, identical runs write identical files
            for config in trainer.model.transformers_model.peft_config.values():
                if isinstance(config.target_modules, set):
                    config.target_modules = sorted(config.target_modules)
            with atomic_dir(self.folder) as tmp:
                trainer.model.save_pretrained(str(tmp))
                pd.DataFrame(trainer.state.log_history).to_csv(tmp / HISTORY_FILE, index=False)
                write_manifest(
                    tmp,
                    kind=ARTIFACT_KIND,
                    params=self.params,
                    inputs={"pairs": self.params["data_hash"], "base": self.params["base"]},
                    seconds=time.time() - self.started,
                    extra={
                        "global_step": trainer.state.global_step,
                        "resumed_from": self.resumed_from,
                        "world_size": world_size(),
                        "n_train_pairs": len(trainer.train_dataset),
                    },
                )
        _barrier()


@dataclass
class TrainResult:
    history: pd.DataFrame
    global_step: int
    finished: bool
    seconds: float
    model: Any = dataclasses.field(default=None, repr=False)
    loaded: bool = False
    resumed_from: str | None = None


def train(
    pairs: pd.DataFrame,
    recipe: Recipe,
    output_dir: str | os.PathLike,
    resume: bool = True,
    *,
    gather_across_devices: bool = False,
    stop_after_steps: int | None = None,
    callbacks: list | None = None,
    validate: bool = True,
) -> TrainResult:
    """Notebook 02's steps into `output_dir`. `stop_after_steps`: stop with a checkpoint,
    as after an interruption; `validate=False`: a sweep point is scored elsewhere."""
    run = TrainingRun(pairs, recipe, output_dir, gather_across_devices)
    dataset = train_dataset(pairs, recipe.use_hard_negatives)
    last = run.resume_from(resume)
    local_rank = os.environ.get("LOCAL_RANK")
    gpu = local_rank is not None and torch.cuda.is_available()
    set_seed(recipe.train_seed)
    # each process its own GPU, not all of them on GPU 0
    model = recipe.load_base(device=f"cuda:{local_rank}" if gpu else None)
    model.add_adapter(recipe.lora_config(model))
    # peft gives the adapter its base layer's dtype: train it in float32 beside bf16 weights
    cast_adapter_dtype(model.transformers_model, "default")
    evaluator = validation_evaluator(pairs, recipe) if validate else None

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if stop_after_steps is not None and state.global_step >= stop_after_steps:
                control.should_save = control.should_training_stop = True

    trainer = SentenceTransformerTrainer(
        model=model,
        args=recipe.training_arguments(run.checkpoints, evaluate=evaluator is not None),
        train_dataset=dataset,
        loss=recipe.loss(model, gather_across_devices),
        evaluator=evaluator,
        callbacks=[StopAfter(), *(callbacks or [])],
    )
    with run.training(trainer):
        trainer.train(resume_from_checkpoint=last)
    step = trainer.state.global_step
    finished = step >= trainer.state.max_steps
    if finished:
        run.save(trainer)
    history = pd.DataFrame(trainer.state.log_history)
    return TrainResult(history, step, finished, time.time() - run.started, model, resumed_from=last)


def load_trained(output_dir: str | os.PathLike, device: str | None = None):
    """The model of a finished run (`models.load_model`), in eval mode."""
    return load_model(output_dir, device=device, dtype=Recipe.of_run(output_dir).dtype).eval()


def load_history(output_dir: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(Path(output_dir) / HISTORY_FILE)


def train_or_load(
    pairs: pd.DataFrame, recipe: Recipe, output_dir: str | os.PathLike, **kwargs
) -> TrainResult:
    """The finished run in `output_dir` if its key matches, else trained (again)."""
    if TrainingRun(pairs, recipe, output_dir, kwargs.get("gather_across_devices", False)).finished:
        step = int(load_manifest(output_dir)["global_step"])
        model = load_trained(output_dir)
        return TrainResult(load_history(output_dir), step, True, 0.0, model, loaded=True)
    return train(pairs, recipe, output_dir, **kwargs)


def record_main_run(models_dir: str | os.PathLike, name: str) -> Path:
    """Mark run `name` as the study's main model, the one notebooks 03-06 start from."""
    return write_json(Path(models_dir) / MAIN_RUN_FILE, {"run_name": name})


def main_run(models_dir: str | os.PathLike) -> Path:
    """The folder of the main model recorded by notebook 02."""
    pointer = Path(models_dir) / MAIN_RUN_FILE
    if not pointer.is_file():
        raise InputError(
            f"no main model recorded in {models_dir}; run notebook 02_train_lora "
            "first (cardioembed run --only 02)"
        )
    folder = Path(models_dir) / json.loads(pointer.read_text())["run_name"]
    if load_manifest(folder) is None:
        raise InputError(
            f"the main model {folder} is missing or unfinished; run notebook 02_train_lora again"
        )
    return folder


def trained_runs(models_dir: str | os.PathLike) -> dict[str, Path]:
    """Every finished run in `models_dir`, by name."""
    runs = sorted(p.parent for p in Path(models_dir).glob(f"*/{MANIFEST}"))
    return {p.name: p for p in runs if load_manifest(p)}
