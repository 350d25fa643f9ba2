"""Which registry model version new revisions pin: `spec.model` (a name and an alias or version) against what
the registry answered (a `Lookup`, read by model_registry.py at the edge) and the last resolution in status.

Pure: the planner asks `pin()` and folds the answer into the revision's runtime config (`with_model`) and the
status (`apply`). A revision pins a version for good, so an unreachable registry never creates a revision
with an unresolved model: the last resolution of the same reference is kept (with the condition saying the
registry did not answer), and with none the spec is held and the reconcile retried with backoff."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from trading_operator.api import ConditionStatus, ModelRef, PinnedModel, TradingSymbolStatus
from trading_operator.conditions import ConditionType, Reason, get_condition, set_condition
from trading_operator.plans import NORMAL, WARNING, Plan

MODEL_FILE = "model.onnx"
"""The ONNX file inside a version's artifact directory (mlflow.onnx's layout)."""


@dataclass(frozen=True)
class Lookup:
    """The registry's answer for one reference: a version and where its artifact is, or why not."""

    name: str
    ref: str
    at: str
    version: int | None = None
    uri: str | None = None
    failure: Reason | None = None
    """ModelRegistryUnreachable, ModelNotFound or ModelRegistryNotConfigured."""
    message: str = ""


@dataclass(frozen=True)
class Pinning:
    """What new revisions pin (None: hold the spec), and the ModelResolved condition that says why."""

    pinned: PinnedModel | None
    status: ConditionStatus
    reason: Reason
    message: str


def _same_reference(ref: ModelRef, pinned: PinnedModel | None) -> bool:
    return pinned is not None and pinned.name == ref.name and pinned.ref == ref.ref


def pin(ref: ModelRef, lookup: Lookup | None, last: PinnedModel | None) -> Pinning:
    """The version new revisions pin: the registry's answer, else the last resolution of the same reference."""
    where = f"{ref.name}@{ref.ref}"
    if lookup is None:
        lookup = Lookup(ref.name, ref.ref, "", failure=Reason.MODEL_REGISTRY_NOT_CONFIGURED,
                        message="no MLflow tracking server (MLFLOW_TRACKING_URI) configured for the operator")
    if lookup.failure is None and lookup.version is not None and lookup.uri is not None:
        pinned = PinnedModel(name=ref.name, ref=ref.ref, version=lookup.version, uri=lookup.uri,
                             resolved_at=lookup.at)
        if _same_reference(ref, last) and last is not None and last.version == lookup.version:
            pinned = last  # unchanged: keep when it was first resolved, and write no status
        return Pinning(pinned, ConditionStatus.TRUE, Reason.MODEL_VERSION_RESOLVED,
                       f"{where} is version {pinned.version}")
    failure = lookup.failure or Reason.MODEL_NOT_FOUND
    if _same_reference(ref, last) and failure is not Reason.MODEL_NOT_FOUND:
        assert last is not None
        return Pinning(last, ConditionStatus.FALSE, failure,
                       f"{where}: {lookup.message}; new revisions keep version {last.version}, resolved "
                       f"{last.resolved_at}")
    return Pinning(None, ConditionStatus.FALSE, failure,
                   f"{where}: {lookup.message}; no revision is created until it resolves (retrying)")


def with_model(config: dict[str, Any], pinned: PinnedModel) -> dict[str, Any]:
    """A runtime config (camelCase, as dumped) that serves the pinned version."""
    out = copy.deepcopy(config)
    out.setdefault("ml", {}).update({"modelPath": pinned.uri, "modelName": pinned.name,
                                     "modelVersion": pinned.version})
    return out


def apply(result: Plan, status: TradingSymbolStatus, pinning: Pinning, generation: int,
          now: str) -> TradingSymbolStatus:
    """The status with the ModelResolved condition and the resolution; an Event when either changes."""
    last = status.model
    previous = get_condition(status.conditions, ConditionType.MODEL_RESOLVED)
    pinned = pinning.pinned
    if pinned is not None and pinning.status is ConditionStatus.TRUE and (
            last is None or (last.name, last.ref, last.version) != (pinned.name, pinned.ref, pinned.version)):
        was = f" (was version {last.version})" if last is not None and last.name == pinned.name else ""
        result.event(NORMAL, Reason.MODEL_VERSION_RESOLVED,
                     f"{pinned.name}@{pinned.ref} resolved to version {pinned.version}{was}")
    elif pinning.status is ConditionStatus.FALSE and (
            previous is None or previous.status != pinning.status or previous.reason != pinning.reason):
        result.event(WARNING, pinning.reason, pinning.message)
    conditions = set_condition(status.conditions, ConditionType.MODEL_RESOLVED, pinning.status, pinning.reason,
                               pinning.message, generation, now)
    return status.model_copy(update={"conditions": conditions, "model": pinned or last})


def without_model(status: TradingSymbolStatus) -> TradingSymbolStatus:
    """A spec without `model`: no ModelResolved condition and no resolution in status."""
    if status.model is None and get_condition(status.conditions, ConditionType.MODEL_RESOLVED) is None:
        return status
    return status.model_copy(update={
        "model": None,
        "conditions": [c for c in status.conditions if c.type != ConditionType.MODEL_RESOLVED]})
