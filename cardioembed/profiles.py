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

from .errors import InputError
from .paths import project_root


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
