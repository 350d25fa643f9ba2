"""Admission: what a TradingSymbol manifest kept in git must satisfy before it is applied.

Pure functions over the manifest as a mapping (the operator's models are not imported: policies stay below
the operator). Schema validation is the CRD's job; these are the rules a valid spec may still break. Every
message names the field it is about (`spec.image: ...`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from policies.loader import PolicySet
from policies.models import AdmissionPolicySpec, RiskPolicySpec
from policies.risk import RISK_BOUNDS, cap_violations
from trading_runtime.config import BrokerApiKey, FaultInjection, MachineLearning, RiskLimits

KIND = "TradingSymbol"
GROUP = "trading.tradeops.io"

def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _defaults(model: type[RiskLimits] | type[FaultInjection] | type[MachineLearning]) -> dict[str, Any]:
    """The runtime's defaults by camelCase name: an omitted field runs with its default, so it is checked too."""
    return {field.alias or name: field.default for name, field in model.model_fields.items()}


def _image_errors(image: Any, policy: AdmissionPolicySpec) -> list[str]:
    if not isinstance(image, str) or not image:
        return ["spec.image: required"]
    problems = []
    if not image.startswith(tuple(policy.allowed_registries)):
        problems.append(f"spec.image: {image} is not from an allowed registry ({', '.join(policy.allowed_registries)})")
    if policy.require_digest and "@sha256:" not in image:
        problems.append(f"spec.image: {image} must be pinned by digest (@sha256:...)")
    return problems


def _risk_errors(config: Mapping[str, Any], risk: RiskPolicySpec) -> list[str]:
    """The caps (policies/risk.py decides them) once every bounded limit is a number."""
    limits = {**_defaults(RiskLimits), **_mapping(config.get("risk"))}
    problems = [f"spec.config.risk.{field}: must be a number, got {limits.get(field)!r}"
                for _, field, _ in RISK_BOUNDS
                if not isinstance(limits.get(field), int | float) or isinstance(limits.get(field), bool)]
    if problems:
        return problems
    try:
        parsed = RiskLimits.model_validate(limits)
    except ValueError as error:
        return [f"spec.config.risk: {error}"]
    return cap_violations(parsed, risk) + _entry_score_floor(config, risk)


def _entry_score_floor(config: Mapping[str, Any], risk: RiskPolicySpec) -> list[str]:
    """The online thresholds may not adapt below the risk policy's floor."""
    floor = {**_defaults(MachineLearning), **_mapping(config.get("ml"))}.get("entryScoreMin")
    if isinstance(floor, int | float) and not isinstance(floor, bool) and floor < risk.min_entry_score:
        return [f"spec.config.ml.entryScoreMin: {floor:g} is below the risk policy's floor {risk.min_entry_score:g}"]
    return []


def _broker_key_errors(config: Mapping[str, Any]) -> list[str]:
    """A broker API key's value comes from its Secret: a manifest kept in git carries none (the API server would
    drop the field unseen, and the secret would be in git)."""
    keys = _mapping(config.get("broker")).get("keys")
    known = {field.alias or name for name, field in BrokerApiKey.model_fields.items()}
    return [f"spec.config.broker.keys[{index}].{field}: an API key's value comes from a Secret (secretKeyRef), "
            "never from the manifest"
            for index, key in enumerate(keys if isinstance(keys, list) else []) if isinstance(key, Mapping)
            for field in sorted(str(f) for f in set(key) - known)]


def admission_errors(manifest: Mapping[str, Any], policy: AdmissionPolicySpec, risk: RiskPolicySpec) -> list[str]:
    """`field: problem` for every admission rule and risk bound the TradingSymbol manifest breaks."""
    if manifest.get("kind") != KIND or not str(manifest.get("apiVersion", "")).startswith(f"{GROUP}/"):
        return [f"kind: not a {KIND} ({manifest.get('apiVersion')!r}, {manifest.get('kind')!r})"]
    meta, spec = _mapping(manifest.get("metadata")), _mapping(manifest.get("spec"))
    config = _mapping(spec.get("config"))
    problems = _image_errors(spec.get("image"), policy)
    market = spec.get("market")
    if market not in policy.allowed_markets:
        problems.append(f"spec.market: {market!r} is not an allowed market ({', '.join(policy.allowed_markets)})")
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        problems.append(f"spec.replicas: must be an integer, got {replicas!r}")
    elif replicas > policy.max_replicas:
        problems.append(f"spec.replicas: {replicas} exceeds the most allowed ({policy.max_replicas})")
    if policy.forbid_fault_injection:
        faults = {**_defaults(FaultInjection), **_mapping(config.get("faultInjection"))}
        problems += [f"spec.config.faultInjection.{name}: must be 0 in a manifest kept in git, got {value!r}"
                     for name, value in sorted(faults.items()) if value != 0]
    labels = _mapping(meta.get("labels"))
    problems += [f"metadata.labels.{label}: required" for label in policy.required_labels if not labels.get(label)]
    return problems + _broker_key_errors(config) + _risk_errors(config, risk)


def manifest_errors(manifest: Mapping[str, Any], policies: PolicySet, admission: str = "default") -> list[str]:
    """Admission errors against the named AdmissionPolicy and the RiskPolicy the manifest names (and that the
    SLO, tuning and analysis policies it names exist)."""
    refs = _mapping(_mapping(manifest.get("spec")).get("policies"))
    problems = []
    for kind, key in (("slo", "SLOPolicy"), ("tuning", "TuningPolicy"), ("risk", "RiskPolicy"),
                      ("analysis", "AnalysisPolicy")):
        name = refs.get(kind, "default")
        if name not in policies.by_kind(key):
            problems.append(f"spec.policies.{kind}: no {key} named {name!r}")
    if admission not in policies.admission:
        return [*problems, f"admission: no AdmissionPolicy named {admission!r}"]
    risk = policies.risk.get(refs.get("risk", "default"))
    if risk is None:
        return problems
    return problems + admission_errors(manifest, policies.admission[admission], risk)


def normalise_symbol(symbol: str) -> str:
    """The symbol as markets name it: `spy`, ` SPY ` and `SPY` are one symbol (and one trader)."""
    return symbol.strip().upper()


Label = TypeVar("Label")


@dataclass(frozen=True)
class SymbolConflict(Generic[Label]):
    """A TradingSymbol manifest naming a symbol an earlier one already names in the same namespace."""

    claimant: Label
    owner: Label
    namespace: str
    symbol: str

    def message(self, owner: str) -> str:
        return (f"{self.symbol} in namespace {self.namespace} is already claimed by {owner}: one symbol has one "
                "trader (the operator would refuse this one with a Conflict)")


def symbol_conflicts(manifests: Sequence[tuple[Label, Mapping[str, Any]]]) -> list[SymbolConflict[Label]]:
    """One symbol, one trader: every TradingSymbol (labelled by the caller) that names a symbol an earlier one, in
    the given order, already names in the same namespace (no namespace: `default`, where kubectl puts it). The
    same object named twice (one name in one namespace) is one claimant."""
    first: dict[tuple[str, str], tuple[Label, Any]] = {}
    found = []
    for label, manifest in manifests:
        if manifest.get("kind") != KIND:
            continue
        meta, spec = _mapping(manifest.get("metadata")), _mapping(manifest.get("spec"))
        symbol = spec.get("symbol")
        if not isinstance(symbol, str) or not normalise_symbol(symbol):
            continue
        key = (str(meta.get("namespace") or "default"), normalise_symbol(symbol))
        if key not in first:
            first[key] = (label, meta.get("name"))
        elif first[key][1] != meta.get("name"):
            found.append(SymbolConflict(label, first[key][0], *key))
    return found
