"""Execute the source notebooks with papermill, then render them with Jupyter Book.

Source notebooks live in `notebooks/`, outputs stripped. `run_profile` executes them
in order into a git-ignored folder (`book/executed/` by default), giving each notebook
the profile's values for the parameters it declares. Jupyter Book then renders what was
executed without executing anything again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import atomic_path, write_json
from .envinfo import environment_record
from .errors import InputError
from .paths import project_root, run_dir
from .profiles import Profile

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
# Written beside the executed notebooks from the run records; book/teaching.md includes it.
TIMES_TABLE = "notebook_times.md"


@dataclass(frozen=True)
class NotebookResult:
    name: str
    output: Path
    seconds: float


class NotebookFailed(RuntimeError):
    """A notebook raised an error; the message names the notebook and the cell."""


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


def _record_environment(output: Path, profile: Profile, params: dict, seconds: float) -> None:
    """Store the environment, profile and parameters in the executed notebook's metadata."""
    nb = json.loads(output.read_text())
    nb.setdefault("metadata", {})["cardioembed"] = {
        "profile": profile.name,
        "parameters": params,
        "seconds": round(seconds, 2),
        "environment": environment_record(),
    }
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(nb, indent=1) + "\n")


def execute_notebook(source: Path, output: Path, params: Mapping[str, Any], cwd: Path) -> float:
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
        )
    except PapermillExecutionError as exc:
        first_line = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        raise NotebookFailed(
            f"{source.name} failed in the cell with execution count {exc.exec_count} "
            f"(starting `{first_line[:80]}`): {exc.ename}: {exc.evalue}\n"
            f"  the executed notebook, with the traceback, is {output}"
        ) from None
    return time.perf_counter() - started


def run_profile(
    profile: Profile,
    *,
    only: Iterable[str] = (),
    output_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[NotebookResult]:
    """Execute the selected notebooks with the profile's parameters. Stops at the first
    failing notebook with `NotebookFailed`."""
    root = project_root()
    notebooks = source_notebooks(root, only)
    if not notebooks:
        raise InputError(f"no notebooks found in {root / 'notebooks'}")
    check_known(source_notebooks(root), profile.params, f"profile {profile.name!r}")
    output_dir = Path(output_dir) if output_dir else root / "book" / "executed"
    env_root = os.environ.get("CARDIOEMBED_ROOT")
    os.environ["CARDIOEMBED_ROOT"] = str(root)
    results: list[NotebookResult] = []
    try:
        for index, source in enumerate(notebooks, 1):
            params = parameters_for(source, profile.params)
            output = output_dir / source.name
            echo(f"[{index}/{len(notebooks)}] {source.stem} (profile {profile.name}) ...")
            seconds = execute_notebook(source, output, params, cwd=root / "notebooks")
            _record_environment(output, profile, params, seconds)
            results.append(NotebookResult(source.stem, output, seconds))
            echo(f"[{index}/{len(notebooks)}] {source.stem} done in {seconds:.1f} s")
    finally:
        if env_root is None:
            os.environ.pop("CARDIOEMBED_ROOT", None)
        else:
            os.environ["CARDIOEMBED_ROOT"] = env_root
        _append_run_log(profile, results, output_dir)
    return results


def _append_run_log(profile: Profile, results: list[NotebookResult], output_dir: Path) -> None:
    """Keep the latest time of each notebook in `runs/<profile>/notebook_times.json`, and
    render those records as `notebook_times.md` beside the executed notebooks, for the
    teaching guide to include."""
    if not results:
        return
    runs_root = profile.params.get("runs_root", "")
    path = run_dir(profile.name, runs_root) / "notebook_times.json"
    log = json.loads(path.read_text()) if path.is_file() else {}
    machine = environment_record()
    for result in results:
        log[result.name] = {
            "seconds": round(result.seconds, 2),
            "executed": str(result.output),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpu_count": os.cpu_count(),
            "platform": machine["platform"],
        }
    write_json(path, log)
    with atomic_path(Path(output_dir) / TIMES_TABLE) as tmp:
        tmp.write_text(times_table(profile.name, log, machine))


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


def build_book(root: Path | None = None, strict: bool = True) -> Path:
    """Render the book with Jupyter Book 1.x. Notebooks are not executed again
    (`execute_notebooks: off`); with `strict`, any warning (a broken reference, an
    unresolved glue key) fails the build."""
    root = root or project_root()
    executed = root / "book" / "executed"
    if not any(executed.glob("*.ipynb")):
        raise InputError(
            f"no executed notebooks in {executed}; run `cardioembed run` (or `make book`) first"
        )
    if not (executed / TIMES_TABLE).is_file():
        raise InputError(
            f"no {TIMES_TABLE} in {executed} (the teaching guide includes it); run "
            "`cardioembed run` again, which writes it from the run records"
        )
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: an incremental build would hide warnings of pages that did not change.
    command = [str(jb) if jb.exists() else "jupyter-book", "build", "--all", str(root)]
    if strict:
        command += ["-W", "--keep-going"]
    completed = subprocess.run(command, cwd=root)
    if completed.returncode != 0:
        raise NotebookFailed("jupyter-book build failed; the messages above name the page")
    return root / "_build" / "html" / "index.html"
