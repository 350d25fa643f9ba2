"""What an audit entry records: its kind, and the kind each operator Event reason becomes."""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    SYMBOL_CREATED = "symbol-created"
    SYMBOL_CHANGED = "symbol-changed"
    SYMBOL_DELETED = "symbol-deleted"
    HALT = "halt"
    UNHALT = "unhalt"
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK_REQUESTED = "rollback-requested"
    REVISION = "revision"
    ROLLBACK = "rollback"
    PROMOTION = "promotion"
    TUNING = "tuning"
    SELF_HEALING = "self-healing"
    ANALYSIS = "analysis"
    DRIFT_CORRECTED = "drift-corrected"
    SPEC_REJECTED = "spec-rejected"
    DRAIN = "drain"
    OPERATOR_EVENT = "operator-event"
    MODEL_PROMOTION = "model-promotion"
    """`opsctl model promote` moved a meta-model's `champion` alias (audit.entries.model_promotion)."""
    # Entered by the runtime's tables (trading_runtime.storage.audit_schema.RUNTIME_KINDS)
    ORDER = "order"
    FILL = "fill"
    ORDER_REJECTED = "order-rejected"
    RISK_EVENT = "risk-event"


EVENT_KINDS: dict[str, Kind] = {
    "RolledBack": Kind.ROLLBACK,
    "RollbackFailed": Kind.ROLLBACK,
    "Promoted": Kind.PROMOTION,
    "TuningProposed": Kind.TUNING,
    "TuningKept": Kind.TUNING,
    "TuningReverted": Kind.TUNING,
    "SelfHealingRestart": Kind.SELF_HEALING,
    "SelfHealingExhausted": Kind.SELF_HEALING,
    "AnalysisFailed": Kind.ANALYSIS,
    "AnalysisInconclusive": Kind.ANALYSIS,
    "DriftCorrected": Kind.DRIFT_CORRECTED,
    "ChildRestored": Kind.DRIFT_CORRECTED,
    "InvalidSpec": Kind.SPEC_REJECTED,
    "Draining": Kind.DRAIN,
    "Drained": Kind.DRAIN,
    "DrainTimedOut": Kind.DRAIN,
}
"""Operator Event reasons (trading_operator.conditions.Reason) by the entry kind they become; any other
reason of an Event about a TradingSymbol is kept as `operator-event`."""

INCIDENT_KINDS = frozenset({Kind.ROLLBACK, Kind.SELF_HEALING, Kind.RISK_EVENT, Kind.DRIFT_CORRECTED})
"""Kinds the compliance report lists as incidents."""
