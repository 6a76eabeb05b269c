"""Execute the notebooks with papermill into a fresh folder, publish them only when all
succeeded (`run_profile`), and render the last published run with Jupyter Book."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cardioembed.artifacts import MANIFEST, atomic_dir
from cardioembed.book.preflight import preflight
from cardioembed.curation.rehearsal import REHEARSAL
from cardioembed.envinfo import environment_record, format_duration
from cardioembed.errors import InputError
from cardioembed.paths import project_root, run_dir
from cardioembed.profiles import (
    Profile,
    check_parameters,
    notebook_defaults,
    notebooks,
)

logger = logging.getLogger(__name__)

TIMES_TABLE = "notebook_times.md"  # in book/executed/; book/teaching.md includes it
STATUS_TABLE = "run_status.md"  # in book/executed/; book/status.md includes it
EXECUTED = "executed"
KEPT_FAILURES = 5  # failed runs whose executed notebooks are kept, each in its own folder
LOCK = "run.lock"  # in <runs_root>/<profile>/: held by the run of the profile
# The kernel runs in notebooks/: folders, and models given as folders, are made absolute
# from the working directory of the command.
PATH_PARAMETERS = ("runs_root", "textbook_dir")
MODEL_PARAMETERS = ("base_model", "paraphrase_model", "negatives_model")


class NotebookFailed(RuntimeError):
    """A notebook raised an error; the message names the notebook and the cell."""


def absolute_paths(params: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """`params` with relative folders made absolute from `base` (the working directory); a
    model is a folder when it exists there or is written as a path."""
    base = Path(base or Path.cwd())

    def absolute(value: Any, model: bool) -> Any:
        if not isinstance(value, str) or not value:
            return value
        path = Path(value).expanduser()
        written_as_path = path.is_absolute() or value.startswith(("./", "../"))
        if model and not (written_as_path or (base / path).is_dir()):
            return value  # a hub id or an alias
        return str((base / path).resolve())

    resolved = dict(params)
    for key, value in params.items():
        if key in PATH_PARAMETERS and not (key == "textbook_dir" and value == REHEARSAL):
            resolved[key] = absolute(value, model=False)  # the rehearsal's: by the preflight
        elif key in MODEL_PARAMETERS:
            resolved[key] = absolute(value, model=True)
        elif key == "extra_models" and isinstance(value, Mapping):
            resolved[key] = {k: absolute(v, model=True) for k, v in value.items()}
    return resolved


def execute_notebook(source: Path, output: Path, params: Mapping[str, Any], profile: str) -> float:
    """Execute `source` into `output` with its run record; `NotebookFailed` names the cell
    that raised."""
    import papermill
    import zmq
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    # The kernel's connection stays on this machine either way; encrypting it where zmq
    # can keeps the kernel's plain-text warning out of the run's output.
    config = Config()
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=dict(params),
            cwd=str(source.parent),
            kernel_name="python3",
            progress_bar=False,
            config=config,
            shutdown_kernel="immediate",  # on Ctrl-C, stop the kernel and its children now
        )
    except PapermillExecutionError as exc:
        first_line = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        raise NotebookFailed(
            f"{source.name} failed in the cell with execution count {exc.exec_count} "
            f"(starting `{first_line[:80]}`): {exc.ename}: {exc.evalue}"
        ) from None
    seconds = time.perf_counter() - started
    nb = json.loads(output.read_text())
    for cell in nb["cells"]:  # the book shows the parameters cell, not papermill's copy
        tags = cell["metadata"].get("tags", [])
        if "injected-parameters" in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
    nb["metadata"]["cardioembed"] = {
        "profile": profile,
        "parameters": dict(params),
        "seconds": round(seconds, 2),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment_record(),
    }
    output.write_text(json.dumps(nb, indent=1) + "\n")  # in the staging folder
    return seconds


def _manifests(folder: Path) -> dict[Path, int]:
    found = {}  # artifact folder -> the modification time of its manifest
    for path in folder.rglob(MANIFEST):
        with contextlib.suppress(OSError):  # replaced while we looked (torchrun takes no lock)
            found[path.parent] = path.stat().st_mtime_ns
    return found


def _written(before: Mapping[Path, int], folder: Path) -> str:
    changed = [p for p, mtime in _manifests(folder).items() if before.get(p) != mtime]
    counts = Counter((p.relative_to(folder).parts or (".",))[0] for p in changed)
    parts = [f"{k}/" + (f" ({n} artifacts)" if n > 1 else "") for k, n in counts.items()]
    return f"wrote {', '.join(parts)} in" if parts else "wrote no new artifact in"


def _show(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _replace(target: Path, *sources: Path, texts: Mapping[str, str] | None = None) -> Path:
    """Replace `target` in one rename by the files of `sources` (the later win) and `texts`."""
    with atomic_dir(target) as tmp:
        for source in sources:
            for path in source.iterdir() if source.is_dir() else ():
                if path.is_file() and not path.name.startswith("."):
                    shutil.copy2(path, tmp / path.name)
        for name, text in (texts or {}).items():
            (tmp / name).write_text(text)
    return target


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        who = json.loads(path.read_text())
        return f"the run of process {who['pid']}, started {who['started']} (`{who['command']}`)"
    return "another run"


@contextlib.contextmanager
def profile_lock(folder: Path, wait: bool = True) -> Iterator[None]:
    """One run per profile folder at a time: a second waits, or fails at once with
    `wait=False`, naming the holder that the lock file records. The OS frees the lock of a
    killed run; its record names it to the next run."""
    from filelock import FileLock, Timeout

    path = folder / LOCK

    def claim(fd: int) -> None:
        if os.pread(fd, 1, 0):  # the record of a run that ended without releasing: killed
            logger.info(f"{_holder(path)} ended without releasing {_show(folder)}: taken over")
        me = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**me, "command": " ".join(sys.argv)}).encode(), 0)

    lock = FileLock(path, on_acquired=claim)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        message = f"{_show(folder)} is in use by {_holder(path)}"
        if not wait:
            raise InputError(f"{message}; run again when it ends, or without --no-wait") from None
        logger.info(f"{message}: waiting until it ends (Ctrl-C to stop)")
        lock.acquire()
    except OSError as exc:  # a file system without file locks (some network storage)
        raise InputError(
            f"{path} cannot be locked ({exc.strerror or exc}), so two runs of the profile "
            "could collide; put the runs on a local disk with -p runs_root=/path/to/folder"
        ) from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # a lock file with a record: a killed run's
            os.truncate(path, 0)
        lock.release()


def _lost_inputs(folder: Path) -> list[str]:
    """The files the current corpus skipped or read with text lost (its files.csv)."""
    from cardioembed.curation.corpus import POINTER

    with contextlib.suppress(OSError, ValueError, KeyError):
        corpus = folder / "corpus" / json.loads((folder / "corpus" / POINTER).read_text())["corpus"]
        files = pd.read_csv(corpus / "files.csv", keep_default_na=False)
        return [f"      {r.status}: {r.reason}" for r in files.itertuples() if r.status != "used"]
    return []


def run_profile(
    profile: Profile,
    *,
    only: Iterable[str] = (),
    output_dir: Path | None = None,
    wait: bool = True,
) -> list[Path]:
    """Execute the selected notebooks; when all succeeded, publish them into `output_dir`
    (default `<run folder>/executed/`) and return their paths there."""
    import papermill

    root = project_root()
    declared = {nb: papermill.inspect_notebook(str(nb)) for nb in notebooks(root=root)}
    selected = notebooks(only, root)
    check_parameters(profile.params, declared, f"profile {profile.name!r}")
    params = absolute_paths(profile.params)
    folder = run_dir(profile.name, params.get("runs_root", ""))
    published = Path(output_dir).resolve() if output_dir else folder / EXECUTED
    # Fail now, not an hour in: every folder the run writes, every model and input it loads.
    defaults = {k: v for nb in selected for k, v in notebook_defaults(declared[nb]).items()}
    checked = preflight({**defaults, **params}, set(defaults), folder, published)
    params = {key: checked[key] for key in params}
    with profile_lock(folder, wait):
        kept = "no run had been published before"
        if published.is_dir():
            kept = f"the last successful run, in {_show(published)}, is unchanged"
        staging = Path(tempfile.mkdtemp(prefix=f".{published.name}.", dir=published.parent))
        source = selected[0]
        try:
            for index, source in enumerate(selected, 1):
                given = {key: value for key, value in params.items() if key in declared[source]}
                output, before = staging / source.name, _manifests(folder)
                try:
                    seconds = execute_notebook(source, output, given, profile.name)
                except NotebookFailed as exc:
                    failures = published.with_name(published.name + "-failed")
                    failed = _replace(failures / f"{datetime.now():%Y%m%d-%H%M%S-%f}", staging)
                    for old in sorted(failures.iterdir())[:-KEPT_FAILURES]:
                        shutil.rmtree(old, ignore_errors=True)
                    raise NotebookFailed(
                        f"{exc}\n  the executed notebook, with the traceback, is "
                        f"{_show(failed / source.name)}\n  {kept}"
                    ) from None
                lost = _lost_inputs(folder) if "textbook_dir" in declared[source] else []
                logger.info(
                    f"[{index}/{len(selected)}] {source.stem}  {format_duration(seconds)}  "
                    f"{_written(before, folder)} {_show(folder)}" + "".join(f"\n{x}" for x in lost)
                )
            _replace(published, published, staging)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"interrupted while running {source.stem} (profile {profile.name}); nothing "
                f"was lost: {kept}, and artifacts are only ever replaced whole"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [published / notebook.name for notebook in selected]


def _markdown(rows: list[dict]) -> str:
    # Text as written: no number parsing (a version 2.10 is not 2.1).
    frame = pd.DataFrame(rows, dtype=object).fillna("")
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


def times_table(records: Mapping[str, dict]) -> str:
    rows = [
        {
            "notebook": f"`{name}`",
            "profile": record["profile"],
            "time": format_duration(record["seconds"]),
            "finished": record["finished_at"][:16].replace("T", " "),
            "device": record["environment"]["device"],
            "CPU cores": record["environment"]["cpu_count"],
            "torch threads": record["environment"]["torch_threads"],
        }
        for name, record in records.items()
    ]
    total = format_duration(sum(record["seconds"] for record in records.values()))
    return _markdown([*rows, {"notebook": "total", "time": total}])


def status_table(records: Mapping[str, dict]) -> str:
    """The times table, then each environment the notebooks ran in."""
    environments: dict[str, list[str]] = {}
    for name, record in records.items():
        environments.setdefault(json.dumps(record["environment"], sort_keys=True), []).append(name)
    parts = [times_table(records)]
    for number, (key, names) in enumerate(environments.items(), 1):
        env = json.loads(key)
        title = "The environment" if len(environments) == 1 else f"Environment {number}"
        rows = {
            "Python": env["python"],
            "platform": env["platform"],
            "git commit": f"`{env['git_commit'] or 'unknown'}`",
            **{f"`{p}`": v or "not installed" for p, v in sorted(env["packages"].items())},
        }
        parts += [
            f"{title} ({', '.join(f'`{n}`' for n in names)}):\n",
            _markdown([{"what": k, "version": v} for k, v in rows.items()]),
        ]
    return "\n".join(parts)


def stage_executed(source: Path, root: Path) -> Path:
    """Replace `book/executed/` by the run's notebooks and the tables of their records."""
    how = "run `cardioembed run`"
    if not any(source.glob("*.ipynb")):
        raise InputError(f"no successful run to render: no executed notebooks in {source}; {how}")
    toc = yaml.safe_load((root / "_toc.yml").read_text()) or {}
    files = [toc.get("root", "")]
    files += [c.get("file", "") for part in toc.get("parts") or [] for c in part["chapters"]]
    prefix = f"book/{EXECUTED}/"
    wanted = [f.removeprefix(prefix) for f in files if f.startswith(prefix)]
    missing = [n for n in wanted if not (source / f"{n}.ipynb").is_file()]
    if missing:
        raise InputError(
            f"the last successful run in {source} lacks {', '.join(missing)}, which the "
            f"book's _toc.yml lists; {how} for them"
        )
    records = {}  # the record that `cardioembed run` stored in each executed notebook
    for path in sorted(source.glob("*.ipynb")):
        if not (record := json.loads(path.read_text())["metadata"].get("cardioembed")):
            raise InputError(
                f"{path} carries no run record (metadata `cardioembed`); execute it with "
                "`cardioembed run`, which writes the record"
            )
        records[path.stem] = record
    tables = {TIMES_TABLE: times_table(records), STATUS_TABLE: status_table(records)}
    return _replace(root / "book" / EXECUTED, source, texts=tables)


def _jupyter_book(command: list[str], cwd: Path) -> int:
    return subprocess.run(command, cwd=cwd).returncode


def build_book(
    root: Path | None = None,
    strict: bool = True,
    *,
    profile: str = "teaching",
    runs_root: str | os.PathLike = "",
    executed: Path | None = None,
) -> Path:
    """Render the last successful run of `profile` (or the notebooks in `executed`); Jupyter
    Book executes nothing; with `strict`, any warning fails the build."""
    root = Path(root or project_root())
    stage_executed(Path(executed or run_dir(profile, runs_root or root / "runs") / EXECUTED), root)
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: an incremental build would hide the warnings of pages that did not change.
    command = [str(jb) if jb.exists() else "jupyter-book", "build", "--all", str(root)]
    if _jupyter_book(command + (["-W", "--keep-going"] if strict else []), root) != 0:
        raise NotebookFailed("jupyter-book build failed; the messages above name the page")
    return root / "_build" / "html" / "index.html"
