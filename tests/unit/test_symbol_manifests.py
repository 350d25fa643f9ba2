"""The TradingSymbol manifests kept in git (deploy/symbols/): valid against the CRD's schema (what the API
server enforces), the operator's cross-field rules (what it would mark Invalid) and the admission rules in
policies/."""

from __future__ import annotations

import pathlib

import jsonschema
import pytest
import yaml

from policies.admission import manifest_errors
from policies.loader import default_policies
from trading_operator.api import API_VERSION, KIND, TradingSymbolSpec

ROOT = pathlib.Path(__file__).resolve().parents[2]
SYMBOLS = ROOT / "deploy" / "symbols"
CRD = yaml.safe_load((ROOT / "deploy" / "crds" / "tradingsymbols.yaml").read_text())
SCHEMA = next(v for v in CRD["spec"]["versions"] if v["name"] == API_VERSION.split("/")[1])["schema"]["openAPIV3Schema"]
FILES = sorted(SYMBOLS.rglob("*.yaml"))
DOCS = [(f"{path.relative_to(SYMBOLS)}:{doc['metadata']['name']}", doc)
        for path in FILES for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] != "Namespace"]


def test_spy_qqq_es_and_the_twelve_symbol_example_are_kept():
    applied = {doc["spec"]["symbol"] for name, doc in DOCS if "/" not in name.split(":")[0]}
    assert applied == {"SPY", "QQQ", "ES"}
    example = [doc for name, doc in DOCS if name.startswith("examples/twelve-symbols.yaml")]
    assert len(example) == 12
    assert len({doc["metadata"]["name"] for doc in example}) == 12
    assert {doc["spec"]["market"] for doc in example} == {"equity-options", "index-options", "futures-options"}


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_manifest_matches_the_crd_schema(name, doc):
    assert doc["apiVersion"] == API_VERSION
    assert doc["kind"] == KIND
    jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_manifest_passes_the_operators_cross_field_rules(name, doc):
    TradingSymbolSpec.model_validate(doc["spec"])


@pytest.mark.parametrize(("field", "value"), [("symbol", "spy"), ("market", "crypto"), ("replicas", 9)],
                         ids=["lower-case-symbol", "unknown-market", "too-many-replicas"])
def test_the_schema_check_rejects_what_the_api_server_would(field, value):
    doc = yaml.safe_load((SYMBOLS / "spy.yaml").read_text())
    doc["spec"][field] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_applied_manifests_target_the_trading_namespace():
    from infra.settings import Settings

    namespace = Settings.__dataclass_fields__["trading_namespace"].default
    assert {doc["metadata"].get("namespace") for name, doc in DOCS if not name.startswith("examples/")} == {namespace}


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_manifest_passes_the_admission_rules_in_policies(name, doc):
    """What CI checks before applying (`opsctl policy check deploy/symbols/*.yaml`): registries, replicas,
    no fault injection, risk limits within the RiskPolicy, named policies that exist."""
    assert manifest_errors(doc, default_policies()) == []


def test_admission_catches_what_a_reviewer_would_miss():
    doc = next(d for n, d in DOCS if n.startswith("spy.yaml"))
    bad = {**doc, "spec": {**doc["spec"], "image": "docker.io/someone/runtime:latest",
                           "config": {"faultInjection": {"extraLatencyMs": 50}}}}
    problems = manifest_errors(bad, default_policies())
    assert any(p.startswith("spec.image") for p in problems)
    assert any(p.startswith("spec.config.faultInjection") for p in problems)
