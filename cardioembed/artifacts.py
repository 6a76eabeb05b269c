"""Artifacts: files written atomically, each folder with a `manifest.json` beside it.

Notebooks talk to each other only through these folders. An artifact folder without a
manifest does not exist: `load_manifest` returns None for it, so an interrupted write is
redone rather than trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cardioembed.envinfo import environment_record

MANIFEST = "manifest.json"


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
        "params_hash": params_hash(params),
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


def is_current(folder: str | os.PathLike, params: Mapping[str, Any]) -> bool:
    """True if `folder` holds a finished artifact made with exactly these parameters
    (load-or-compute: a rebuild reuses it)."""
    manifest = load_manifest(folder)
    return manifest is not None and manifest.get("params_hash") == params_hash(params)
