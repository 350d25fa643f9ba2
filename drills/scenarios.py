"""Drill scenarios: YAML files naming a kind (the step implementation the runner looks up in its registry)
and its parameters. Pure: loading and validation only."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PACKAGED = pathlib.Path(__file__).parent / "scenarios"


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    kind: str
    description: str = ""
    destructive: bool = Field(default=False, description="Empties or kills something live: needs --allow-destructive")
    params: dict[str, Any] = Field(default_factory=dict)


class ScenarioError(ValueError):
    pass


def load_scenarios(directory: pathlib.Path | None = None) -> dict[str, Scenario]:
    """Every `*.yaml` scenario of `directory` (default: the packaged ones), by name."""
    out: dict[str, Scenario] = {}
    for path in sorted((directory or PACKAGED).glob("*.yaml")):
        try:
            scenario = Scenario.model_validate(yaml.safe_load(path.read_text()))
        except (ValidationError, yaml.YAMLError) as error:
            raise ScenarioError(f"{path}: {error}") from None
        if scenario.name in out:
            raise ScenarioError(f"{path}: scenario {scenario.name} defined twice")
        out[scenario.name] = scenario
    return out


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`key=value` overrides from the command line; values parsed as YAML scalars (numbers, booleans)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ScenarioError(f"--param wants key=value, got {pair!r}")
        out[key] = yaml.safe_load(value) if value else ""
    return out
