"""Typed condition types and reasons, and the one helper that sets a condition."""

from __future__ import annotations

import enum

from trading_operator.api import Condition, ConditionStatus


class ConditionType(enum.StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    PAUSED = "Paused"
    HALTED = "Halted"
    SPEC_VALID = "SpecValid"
    LAST_REQUEST = "LastRequest"
    """The answer to the latest request (True: accepted, False: refused, with why)."""
    CONFLICT = "Conflict"
    """True while another TradingSymbol of the namespace owns the symbol (nothing runs); set only once a
    symbol has been in conflict."""
    MODEL_FALLBACK = "ModelFallback"
    """True when pods of the running revision fell back from their meta-model to the rule-based combiner."""
    MODEL_RESOLVED = "ModelResolved"
    """`spec.model` resolved to a registry version that new revisions pin (only with a `spec.model`)."""
    REGIME_CHANGE = "RegimeChange"
    """True within `regimeCooldownSeconds` of a regime change the running revision's pods detected (sizing is
    tightened meanwhile); only with `spec.config.ml.regimeDetection`."""
    ROLLED_BACK = "RolledBack"
    """FleetRollout: every symbol it touched runs its own spec's revision again."""


class Reason(enum.StrEnum):
    """CamelCase reasons used in conditions and Events."""

    # Ready / Progressing
    ALL_REPLICAS_READY = "AllReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    ROLLING_OUT = "RollingOut"
    ROLLOUT_COMPLETE = "RolloutComplete"
    SCALED_TO_ZERO = "ScaledToZero"
    # SpecValid
    SPEC_ACCEPTED = "SpecAccepted"
    INVALID_SPEC = "InvalidSpec"
    # Degraded
    AS_EXPECTED = "AsExpected"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_FAILED = "RollbackFailed"
    # Degraded: why a revision with no stable one to return to never became ready (pod-level reasons)
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    OOM_KILLED = "OOMKilled"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    INVALID_IMAGE_NAME = "InvalidImageName"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    RUN_CONTAINER_ERROR = "RunContainerError"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    # Conflict (and the SymbolConflict Event): one symbol, one trader
    SYMBOL_CONFLICT = "SymbolConflict"
    SYMBOL_OWNED = "SymbolOwned"
    # SpecValid False: spec.symbol changed on a cluster that did not enforce the CRD's immutability rule
    SYMBOL_IMMUTABLE = "SymbolImmutable"
    # Paused / Halted
    PAUSED_BY_SPEC = "PausedBySpec"
    NOT_PAUSED = "NotPaused"
    TRADING_DISABLED = "TradingDisabled"
    TRADING_ENABLED = "TradingEnabled"
    # LastRequest (and the RequestRefused Event)
    REQUEST_ACCEPTED = "RequestAccepted"
    REQUEST_REFUSED = "RequestRefused"
    # ModelResolved (and its Events)
    MODEL_VERSION_RESOLVED = "ModelVersionResolved"
    MODEL_REGISTRY_UNREACHABLE = "ModelRegistryUnreachable"
    MODEL_REGISTRY_NOT_CONFIGURED = "ModelRegistryNotConfigured"
    MODEL_NOT_FOUND = "ModelNotFound"
    # ModelFallback (and its Events)
    MODEL_FALLBACK = "ModelFallback"
    MODEL_SERVING = "ModelServing"
    NO_DATA = "NoData"
    # RegimeChange (and its Events)
    REGIME_CHANGED = "RegimeChanged"
    REGIME_STABLE = "RegimeStable"
    REGIME_LEARNING = "RegimeLearning"
    RETRAINING_REQUESTED = "RetrainingRequested"
    RETRAINING_SKIPPED = "RetrainingSkipped"
    RETRAINING_SUCCEEDED = "RetrainingSucceeded"
    RETRAINING_FAILED = "RetrainingFailed"
    # Events only
    RESTARTING = "Restarting"
    REVISION_CREATED = "RevisionCreated"
    REVISIONS_PRUNED = "RevisionsPruned"
    CHILD_CREATED = "ChildCreated"
    CHILD_UPDATED = "ChildUpdated"
    CHILD_RESTORED = "ChildRestored"
    DRIFT_CORRECTED = "DriftCorrected"
    DRAINING = "Draining"
    DRAINED = "Drained"
    DRAIN_TIMED_OUT = "DrainTimedOut"
    SPEC_HELD = "SpecHeld"
    # Analysis, promotion, tuning, self-healing
    ANALYSIS_STARTED = "AnalysisStarted"
    ANALYSIS_RUNNING = "AnalysisRunning"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    ANALYSIS_FAILED = "AnalysisFailed"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"
    RETRYING = "Retrying"
    INVALID_POLICY = "InvalidPolicy"
    TUNING_PROPOSED = "TuningProposed"
    TUNING_KEPT = "TuningKept"
    TUNING_REVERTED = "TuningReverted"
    TUNING_SKIPPED = "TuningSkipped"
    SLO_BREACH = "SLOBreach"
    SELF_HEALING_RESTART = "SelfHealingRestart"
    SELF_HEALING_EXHAUSTED = "SelfHealingExhausted"
    # FleetRollout
    WAVE_STARTED = "WaveStarted"
    WAVE_SUCCEEDED = "WaveSucceeded"
    WAVE_FAILED = "WaveFailed"
    WAVE_PAUSE = "WavePause"
    FLEET_COMPLETE = "FleetRolloutComplete"
    FLEET_ABORTED = "FleetRolloutAborted"
    FLEET_ROLLING_BACK = "FleetRollingBack"
    FLEET_ROLLED_BACK = "FleetRolledBack"
    SYMBOL_SKIPPED = "SymbolSkipped"
    FLEET_PAUSED = "FleetRolloutPaused"
    FLEET_RESUMED = "FleetRolloutResumed"
    FLEET_RETRIED = "FleetRolloutRetried"
    FLEET_CHANGE_COMMITTED = "FleetChangeCommitted"


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: str,
    generation: int,
    now: str,
) -> list[Condition]:
    """A new list with the condition set; lastTransitionTime moves only when the status changes."""
    previous = next((c for c in conditions if c.type == type_), None)
    transition = previous.last_transition_time if previous and previous.status == status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [updated]


def get_condition(conditions: list[Condition], type_: ConditionType) -> Condition | None:
    """The condition of a type, if present."""
    return next((c for c in conditions if c.type == type_), None)
