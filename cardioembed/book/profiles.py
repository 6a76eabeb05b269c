"""Profiles: named sets of notebook parameters in `profiles/<name>.yaml`.

A profile is a flat mapping of parameter names to values. The runner gives each
notebook the values of the parameters that its `parameters` cell declares; a value given
on the command line (`-p key=value`) overrides the profile's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cardioembed.errors import InputError
from cardioembed.paths import project_root


@dataclass(frozen=True)
class Profile:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        return cls(data["name"], dict(data.get("params", {})), data.get("description", ""))

    def with_overrides(self, overrides: Mapping[str, Any]) -> Profile:
        return Profile(self.name, {**self.params, **overrides}, self.description)


def profiles_dir() -> Path:
    return project_root() / "profiles"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """Read `profiles/<name>.yaml`. The file's `description` key is prose, every other key
    a notebook parameter."""
    path = profiles_dir() / f"{name}.yaml"
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
    data["profile"] = name
    return Profile(name, data, description)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse `key=value` strings; values are read as YAML, so `0.02`, `true`, `[a, b]`
    and `null` have their natural types."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InputError(f"override {item!r} must look like key=value, e.g. temperature=0.02")
        try:
            overrides[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            overrides[key] = raw
    return overrides


def notebook_values(
    notebook: str, profile: str = "teaching", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The parameter values notebook `notebook` ("02" or its name) runs with under
    `profile`: its own defaults, then the profile's values, then `overrides`, as
    `cardioembed run` gives them. For code that runs a stage outside its notebook
    (training.cli, the benchmarks)."""
    import ast

    import papermill

    folder = project_root() / "notebooks"
    matches = sorted(folder.glob(f"{notebook}*.ipynb")) or sorted(folder.glob(f"{notebook}"))
    if not matches:
        raise InputError(f"no notebook {notebook!r} in {folder}")
    declared = papermill.inspect_notebook(str(matches[0]))
    values = {name: ast.literal_eval(p["default"]) for name, p in declared.items()}
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise InputError(
            f"{matches[0].name} declares no parameter {', '.join(unknown)}; "
            f"its parameters: {', '.join(declared)}"
        )
    given = {**load_profile(profile).params, **dict(overrides or {})}
    values.update({k: v for k, v in given.items() if k in declared})
    return values
