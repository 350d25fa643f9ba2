"""The FleetRollout CRD is generated from its pydantic models, checked in, structural, and accepts the example."""

from __future__ import annotations

import pathlib
from typing import Any

import jsonschema
import yaml

from trading_operator.crd import build_fleet_crd, render_fleet_crd_yaml
from trading_operator.fleet_api import FleetRolloutSpec

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "deploy" / "crds" / "fleetrollouts.yaml"
EXAMPLE = ROOT / "examples" / "fleet" / "runtime-upgrade.yaml"


def _spec_schema() -> dict[str, Any]:
    return dict(build_fleet_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_checked_in_crd_matches_the_models() -> None:
    assert CRD_FILE.read_text() == render_fleet_crd_yaml(), "deploy/crds/fleetrollouts.yaml is stale: run `make crd`"


def test_schema_is_structural_and_keeps_the_config_patch() -> None:
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert not {"$ref", "anyOf", "title"} & set(node), path
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    walk(build_fleet_crd(), "crd")
    config = _spec_schema()["properties"]["change"]["properties"]["config"]
    assert config["x-kubernetes-preserve-unknown-fields"] is True  # the API server must not prune the patch


def test_the_example_validates_against_the_schema_and_the_model() -> None:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    assert manifest["kind"] == build_fleet_crd()["spec"]["names"]["kind"]
    jsonschema.validate(manifest["spec"], _spec_schema())
    assert FleetRolloutSpec.model_validate(manifest["spec"]).steps == ["1", "25%", "50%", "100%"]
