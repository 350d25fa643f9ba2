"""The planner's vocabulary: what it observes, the actions it plans, and the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policies.loader import PolicySet, default_policies
from trading_operator.builders import Manifest
from trading_operator.claims import Claim
from trading_operator.conditions import Reason
from trading_operator.findings import Finding

if TYPE_CHECKING:
    from trading_operator.model_resolution import Lookup as ModelLookup
from trading_operator.revisions import Revision

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class Observed:
    """What the executor read: the TradingSymbol, its revisions and its children (by kind)."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    annotations: dict[str, str]
    revisions: list[Revision]
    children: dict[str, Manifest | None]
    now: str
    deleting: bool = False
    policies: PolicySet = field(default_factory=default_policies)
    pods: list[Manifest] = field(default_factory=list)
    """The pods of the symbol's Deployments (main and shadow)."""
    configs: dict[str, Manifest] = field(default_factory=dict)
    """The revisions' immutable runtime-config ConfigMaps, by name."""
    findings: tuple[Finding, ...] = ()
    """The analysis loop's measurements not yet folded into the status."""
    claims: tuple[Claim, ...] = ()
    """The TradingSymbols of the namespace and the symbols they name (this one included)."""
    model: ModelLookup | None = None
    """The registry's answer for `spec.model` (None: the spec names no model, or no registry is configured)."""
    tracking_uri: str | None = None
    """The MLflow tracking server the operator resolves models against (a retraining Job registers there)."""
    jobs: list[Manifest] = field(default_factory=list)
    """The retraining Jobs of the symbol, read only while one the status names has not ended."""


@dataclass(frozen=True)
class CreateObject:
    manifest: Manifest


@dataclass(frozen=True)
class PatchObject:
    """A JSON merge patch of the operator's fields onto an existing child."""

    kind: str
    name: str
    patch: Manifest


@dataclass(frozen=True)
class DeleteObject:
    kind: str
    name: str


@dataclass(frozen=True)
class RemoveAnnotation:
    """Remove an annotation of the TradingSymbol (a handled request)."""

    key: str


@dataclass(frozen=True)
class EmitEvent:
    type: str
    reason: str
    message: str


Action = CreateObject | PatchObject | DeleteObject | RemoveAnnotation | EmitEvent


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] | None = None
    """The new status, or None when it would not change."""
    retry: str | None = None
    """Why the reconcile must run again soon (with backoff) although nothing failed: e.g. a spec held
    until its model resolves."""

    def event(self, type_: str, reason: Reason, message: str) -> None:
        self.actions.append(EmitEvent(type_, reason.value, message))


