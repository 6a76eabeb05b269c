"""Notebook parameters: each notebook's `parameters` cell declares them (type, default,
comment); a profile (`profiles/<name>.yaml`) lists the values it changes, `-p key=value`
overrides those, and every value is checked here against its declared type."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cardioembed.errors import InputError, ParameterError
from cardioembed.paths import project_root

NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
# The types a parameters cell declares; a whole number is a valid float.
TYPES = dict(int=int, float=(int, float), str=str, bool=bool, list=(list, tuple), dict=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    params: Mapping[str, Any]
    description: str = ""

    def with_overrides(self, overrides: Mapping[str, Any]) -> Profile:
        return Profile(self.name, {**self.params, **overrides}, self.description)


def notebooks(only: Iterable[str] = (), root: Path | None = None) -> list[Path]:
    """The study's notebooks in order; `only` selects by number ("2", "02") or name."""
    folder = (root or project_root()) / "notebooks"
    found = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    wanted = [w.strip().zfill(2) + "_" for w in only if w.strip()]  # "2" is "02_..."
    chosen = [p for p in found if not wanted or any(f"{p.stem}_".startswith(w) for w in wanted)]
    if not chosen:
        names = ", ".join(p.stem for p in found) or f"none in {folder}"
        raise InputError(f"--only {' '.join(only)} matches no notebook; choose from {names}")
    return chosen


def notebook_defaults(declared: Mapping[str, dict]) -> dict[str, Any]:
    return {name: ast.literal_eval(info["default"]) for name, info in declared.items()}


def check_parameters(values: Mapping[str, Any], declared: Mapping[Path, dict], origin: str) -> None:
    """Refuse a parameter that no notebook declares (a typo) or a value of another type."""
    first: dict[str, tuple[str, dict]] = {}
    for notebook, parameters in declared.items():
        for name, info in parameters.items():
            first.setdefault(name, (notebook.stem, info))
    unknown = sorted(set(values) - set(first))
    if unknown:
        raise InputError(
            f"{origin}: no notebook declares parameter(s) {', '.join(unknown)}; "
            f"known parameters: {', '.join(sorted(first))}"
        )
    for name, value in values.items():
        notebook, info = first[name]
        kind = info["inferred_type_name"]
        wrong_bool = isinstance(value, bool) and kind != "bool"
        if kind in TYPES and (wrong_bool or not isinstance(value, TYPES[kind])):
            article = "an" if kind[0] in "aeiou" else "a"
            expected = f"notebook {notebook} declares it {article} {kind}, e.g. {info['default']}"
            raise ParameterError(name, value, expected)


def _checked(notebook: str, values: Mapping[str, Any], overrides: Mapping[str, Any]):
    """(path, declared parameters, values) of `notebook`: those of `values` it declares, then
    `overrides`, each checked against the type it declares (an unknown override is refused)."""
    import papermill  # here: it would slow every command's start

    path = notebooks([notebook])[0]
    declared = papermill.inspect_notebook(str(path))  # name -> inferred_type_name, default, help
    given = {**{k: v for k, v in values.items() if k in declared}, **overrides}
    check_parameters(given, {path: declared}, path.stem)
    return path, declared, given


def check_values(values: Mapping[str, Any], notebook: str, names: Sequence[str] = ()) -> dict:
    """Check a notebook's `globals()` against its parameters cell, under `cardioembed run`,
    plain papermill or Jupyter alike; return `names` from it, each required."""
    path, _, _ = _checked(notebook, values, {})
    if missing := [name for name in names if name not in values]:
        raise InputError(
            f"{', '.join(missing)} missing: pass every parameter of notebook {path.stem} (what "
            "an older version of the study saved has to be made again with that notebook)"
        )
    return {name: values[name] for name in names}


def available_profiles() -> list[str]:
    return sorted(p.stem for p in (project_root() / "profiles").glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """`profiles/<name>.yaml`: a `description`, every other key a notebook parameter."""
    path = project_root() / "profiles" / f"{name}.yaml"
    if not path.is_file():
        raise InputError(
            f"no profile {name!r} (looked for {path}); "
            f"available: {', '.join(available_profiles()) or 'none'}"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must be a mapping of parameter names to values")
    description = str(data.pop("description", ""))
    return Profile(name, {**data, "profile": name}, description)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`key=value` strings, the values read as YAML (`0.02`, `true`, `[a, b]`, `null`)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InputError(f"override {item!r} must look like key=value, e.g. temperature=0.02")
        try:
            overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            overrides[key.strip()] = raw
    return overrides


def notebook_values(
    notebook: str, profile: str = "teaching", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The values notebook `notebook` ("02" or its name) runs with under `profile`, as
    `cardioembed run` gives them: defaults, then the profile's, then `overrides`."""
    _, declared, given = _checked(notebook, load_profile(profile).params, overrides or {})
    return {**notebook_defaults(declared), **given}
