"""The project's own files agree with each other: pins, notebooks, profiles."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import papermill
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _pins(lines):
    pins = {}
    for line in lines:
        match = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line)
        if match:
            name = re.sub(r"\[.*\]", "", match.group(1))
            pins[re.sub(r"[-_.]+", "-", name).lower()] = match.group(2)  # PEP 503 names
    return pins


def test_environment_yml_carries_the_same_pins_as_pyproject():
    """Binder and conda install the versions of pyproject.toml, torch as its CPU build from
    PyTorch's index (the only difference allowed: the `+cpu` local version of torch)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject_pins = _pins(project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = _pins(pip_section)
    assert env_pins["torch"] == pyproject_pins["torch"] + "+cpu"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section
    assert {**env_pins, "torch": pyproject_pins["torch"]} == pyproject_pins
    assert all("==" in dep for dep in project["dependencies"]), "every dependency is pinned"


def test_lock_file_agrees_with_pyproject_pins():
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name, version in _pins(project["dependencies"]).items():
        assert lock.get(name, "").split("+")[0] == version, name


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebook_is_stripped_with_one_parameters_cell(notebook):
    nb = json.loads(notebook.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    first_markdown = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "".join(first_markdown["source"]).startswith("# "), "a top-level title for the toc"


def _declared_defaults() -> dict[str, dict[str, object]]:
    """Each parameter's default in each notebook that declares it."""
    import ast

    defaults: dict[str, dict[str, object]] = {}
    for notebook in NOTEBOOKS:
        for name, info in papermill.inspect_notebook(str(notebook)).items():
            assert info["help"], f"{notebook.name}: parameter {name} needs a short comment"
            defaults.setdefault(name, {})[notebook.name] = ast.literal_eval(info["default"])
    return defaults


def test_a_parameter_shared_by_notebooks_has_one_meaning():
    """A profile value reaches every notebook that declares the name: where two notebooks
    declare one (profile, runs_root, the sweeps' scoring), they must agree on its default."""
    for name, by_notebook in _declared_defaults().items():
        assert len({repr(v) for v in by_notebook.values()}) == 1, f"{name}: {by_notebook}"


def test_profiles_list_only_what_they_change():
    """The notebooks' defaults are the teaching book; a profile that repeats a default
    would be a second home for that value."""
    defaults = {name: next(iter(v.values())) for name, v in _declared_defaults().items()}
    for path in (ROOT / "profiles").glob("*.yaml"):
        values = yaml.safe_load(path.read_text()) or {}
        same = [k for k, v in values.items() if k in defaults and v == defaults[k]]
        assert not same, f"{path.name} repeats the notebook defaults of {same}"
    assert set(yaml.safe_load((ROOT / "profiles" / "teaching.yaml").read_text())) == {"description"}


def test_every_profile_parameter_is_declared_by_a_notebook():
    declared = set()
    for notebook in NOTEBOOKS:
        declared |= set(papermill.inspect_notebook(str(notebook)))
    for path in (ROOT / "profiles").glob("*.yaml"):
        keys = set(yaml.safe_load(path.read_text())) - {"description"}
        assert keys <= declared, f"{path.name}: {sorted(keys - declared)}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_line_of_the_parameters_cell(notebook):
    # papermill silently skips a line it cannot parse (e.g. '=' inside a comment), and the
    # parameter then cannot be overridden from a profile.
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    assigned = [
        line.split(":")[0].split("=")[0].strip()
        for line in "".join(cell["source"]).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert sorted(papermill.inspect_notebook(str(notebook))) == sorted(assigned)


def test_the_recipe_is_notebook_02s_parameters():
    """Recipe fields are the names notebook 02 declares (besides where to write), and
    the notebook's defaults make a valid recipe: the defaults have no other home."""
    import dataclasses

    from cardioembed.profiles import notebook_values
    from cardioembed.training.recipe import Recipe

    declared = set(notebook_values("02")) - {"profile", "runs_root"}
    assert {f.name for f in dataclasses.fields(Recipe)} == declared
    assert Recipe.from_parameters(notebook_values("02")).base_model == "minilm"


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_passes_on_the_code(command):
    """The style rules of pyproject.toml hold in the packages, tests and benchmarks."""
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run(
        [str(ruff), *command, "cardioembed", "textbook_reader", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_textbook_reader_imports_nothing_of_the_study():
    """textbook_reader is a library of its own: cardioembed uses it, never the other way."""
    code = (
        "import sys, textbook_reader; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cardioembed'))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "[]"
