"""The CRD is generated from the pydantic models, checked in, and validates like the models do."""

from __future__ import annotations

import pathlib
from typing import Any

import jsonschema
import pytest
import yaml

from trading_operator import api
from trading_operator.crd import build_crd, render_crd_yaml, render_field_reference

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "deploy" / "crds" / "tradingsymbols.yaml"


def spec_schema() -> dict[str, Any]:
    version = build_crd()["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_checked_in_crd_matches_the_models():
    assert CRD_FILE.read_text() == render_crd_yaml(), (
        "deploy/crds/tradingsymbols.yaml is stale: run `make crd`"
    )


def test_schema_is_structural():
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node, path
            assert "anyOf" not in node, path
            assert "title" not in node, path
            if "properties" in node:
                assert node.get("type") == "object", path
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    walk(build_crd(), "crd")


def test_crd_names_printer_columns_and_status_subresource():
    crd = build_crd()
    assert crd["metadata"]["name"] == "tradingsymbols.trading.tradeops.io"
    assert crd["spec"]["names"]["shortNames"] == ["ts"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Symbol", "Phase", "Revision", "Stable", "Ready", "Age"]


def test_every_spec_field_is_described():
    def walk(node: dict[str, Any], path: str) -> None:
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{path}.{name} has no description"
            walk(prop, f"{path}.{name}")

    walk(spec_schema(), "spec")


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_against_the_schema_and_the_models(example):
    manifest = yaml.safe_load(example.read_text())
    jsonschema.validate(manifest["spec"], spec_schema())
    api.TradingSymbolSpec.model_validate(manifest["spec"])


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"symbol": "spy"}, "symbol"),
        ({"symbol": "TOOLONGSYMBOL"}, "symbol"),
        ({"market": "crypto"}, "market"),
        ({"replicas": 6}, "replicas"),
        ({"replicas": -1}, "replicas"),
        ({"image": "Not An Image"}, "image"),
        ({"resources": {"requests": {"cpu": "lots", "memory": "1Gi"}}}, "cpu"),
        ({"config": {"parameters": {"batchSize": 0}}}, "batchSize"),
        ({"revisionHistoryLimit": 0}, "revisionHistoryLimit"),
    ],
    ids=["lowercase-symbol", "long-symbol", "unknown-market", "too-many-replicas", "negative-replicas",
         "bad-image", "bad-cpu", "zero-batch-size", "zero-history"],
)
def test_schema_rejects_what_it_can_express(patch, field):
    spec = {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/x/runtime:1", **patch}
    with pytest.raises(jsonschema.ValidationError) as schema_error:
        jsonschema.validate(spec, spec_schema())
    assert field in str(schema_error.value.path) or field in schema_error.value.message
    with pytest.raises(ValueError, match=field):
        api.TradingSymbolSpec.model_validate(spec)


@pytest.mark.parametrize("missing", ["symbol", "market", "image"])
def test_required_fields(missing):
    spec = {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/x/runtime:1"}
    del spec[missing]
    with pytest.raises(jsonschema.ValidationError, match=missing):
        jsonschema.validate(spec, spec_schema())


def test_cross_field_rules_pass_the_schema_but_not_the_model():
    spec = yaml.safe_load((ROOT / "examples" / "invalid" / "exit-above-entry.yaml").read_text())["spec"]
    jsonschema.validate(spec, spec_schema())
    with pytest.raises(ValueError, match="exitScore"):
        api.TradingSymbolSpec.model_validate(spec)


def test_checked_in_field_reference_matches_the_models():
    assert (ROOT / "docs" / "tradingsymbol-fields.md").read_text() == render_field_reference(), (
        "docs/tradingsymbol-fields.md is stale: run `make crd`"
    )
