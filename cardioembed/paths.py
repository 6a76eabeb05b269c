"""Where things live: the project root and the run folders under `runs/<profile>/`."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "CARDIOEMBED_ROOT"


def project_root(start: Path | None = None) -> Path:
    """The repository root: $CARDIOEMBED_ROOT, else the nearest folder above `start`
    (default: the working directory) that holds `_toc.yml` and `cardioembed/`, else the
    folder that holds this package. Notebooks run from `notebooks/`, from the root, or
    from papermill's working folder, and all find the same root."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "cardioembed").is_dir():
            return folder
    return Path(__file__).resolve().parent.parent


def run_dir(profile: str, runs_root: str | os.PathLike = "") -> Path:
    """The folder of one profile's artifacts: `<runs_root>/<profile>`, where an empty
    `runs_root` means `<project root>/runs`."""
    if not profile or "/" in profile or profile.startswith("."):
        from .errors import ParameterError

        raise ParameterError("profile", profile, "give a plain name such as 'teaching'")
    root = Path(runs_root) if str(runs_root) else project_root() / "runs"
    return root / profile
