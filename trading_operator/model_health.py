"""Whether the running revision's pods serve their meta-model or fell back to the rule-based combiner — pure.

The runtime never crashes on a model: it falls back and says so in its metrics (`tradeops_model_serving`,
1 serving / 0 fallen back, and `tradeops_model_fallback_total{reason}`). The analysis loop measures the gauge
of the running revision from Prometheus (`queries`, when `due`) and records a `ModelServingMeasured`
finding; the planner folds the latest one into the `ModelFallback` condition (`fold`), with an Event when
the pods fall back and when they serve again. Only a spec that serves a model has the condition."""

from __future__ import annotations

from trading_operator.analysis import Scope, revision_due
from trading_operator.api import ConditionStatus, TradingSymbolSpec, TradingSymbolStatus
from trading_operator.conditions import ConditionType, Reason, get_condition, set_condition
from trading_operator.findings import Finding, ModelServingMeasured
from trading_operator.plans import NORMAL, WARNING, Plan

CHECK_SECONDS = 30.0
"""How often the running revision's serving gauge is measured."""


def serves_a_model(spec: TradingSymbolSpec) -> bool:
    return spec.model is not None or bool(spec.config.ml.model_path)


def due(spec: TradingSymbolSpec, status: TradingSymbolStatus, last_checked: str | None, now: str) -> int | None:
    """The revision whose serving to measure now, if any."""
    return revision_due(serves_a_model(spec), spec, status, last_checked, now, CHECK_SECONDS)


def queries(namespace: str, symbol: str, revision: int) -> list[str]:
    """(pods reporting the gauge, pods serving) of one revision."""
    series = f"tradeops_model_serving{{{Scope(namespace, symbol, revision).selector()}}}"
    return [f"count({series})", f"sum({series})"]


def fold(result: Plan, spec: TradingSymbolSpec, status: TradingSymbolStatus, findings: tuple[Finding, ...],
         generation: int, now: str) -> TradingSymbolStatus:
    """The ModelFallback condition from the latest measurement of the running revision (no model: none)."""
    if not serves_a_model(spec):
        if get_condition(status.conditions, ConditionType.MODEL_FALLBACK) is None:
            return status
        return status.model_copy(update={
            "conditions": [c for c in status.conditions if c.type != ConditionType.MODEL_FALLBACK]})
    latest = next((f for f in reversed(findings) if isinstance(f, ModelServingMeasured)
                   and f.revision == status.current_revision), None)
    previous = get_condition(status.conditions, ConditionType.MODEL_FALLBACK)
    if latest is None:
        if previous is not None:
            return status
        verdict = (ConditionStatus.UNKNOWN, Reason.NO_DATA, "not measured yet")
    else:
        verdict = _verdict(latest)
    kind, reason, detail = verdict
    message = f"Revision {status.current_revision}: {detail}"
    if kind is ConditionStatus.TRUE and (previous is None or previous.status is not ConditionStatus.TRUE):
        result.event(WARNING, Reason.MODEL_FALLBACK, message)
    elif kind is ConditionStatus.FALSE and previous is not None and previous.status is ConditionStatus.TRUE:
        result.event(NORMAL, Reason.MODEL_SERVING, message)
    return status.model_copy(update={"conditions": set_condition(status.conditions, ConditionType.MODEL_FALLBACK,
                                                                 kind, reason, message, generation, now)})


def _verdict(measured: ModelServingMeasured) -> tuple[ConditionStatus, Reason, str]:
    if measured.error:
        return ConditionStatus.UNKNOWN, Reason.NO_DATA, f"no data: {measured.error}"
    if not measured.pods or measured.serving is None:
        return ConditionStatus.UNKNOWN, Reason.NO_DATA, "no data: no pod of the revision reports tradeops_model_serving"
    pods, serving = int(measured.pods), int(measured.serving)
    if serving < pods:
        return (ConditionStatus.TRUE, Reason.MODEL_FALLBACK,
                f"{pods - serving} of {pods} pods fell back to the rule-based combiner (tradeops_model_serving 0; "
                "the reason is in tradeops_model_fallback_total and the pod's log)")
    return ConditionStatus.FALSE, Reason.MODEL_SERVING, f"{pods} of {pods} pods serve the model"
