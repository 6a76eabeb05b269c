"""Before any notebook runs: can every model and input the run needs be had here?

Each model the selected notebooks will load is resolved as training resolves it
(`models.resolve_base`); a hub id must be in the local Hugging Face cache or on the
reachable hub, where it is looked up, so that a misspelt id fails in seconds, not an
hour into the run. One `InputError` names every problem and what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cardioembed import models
from cardioembed.errors import InputError

logger = logging.getLogger(__name__)

TEXTBOOKS_FOLDER = "textbooks"  # in <runs_root>/<profile>/: the rehearsal textbook


def _hub_problem(repo_id: str, parameter: str, offline: bool) -> str | None:
    """Why `repo_id` cannot be had from the local hub cache or the reachable hub, or None
    (also when the answer is unclear: the load itself will say)."""
    from huggingface_hub import errors, hf_hub_download

    try:
        hf_hub_download(repo_id, "config.json", local_files_only=offline)
    except errors.GatedRepoError:
        return (
            "is gated on the hub: accept its terms on its hub page and log in "
            "(`hf auth login`), or give a local copy"
        )
    except errors.RepositoryNotFoundError:
        return "is not a model on the Hugging Face hub: check the id, or give a local folder"
    except errors.LocalEntryNotFoundError:
        name = repo_id.split("/")[-1]
        return (
            f"is not in the local Hugging Face cache and the hub is out of reach. On a "
            f"machine with access run `hf download {repo_id} --local-dir /path/to/{name}`, "
            f"copy the folder here and pass -p {parameter}=/path/to/{name} (or run where the "
            "hub is reachable, with HF_HUB_OFFLINE unset)"
        )
    except errors.HFValidationError:
        return "is neither a folder nor a valid hub id such as 'Qwen/Qwen3-Embedding-8B'"
    except Exception:  # a network hiccup: let the load itself decide
        return None
    return None


def model_problem(parameter: str, value: Any, offline: bool) -> str | None:
    """None when the model named by `value` can be loaded here, else what to do."""
    try:
        location, is_hub = models.resolve_base(value, parameter)
    except InputError as exc:  # its message names the parameter
        return str(exc)
    except ImportError as exc:  # a package that ships a model
        return f"{parameter} {value!r}: {exc}"
    problem = _hub_problem(location, parameter, offline) if is_hub else None
    return f"{parameter} {value!r} {problem}" if problem else None


def preflight(values: Mapping[str, Any], declared: set[str], run_folder: Path) -> dict[str, Any]:
    """Check what the run will load; returns `values` with `textbook_dir: rehearsal`
    replaced by the written folder. `declared`: the parameters of the selected notebooks
    (a model of a notebook that does not run is not checked). Raises InputError naming
    every problem."""
    from cardioembed.curation.rehearsal import REHEARSAL, write_rehearsal_textbooks

    values = dict(values)
    problems = []
    if "textbook_dir" in declared and "textbooks" in (values.get("sources") or ()):
        if values.get("textbook_dir") == REHEARSAL:
            folder = run_folder / TEXTBOOKS_FOLDER
            if not folder.is_dir():
                logger.info("writing the rehearsal textbook into %s", folder)
            values["textbook_dir"] = str(write_rehearsal_textbooks(folder))
        books = values.get("textbook_dir")
        if not isinstance(books, str) or not books.strip():
            problems.append(
                "textbook_dir is empty, and the source 'textbooks' needs a folder of .pdf, "
                ".epub, .txt or .md books: -p textbook_dir=/path/to/books (or "
                "-p textbook_dir=rehearsal for a small textbook written from the open sources)"
            )
        elif not Path(books).is_dir():
            problems.append(f"textbook_dir {books!r}: no such folder; give the folder of the books")
    checks = []
    if "base_model" in declared:
        checks.append(("base_model", values.get("base_model")))
    if "paraphrase_model" in declared and "paraphrase" in (values.get("pair_kinds") or ()):
        checks.append(("paraphrase_model", values.get("paraphrase_model")))
    if "negatives" in declared and values.get("negatives") == "mined":
        checks.append(("negatives_model", values.get("negatives_model")))
    extra = values.get("extra_models") if "extra_models" in declared else None
    if isinstance(extra, Mapping):
        checks += [(f"extra_models[{name!r}]", folder) for name, folder in extra.items()]
    offline = models.local_cache_only_if_unreachable()
    if offline and not models.offline_requested():
        logger.info("the Hugging Face hub is out of reach: models come from the local cache")
    problems += [model_problem(parameter, value, offline) for parameter, value in checks]
    if any(problems):
        raise InputError(
            "this run cannot start here, nothing was executed:\n"
            + "\n".join(f"  - {p}" for p in problems if p)
        )
    return values
