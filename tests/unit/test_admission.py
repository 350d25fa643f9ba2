"""Admission of TradingSymbol manifests: each rule, with the field it names; the examples pass the defaults."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from policies.__main__ import main
from policies.admission import admission_errors, manifest_errors
from policies.loader import load_dir
from policies.models import AdmissionPolicySpec, RiskPolicySpec

ROOT = pathlib.Path(__file__).resolve().parents[2]
POLICIES = load_dir()
ADMISSION = POLICIES.admission["default"]
RISK = POLICIES.risk["default"]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

VALID: dict[str, Any] = {
    "apiVersion": "trading.tradeops.io/v1alpha1",
    "kind": "TradingSymbol",
    "metadata": {"name": "spy", "labels": {"team": "options"}},
    "spec": {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/tradeops/trading-runtime:0.1.0"},
}


def with_(path: str, value: Any) -> dict[str, Any]:
    """VALID with one dotted path set."""
    manifest = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = manifest
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return manifest


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_pass_the_default_policies(example: pathlib.Path):
    for manifest in yaml.safe_load_all(example.read_text()):
        assert manifest_errors(manifest, POLICIES) == []


CASES = [
    ("other-registry", with_("spec.image", "docker.io/evil/runtime:1"), ADMISSION,
     "spec.image: docker.io/evil/runtime:1 is not from an allowed registry (ghcr.io/tradeops/)"),
    ("tag-when-digest-required", VALID, ADMISSION.model_copy(update={"require_digest": True}),
     "spec.image: ghcr.io/tradeops/trading-runtime:0.1.0 must be pinned by digest (@sha256:...)"),
    ("no-image", with_("spec.image", None), ADMISSION, "spec.image: required"),
    ("market", with_("spec.market", "crypto"), ADMISSION.model_copy(update={"allowed_markets": ["equity-options"]}),
     "spec.market: 'crypto' is not an allowed market (equity-options)"),
    ("replicas", with_("spec.replicas", 4), ADMISSION, "spec.replicas: 4 exceeds the most allowed (3)"),
    ("replicas-not-an-integer", with_("spec.replicas", "2"), ADMISSION, "spec.replicas: must be an integer, got '2'"),
    ("fault-injection", with_("spec.config.faultInjection", {"errorRate": 0.5}), ADMISSION,
     "spec.config.faultInjection.errorRate: must be 0 in a manifest kept in git, got 0.5"),
    ("missing-label", VALID, ADMISSION.model_copy(update={"required_labels": ["team", "owner"]}),
     "metadata.labels.owner: required"),
    ("capital", with_("spec.config.risk", {"capital": 2e7}), ADMISSION,
     "spec.config.risk.capital: 2e+07 exceeds the risk policy's limit 1e+07"),
    ("drawdown", with_("spec.config.risk", {"maxDrawdown": 0.5}), ADMISSION,
     "spec.config.risk.maxDrawdown: 0.5 exceeds the risk policy's limit 0.15"),
    ("exposure", with_("spec.config.risk", {"correlatedExposureCap": 3e6}), ADMISSION,
     "spec.config.risk.correlatedExposureCap: 3e+06 exceeds the risk policy's limit 2e+06"),
    ("volatility", with_("spec.config.risk", {"targetVolatility": 0.3}), ADMISSION,
     "spec.config.risk.targetVolatility: 0.3 exceeds the risk policy's limit 0.25"),
    ("adaptive-threshold-floor", with_("spec.config.ml", {"entryScoreMin": 0.1}), ADMISSION,
     "spec.config.ml.entryScoreMin: 0.1 is below the risk policy's floor 0.3"),
    ("risk-not-a-number", with_("spec.config.risk", {"capital": "lots"}), ADMISSION,
     "spec.config.risk.capital: must be a number, got 'lots'"),
    ("broker-key-value-in-git", with_("spec.config.broker", {"endpoints": ["https://b.example"], "keys": [
        {"name": "alpha", "secretKeyRef": {"name": "keys", "key": "alpha"}, "ratePerSecond": 5, "value": "s3cr3t"}]}),
     ADMISSION, "spec.config.broker.keys[0].value: an API key's value comes from a Secret (secretKeyRef), never "
                "from the manifest"),
    ("not-a-tradingsymbol", with_("kind", "Deployment"), ADMISSION,
     "kind: not a TradingSymbol ('trading.tradeops.io/v1alpha1', 'Deployment')"),
]


@pytest.mark.parametrize(("manifest", "policy", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_names_its_field(manifest: dict[str, Any], policy: AdmissionPolicySpec, expected: str):
    assert admission_errors(manifest, policy, RISK) == [expected]


def test_a_broker_key_from_a_secret_passes():
    manifest = with_("spec.config.broker", {"endpoints": ["https://b.example"], "keys": [
        {"name": "alpha", "secretKeyRef": {"name": "keys", "key": "alpha"}, "ratePerSecond": 5, "burst": 2}]})
    assert admission_errors(manifest, ADMISSION, RISK) == []


def test_fault_injection_is_allowed_when_the_policy_says_so():
    manifest = with_("spec.config.faultInjection", {"extraLatencyMs": 100})
    assert admission_errors(manifest, ADMISSION.model_copy(update={"forbid_fault_injection": False}), RISK) == []


def test_omitted_risk_limits_are_checked_at_the_runtime_defaults():
    strict = RiskPolicySpec(max_capital=1e6)
    assert admission_errors(VALID, ADMISSION, strict) == [
        "spec.config.risk.capital: 5e+06 exceeds the risk policy's limit 1e+06"]


def test_policy_references_must_exist():
    manifest = with_("spec.policies", {"risk": "aggressive", "slo": "strict", "analysis": "slow"})
    assert manifest_errors(manifest, POLICIES) == ["spec.policies.slo: no SLOPolicy named 'strict'",
                                                   "spec.policies.risk: no RiskPolicy named 'aggressive'",
                                                   "spec.policies.analysis: no AnalysisPolicy named 'slow'"]


@given(capital=st.floats(min_value=1.0, max_value=1e9), drawdown=st.floats(min_value=0.01, max_value=1.0))
def test_risk_limits_pass_exactly_when_within_the_policy(capital: float, drawdown: float):
    manifest = with_("spec.config.risk", {"capital": capital, "maxDrawdown": drawdown})
    fields = [e.split(":")[0] for e in admission_errors(manifest, ADMISSION, RISK)]
    assert ("spec.config.risk.capital" in fields) == (capital > RISK.max_capital)
    assert ("spec.config.risk.maxDrawdown" in fields) == (drawdown > RISK.max_drawdown)


def test_cli_checks_manifests(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]):
    assert main(["check-manifests", *map(str, EXAMPLES)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_("spec.replicas", 5)))
    assert main(["check-manifests", str(bad)]) == 1
    assert capsys.readouterr().err == f"{bad}: spy: spec.replicas: 5 exceeds the most allowed (3)\n"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=12)


@given(spec=st.dictionaries(st.sampled_from(["image", "market", "replicas", "config", "policies"]), json_values),
       config=st.dictionaries(st.sampled_from(["risk", "faultInjection"]), json_values), labels=json_values)
def test_any_manifest_yields_messages_never_an_exception(spec: dict[str, Any], config: dict[str, Any], labels: Any):
    manifest = {**VALID, "metadata": {"name": "x", "labels": labels}, "spec": {**spec, "config": config}}
    for problem in manifest_errors(manifest, POLICIES):
        assert problem.split(":")[0].startswith(("spec.", "metadata.labels.")), problem
