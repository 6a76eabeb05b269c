"""Execute the source notebooks with papermill, then render them with Jupyter Book.

Source notebooks live in `notebooks/`, outputs stripped. `run_profile` executes them in
order, giving each notebook the profile's values for the parameters it declares. Each
run is isolated: it executes into a fresh folder beside the run's published notebooks,
and only a run in which every notebook succeeded is published, into
`<runs_root>/<profile>/executed/` (default `runs/<profile>/executed/`), merged with the
notebooks of earlier successful runs. A failed run is kept in `executed-failed/` for its
tracebacks; an interrupted run is removed. Neither touches what was published.

`build_book` copies the published notebooks of one profile into `book/executed/` (the
folder `_toc.yml` names), atomically, writes the build's status page beside them, and
renders the book with Jupyter Book without executing anything again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cardioembed.artifacts import atomic_dir, atomic_path, write_json
from cardioembed.book.preflight import preflight
from cardioembed.book.profiles import Profile
from cardioembed.curation.rehearsal import REHEARSAL
from cardioembed.envinfo import environment_record
from cardioembed.errors import InputError
from cardioembed.evaluation import hub
from cardioembed.paths import project_root, run_dir

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
# Written beside the executed notebooks from the run records; book/teaching.md includes it.
TIMES_TABLE = "notebook_times.md"
# Written into book/executed/ at build time from the rendered notebooks' records;
# book/status.md includes it.
STATUS_TABLE = "run_status.md"
# In a run folder: the notebooks of the last successful run, and those of the last failed one.
EXECUTED = "executed"
FAILED_SUFFIX = "-failed"
# Parameters that name a folder: a relative value is taken from the user's working
# directory and handed to the notebook as an absolute path.
PATH_PARAMETERS = ("runs_root", "textbook_dir")
# Parameters that name a model: a hub id or a local folder. A value that names an
# existing folder relative to the working directory is made absolute.
MODEL_PARAMETERS = ("base_model", "paraphrase_model")
MODEL_MAPS = ("extra_models",)


@dataclass(frozen=True)
class NotebookResult:
    name: str
    output: Path
    seconds: float
    wrote: tuple[str, ...] = ()


class NotebookFailed(RuntimeError):
    """A notebook raised an error; the message names the notebook and the cell."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what was interrupted and what was kept."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def executed_dir(profile_name: str, runs_root: str | os.PathLike = "") -> Path:
    """Where the last successful run of a profile keeps its executed notebooks."""
    return run_dir(profile_name, runs_root) / EXECUTED


def failed_dir(published: Path) -> Path:
    return published.with_name(published.name + FAILED_SUFFIX)


def source_notebooks(root: Path | None = None, only: Iterable[str] = ()) -> list[Path]:
    """The study's notebooks in order; `only` selects by number ("01") or name."""
    folder = (root or project_root()) / "notebooks"
    notebooks = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    wanted = [w.strip() for w in only if w.strip()]
    if not wanted:
        return notebooks
    chosen = [
        p
        for p in notebooks
        if any(
            p.stem == w or p.stem.startswith(w + "_") or p.stem.split("_")[0] == w.zfill(2)
            for w in wanted
        )
    ]
    if not chosen:
        names = ", ".join(p.stem for p in notebooks)
        raise InputError(f"--only {' '.join(wanted)} matches no notebook; choose from {names}")
    return chosen


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """The parameters a notebook's `parameters` cell declares (papermill's reading)."""
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def parameters_for(notebook: Path, values: Mapping[str, Any]) -> dict[str, Any]:
    declared = declared_parameters(notebook)
    return {key: value for key, value in values.items() if key in declared}


def check_known(notebooks: list[Path], values: Mapping[str, Any], origin: str) -> None:
    """Every given parameter must be declared by some notebook: a typo in a profile or an
    override would otherwise be silently ignored."""
    known: set[str] = set()
    for nb in notebooks:
        known |= set(declared_parameters(nb))
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"{origin}: no notebook declares parameter(s) {', '.join(unknown)}; "
            f"known parameters: {', '.join(sorted(known))}"
        )


def notebook_defaults(notebooks: Iterable[Path]) -> dict[str, Any]:
    """The parameter defaults the notebooks declare (the first notebook's wins)."""
    import ast

    defaults: dict[str, Any] = {}
    for notebook in notebooks:
        for name, declared in declared_parameters(notebook).items():
            try:
                defaults.setdefault(name, ast.literal_eval(declared["default"]))
            except (ValueError, SyntaxError):
                defaults.setdefault(name, None)
    return defaults


def absolute_paths(params: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """`params` with relative folder parameters made absolute against `base` (the
    working directory): the kernel runs in `notebooks/`, where a relative path would
    point somewhere else than the user meant."""
    base = Path(base or Path.cwd())

    def absolute(value: str) -> str:
        return str((base / Path(value).expanduser()).resolve())

    def names_a_folder(value: Any) -> bool:
        if not isinstance(value, str) or not value or "://" in value:
            return False
        path = Path(value).expanduser()
        return path.is_absolute() or value.startswith(("./", "../", "~")) or (base / path).is_dir()

    resolved = dict(params)
    for key in PATH_PARAMETERS:
        value = resolved.get(key)
        if key == "textbook_dir" and value == REHEARSAL:
            continue  # not a folder: the preflight writes the rehearsal textbook
        if isinstance(value, str | os.PathLike) and str(value):
            resolved[key] = absolute(str(value))
    for key in MODEL_PARAMETERS:
        if names_a_folder(resolved.get(key)):
            resolved[key] = absolute(resolved[key])
    for key in MODEL_MAPS:
        value = resolved.get(key)
        if isinstance(value, Mapping):
            resolved[key] = {
                name: absolute(path) if names_a_folder(path) else path
                for name, path in value.items()
            }
    return resolved


def _record_environment(output: Path, profile: Profile, params: dict, seconds: float) -> None:
    """Store the environment, profile and parameters in the executed notebook's metadata."""
    nb = json.loads(output.read_text())
    nb.setdefault("metadata", {})["cardioembed"] = {
        "profile": profile.name,
        "parameters": params,
        "seconds": round(seconds, 2),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment_record(),
    }
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(nb, indent=1) + "\n")


def _kernel_config():
    """Configuration of the kernel manager: encrypt the kernel's connection where the
    installed zmq and the kernel support it. The connection stays on this machine either
    way; this keeps the kernel's plain-text warning out of every run's output."""
    import zmq
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    return config


def execute_notebook(source: Path, output: Path, params: Mapping[str, Any], cwd: Path) -> float:
    """Execute `source` into `output`; `NotebookFailed` names the cell that raised."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=dict(params),
            cwd=str(cwd),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            config=_kernel_config(),
            # On Ctrl-C, stop the kernel and whatever it started at once, quietly.
            shutdown_kernel="immediate",
        )
    except PapermillExecutionError as exc:
        first_line = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        raise NotebookFailed(
            f"{source.name} failed in the cell with execution count {exc.exec_count} "
            f"(starting `{first_line[:80]}`): {exc.ename}: {exc.evalue}"
        ) from None
    return time.perf_counter() - started


def _manifests(folder: Path) -> dict[Path, int]:
    """Every artifact manifest under a run folder, with its modification time."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.rglob("manifest.json"):
        try:
            found[path] = path.stat().st_mtime_ns
        except OSError:  # removed while we looked
            continue
    return found


def _written(before: Mapping[Path, int], after: Mapping[Path, int], folder: Path) -> tuple:
    """The artifact folders a notebook wrote, grouped by their first part under `folder`."""
    changed = sorted(p.parent for p, mtime in after.items() if before.get(p) != mtime)
    groups: dict[str, int] = {}
    for path in changed:
        parts = path.relative_to(folder).parts
        groups[parts[0] if parts else "."] = groups.get(parts[0] if parts else ".", 0) + 1
    return tuple(
        f"{name}/" if count == 1 else f"{name}/ ({count} artifacts)"
        for name, count in groups.items()
    )


def _show(path: Path, cwd: Path) -> str:
    """`path` relative to the working directory when it lies below it."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def run_profile(
    profile: Profile,
    *,
    only: Iterable[str] = (),
    output_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[NotebookResult]:
    """Execute the selected notebooks with the profile's parameters, one line of `echo`
    per notebook. Publishes the executed notebooks into `output_dir` (default
    `<run folder>/executed/`) only when all of them succeeded. Stops at the first failing
    notebook with `NotebookFailed`; Ctrl-C raises `RunInterrupted`. In both cases what
    was published before is left as it was."""
    root = project_root()
    cwd = Path.cwd()
    notebooks = source_notebooks(root, only)
    if not notebooks:
        raise InputError(f"no notebooks found in {root / 'notebooks'}")
    check_known(source_notebooks(root), profile.params, f"profile {profile.name!r}")
    profile = Profile(profile.name, absolute_paths(profile.params, cwd), profile.description)
    folder = run_dir(profile.name, profile.params.get("runs_root", ""))
    if not hub.offline_requested() and hub.local_cache_only_if_unreachable():
        echo("the Hugging Face hub is out of reach: models and datasets come from the local cache")
    # Fail now, not an hour in: every model and input the selected notebooks load.
    defaults = notebook_defaults(notebooks)
    checked = preflight({**defaults, **profile.params}, set(defaults), folder, echo)
    params = {**profile.params}
    params.update({k: v for k, v in checked.items() if k in profile.params})
    profile = Profile(profile.name, params, profile.description)
    published = (cwd / output_dir).resolve() if output_dir else folder / EXECUTED
    published.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{published.name}.", suffix=".running", dir=published.parent)
    )
    env_root = os.environ.get("CARDIOEMBED_ROOT")
    os.environ["CARDIOEMBED_ROOT"] = str(root)
    results: list[NotebookResult] = []
    current = notebooks[0]
    try:
        for index, source in enumerate(notebooks, 1):
            current = source
            params = parameters_for(source, profile.params)
            output = staging / source.name
            before = _manifests(folder)
            try:
                seconds = execute_notebook(source, output, params, cwd=root / "notebooks")
            except NotebookFailed as exc:
                failed = _keep_failed(staging, published)
                raise NotebookFailed(
                    f"{exc}\n  the executed notebook, with the traceback, is "
                    f"{_show(failed / source.name, cwd)}\n  the last successful run, in "
                    f"{_show(published, cwd)}, is unchanged"
                ) from None
            _record_environment(output, profile, params, seconds)
            wrote = _written(before, _manifests(folder), folder)
            results.append(NotebookResult(source.stem, published / source.name, seconds, wrote))
            what = f"wrote {', '.join(wrote)} in" if wrote else "wrote no new artifact in"
            echo(
                f"[{index}/{len(notebooks)}] {source.stem}  {_duration(seconds)}  "
                f"{what} {_show(folder, cwd)}"
            )
        _publish(staging, published, profile, results, folder)
    except KeyboardInterrupt:
        kept = (
            f"{_show(published, cwd)} still holds the last successful run"
            if published.is_dir()
            else "no earlier run had been published"
        )
        raise RunInterrupted(
            f"interrupted while running {current.stem} (profile {profile.name}); nothing "
            f"was lost: {kept}, and artifacts are only ever replaced whole"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if env_root is None:
            os.environ.pop("CARDIOEMBED_ROOT", None)
        else:
            os.environ["CARDIOEMBED_ROOT"] = env_root
    return results


def _usual_mode(folder: Path) -> None:
    """A temporary folder is private (0700); give a published one the usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def _keep_failed(staging: Path, published: Path) -> Path:
    """Move a failed run's notebooks to `<published>-failed/`, replacing an older one."""
    failed = failed_dir(published)
    with atomic_dir(failed) as tmp:
        _usual_mode(tmp)
        for path in staging.iterdir():
            shutil.copy2(path, tmp / path.name)
    return failed


def _publish(staging: Path, published: Path, profile: Profile, results: list, folder: Path) -> None:
    """Replace `published`, in one rename, by its earlier notebooks with this run's on top,
    and the times table from the run records."""
    log_path = folder / "notebook_times.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    machine = environment_record()
    for result in results:
        log[result.name] = {
            "seconds": round(result.seconds, 2),
            "executed": str(result.output),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpu_count": os.cpu_count(),
            "platform": machine["platform"],
        }
    with atomic_dir(published) as tmp:
        _usual_mode(tmp)
        if published.is_dir():
            for path in published.iterdir():
                if path.is_file() and not path.name.startswith("."):
                    shutil.copy2(path, tmp / path.name)
        for path in staging.iterdir():
            shutil.copy2(path, tmp / path.name)
        (tmp / TIMES_TABLE).write_text(times_table(profile.name, log, machine))
    write_json(log_path, log)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def times_table(profile_name: str, log: Mapping[str, dict], machine: Mapping[str, Any]) -> str:
    """A MyST table of the run records: the latest time of each notebook, and the machine."""
    rows = [
        f"| `{name}` | {_duration(entry['seconds'])} "
        f"| {entry['finished_at'][:16].replace('T', ' ')} | {entry.get('cpu_count', '?')} |"
        for name, entry in sorted(log.items())
    ]
    total = sum(entry["seconds"] for entry in log.values())
    return "\n".join(
        [
            f"Profile `{profile_name}`; the latest run of each notebook, as recorded by "
            "`cardioembed run`. The machine of the latest run: "
            f"{machine.get('cpu_count')} CPU cores, {machine.get('platform')}, "
            f"device {machine.get('device')}, {machine.get('torch_threads')} torch threads.",
            "",
            "| notebook | time | finished | CPU cores |",
            "| --- | ---: | --- | ---: |",
            *rows,
            f"| total | {_duration(total)} | | |",
            "",
        ]
    )


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def status_table(executed: Path) -> str:
    """A MyST page fragment from the records that `cardioembed run` stored in each executed
    notebook: what ran, how long it took, and the environment it ran in."""
    records = {}
    for path in sorted(executed.glob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("cardioembed")
        if meta is None:
            raise InputError(
                f"{path} carries no run record (metadata `cardioembed`); execute it with "
                "`cardioembed run`, which writes the record"
            )
        records[path.stem] = meta
    if not records:
        raise InputError(f"no executed notebooks in {executed}")
    rows = []
    environments: dict[str, tuple[dict, list[str]]] = {}
    for name, meta in records.items():
        env = meta.get("environment", {})
        key = json.dumps(env, sort_keys=True)
        label = environments.setdefault(key, (env, []))
        label[1].append(name)
        rows.append(
            f"| `{name}` | `{_cell(meta.get('profile', '?'))}` "
            f"| {_duration(float(meta.get('seconds', 0)))} "
            f"| {_cell(meta.get('finished_at', '?')[:16].replace('T', ' '))} "
            f"| {_cell(env.get('device', '?'))} | {_cell(env.get('cpu_count', '?'))} "
            f"| {_cell(env.get('torch_threads', '?'))} |"
        )
    total = sum(float(meta.get("seconds", 0)) for meta in records.values())
    profiles = sorted({str(meta.get("profile", "?")) for meta in records.values()})
    lines = [
        f"This build renders notebooks of the profile(s) {', '.join(f'`{p}`' for p in profiles)}.",
        "",
        "| notebook | profile | run time | finished | device | CPU cores | torch threads |",
        "| --- | --- | ---: | --- | --- | ---: | ---: |",
        *rows,
        f"| total | | {_duration(total)} | | | | |",
        "",
    ]
    for number, (env, names) in enumerate(environments.values(), 1):
        title = "The environment" if len(environments) == 1 else f"Environment {number}"
        lines += [
            f"{title} ({', '.join(f'`{n}`' for n in names)}):",
            "",
            "| | |",
            "| --- | --- |",
            f"| Python | {_cell(env.get('python', '?'))} |",
            f"| platform | {_cell(env.get('platform', '?'))} |",
            f"| CPU cores | {_cell(env.get('cpu_count', '?'))} |",
            f"| device | {_cell(env.get('device', '?'))} |",
            f"| torch threads | {_cell(env.get('torch_threads', '?'))} |",
            f"| git commit | `{_cell(env.get('git_commit') or 'unknown')}` |",
            *(
                f"| `{_cell(package)}` | {_cell(version or 'not installed')} |"
                for package, version in sorted(env.get("packages", {}).items())
            ),
            "",
        ]
    return "\n".join(lines)


def _toc_notebooks(root: Path) -> list[str]:
    """The executed notebooks that `_toc.yml` lists (under book/executed/)."""
    toc_path = root / "_toc.yml"
    try:
        toc = yaml.safe_load(toc_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{toc_path} could not be read: {exc}") from None
    files = [toc.get("root", "")]
    for part in toc.get("parts", []) or []:
        files += [chapter.get("file", "") for chapter in part.get("chapters", []) or []]
    prefix = "book/executed/"
    return [f.removeprefix(prefix) for f in files if f and f.startswith(prefix)]


def stage_executed(source: Path, root: Path) -> Path:
    """Replace `book/executed/` by a copy of `source` (a run's published notebooks) and
    the status page written from their records, in one rename."""
    source = Path(source)
    how = (
        "run `cardioembed run` (with the same --profile, and -p runs_root=... if you gave "
        "one) first"
    )
    if not source.is_dir() or not any(source.glob("*.ipynb")):
        raise InputError(f"no successful run to render: no executed notebooks in {source}; {how}")
    if not (source / TIMES_TABLE).is_file():
        raise InputError(
            f"no {TIMES_TABLE} in {source} (the teaching guide includes it); run "
            "`cardioembed run` again, which writes it from the run records"
        )
    missing = [n for n in _toc_notebooks(root) if not (source / f"{n}.ipynb").is_file()]
    if missing:
        raise InputError(
            f"the last successful run in {source} lacks {', '.join(missing)}, which the "
            f"book's _toc.yml lists; {how.replace('first', 'for them')}"
        )
    target = root / "book" / EXECUTED
    with atomic_dir(target) as tmp:
        _usual_mode(tmp)
        for path in source.iterdir():
            if path.is_file() and not path.name.startswith("."):
                shutil.copy2(path, tmp / path.name)
        (tmp / STATUS_TABLE).write_text(status_table(tmp))
    return target


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
    """Render the book from the last successful run of `profile` (or from the executed
    notebooks in `executed`) with Jupyter Book 1.x. Notebooks are not executed again
    (`execute_notebooks: off`); with `strict`, any warning (a broken reference, an
    unresolved glue key) fails the build."""
    root = Path(root or project_root())
    if executed is None:
        executed = run_dir(profile, runs_root or root / "runs") / EXECUTED
    stage_executed(Path(executed), root)
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: an incremental build would hide warnings of pages that did not change.
    command = [str(jb) if jb.exists() else "jupyter-book", "build", "--all", str(root)]
    if strict:
        command += ["-W", "--keep-going"]
    if _jupyter_book(command, root) != 0:
        raise NotebookFailed("jupyter-book build failed; the messages above name the page")
    return root / "_build" / "html" / "index.html"
