"""Before any notebook runs: every folder the run writes is writable, and every model and
input it loads is here (a hub id in the local cache or on the reachable hub), so that a
misspelt id fails in seconds, not an hour into the run."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cardioembed import models
from cardioembed.errors import InputError
from cardioembed.paths import CACHE_ENV, cache_dir

logger = logging.getLogger(__name__)

TEXTBOOKS_FOLDER = "textbooks"  # in <runs_root>/<profile>/: the rehearsal textbook


def model_problem(parameter: str, value: Any, offline: bool) -> str | None:
    """None when the model `value` can be loaded here (as `models.resolve_base` finds it,
    then its config.json from the hub or its local cache), else what to do."""
    from huggingface_hub import hf_hub_download

    model = f"{parameter} {value!r}"
    name, revision = models.split_revision(value)
    if revision and not parameter.startswith("extra_models"):
        return (
            f"{model}: a revision (@...) is taken by extra_models only; give {parameter} a hub "
            f"id, or a folder made by `hf download {name} --revision {revision} --local-dir "
            "/path/to/folder`"
        )
    try:
        location, is_hub = models.resolve_base(name, parameter)
    except InputError as exc:  # its message names the parameter
        return str(exc)
    except ImportError as exc:  # a package that ships a model
        return f"{model}: {exc}"
    try:
        if is_hub:
            hf_hub_download(location, "config.json", revision=revision, local_files_only=offline)
    except Exception as exc:  # noqa: BLE001 - a network hiccup (None): the load itself decides
        return models.hub_problem(exc, parameter, value)
    return None


def _unwritable(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _refuse(problems: list[str | None]) -> None:
    if any(problems):
        raise InputError(
            "this run cannot start here, nothing was executed:\n"
            + "\n".join(f"  - {p}" for p in problems if p)
        )


def preflight(
    values: Mapping[str, Any], declared: set[str], run_folder: Path, published: Path | None = None
) -> dict[str, Any]:
    """`values` with `textbook_dir: rehearsal` replaced by the written folder, or one
    InputError naming every problem. `declared`: the selected notebooks' parameters."""
    from cardioembed.curation.rehearsal import REHEARSAL, write_rehearsal_textbooks

    values = dict(values)
    options = {published.parent: "--output-dir /path/to/folder"} if published else {}
    options[run_folder] = "-p runs_root=/path/to/folder"  # the one to give if both are one
    _refuse(
        [
            f"{folder} cannot be written ({why}); give a writable folder with {option}"
            for folder, option in options.items()
            if (why := _unwritable(folder))
        ]
    )
    if why := _unwritable(cache_dir()):
        logger.warning(
            f"the model cache {cache_dir()} cannot be written ({why}); this run keeps its "
            f"converted models in {run_folder / 'cache'}. Set {CACHE_ENV} to a writable "
            "folder to convert them once for every run"
        )
        os.environ[CACHE_ENV] = str(run_folder / "cache")
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
    used = {  # each model parameter, and whether this run loads that model
        "base_model": True,
        "paraphrase_model": "paraphrase" in (values.get("pair_kinds") or ()),
        "negatives_model": values.get("negatives") == "mined",
    }
    checks = [(name, values[name]) for name, use in used.items() if use and name in declared]
    extra = values["extra_models"] if "extra_models" in declared else {}  # a dict: checked
    checks += [(f"extra_models[{name!r}]", model) for name, model in extra.items()]
    # notebooks 05 and 06 give their own models these names: a baseline would replace one
    if taken := sorted(set(extra) & {"base", "bm25", "trained"}):
        problems.append(
            f"extra_models names {', '.join(taken)}: the study's own models (the untrained "
            "base, BM25, notebook 06's trained model) have these names; give the baselines "
            "other names"
        )
    asked = models.offline_requested()  # before the probe, which may switch offline
    offline = models.local_cache_only_if_unreachable()
    if offline and not asked:
        logger.info("the Hugging Face hub is out of reach: models come from the local cache")
    _refuse(problems + [model_problem(parameter, value, offline) for parameter, value in checks])
    return values
