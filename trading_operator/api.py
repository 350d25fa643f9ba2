"""The TradingSymbol API (v1alpha1): spec and status models, the single source of the CRD schema."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

# The API's identity is re-exported here (`api.GROUP`, ...), where the models that carry it live.
from trading_operator.identity import API_VERSION as API_VERSION
from trading_operator.identity import GROUP as GROUP
from trading_operator.identity import KIND as KIND
from trading_operator.identity import PLURAL as PLURAL
from trading_operator.identity import SHORT_NAMES as SHORT_NAMES
from trading_operator.identity import SINGULAR as SINGULAR
from trading_operator.identity import VERSION as VERSION
from trading_runtime.config import CamelModel, RuntimeConfig

SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.]{0,9}$"
IMAGE_PATTERN = r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(@sha256:[a-f0-9]{64})?$"
SYMBOL_IMMUTABLE = ("spec.symbol is immutable: a TradingSymbol trades one symbol for life (delete it and create "
                    "another to trade a different one)")
"""The message of the CEL transition rule the API server enforces, and of the operator's own refusal."""
CPU_PATTERN = r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$"
MEMORY_PATTERN = r"^[0-9]+(Ki|Mi|Gi)?$"


def cpu_millis(quantity: str) -> int:
    """`250m` -> 250, `1.5` -> 1500."""
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return round(float(quantity) * 1000)


_MEMORY_UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def memory_bytes(quantity: str) -> int:
    """`256Mi` -> 268435456."""
    match = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi)?", quantity)
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]


class Market(enum.StrEnum):
    """The market whose options a symbol trades."""

    EQUITY_OPTIONS = "equity-options"
    INDEX_OPTIONS = "index-options"
    FUTURES_OPTIONS = "futures-options"


class ResourceQuantities(CamelModel):
    """CPU and memory quantities in Kubernetes notation."""

    cpu: Annotated[str, Field(pattern=CPU_PATTERN)]
    """CPU, e.g. `250m` or `1`."""
    memory: Annotated[str, Field(pattern=MEMORY_PATTERN)]
    """Memory, e.g. `256Mi`."""


class Resources(CamelModel):
    """Requests and limits of the trading container; requests may not exceed limits."""

    requests: ResourceQuantities = ResourceQuantities(cpu="250m", memory="256Mi")
    """Resources the scheduler reserves."""
    limits: ResourceQuantities = ResourceQuantities(cpu="1", memory="512Mi")
    """Hard limits of the container."""

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        if cpu_millis(self.requests.cpu) > cpu_millis(self.limits.cpu):
            raise ValueError(
                f"resources.requests.cpu ({self.requests.cpu}) exceeds "
                f"resources.limits.cpu ({self.limits.cpu})"
            )
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise ValueError(
                f"resources.requests.memory ({self.requests.memory}) exceeds "
                f"resources.limits.memory ({self.limits.memory})"
            )
        return self


class PolicyRefs(CamelModel):
    """Names of the policies (in policies/) that govern this symbol."""

    slo: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")] = "default"
    """SLO policy name."""
    tuning: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")] = "default"
    """Tuning policy name."""
    risk: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")] = "default"
    """Risk-limits policy name."""
    analysis: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")] = "default"
    """Analysis policy name."""


class RolloutSettings(CamelModel):
    """Per-symbol overrides of the analysis policy (unset fields come from `policies.analysis`)."""

    analysis_interval_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    """Seconds between two analysis measurements."""
    analysis_count: Annotated[int, Field(ge=1, le=1000)] | None = None
    """Measurements per metric in one analysis run."""
    failure_limit: Annotated[int, Field(ge=0, le=100)] | None = None
    """Failed measurements of a metric tolerated before the run fails."""
    inconclusive_limit: Annotated[int, Field(ge=0, le=100)] | None = None
    """Inconclusive measurements of a metric tolerated before the run ends Inconclusive."""
    shadow: bool = False
    """Run a new revision beside the stable one with trading disabled, compared with it, before it takes over."""
    progress_deadline_seconds: Annotated[int, Field(ge=30, le=1800)] = 120
    """Seconds a new revision may go without progress before it is Failed and rolled back (the Deployment's
    `progressDeadlineSeconds`). A crash loop fails it at once, whatever this says. 120 s, not Kubernetes' 600:
    the runtime is ready within seconds of its feed connecting, and a runtime image pulls in well under a
    minute, so two minutes without progress means a revision that will not come up (an image that cannot be
    pulled, a config the runtime cannot use, a readiness check that never passes) — and while it is stuck
    no fix, analysis or tuning can proceed for the symbol. At least 30 s (a cold node's image pull), at most
    30 min."""
    crash_loop_restarts: Annotated[int, Field(ge=2, le=20)] = 2
    """Restarts of one container within `crashLoopWindowSeconds` that make a crash loop, even when the container
    is Ready again between them (a runtime that crashes some time after it starts). 2: what the kubelet itself
    calls CrashLoopBackOff (the second crash waits out a back-off), so the loop reads the same before, during
    and after each back-off; one restart alone can be a node's blip."""
    crash_loop_window_seconds: Annotated[int, Field(ge=60, le=3600)] = 600
    """The window restarts are counted in. 10 min, the kubelet's own memory of a container's back-off: a
    container that crashes less often than that restarts at once each time and looks healthy to it."""


class DrainSettings(CamelModel):
    """How deletion winds trading down."""

    timeout_seconds: Annotated[int, Field(ge=0, le=3600)] = 120
    """Longest wait for the pods to report no open positions before the children are deleted anyway."""


class ModelRef(CamelModel):
    """A registered model in the MLflow model registry, by alias or by version. The operator resolves it when
    it creates a revision, and the revision pins the version: a new version under the alias is a new revision."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    """Registered model name, e.g. `tradeops-meta-spy`."""
    alias: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")] | None = None
    """Alias to follow (default `champion` when no version is given)."""
    version: Annotated[int, Field(ge=1)] | None = None
    """A fixed version instead of an alias."""
    poll_interval_seconds: Annotated[int, Field(ge=1, le=86400)] = 60
    """How long an alias's resolution is reused before the registry is asked again (a moved alias is
    noticed at the first reconcile after this)."""

    @model_validator(mode="after")
    def _alias_or_version(self) -> Self:
        if self.alias is not None and self.version is not None:
            raise ValueError(f"model: give an alias ({self.alias}) or a version ({self.version}), not both")
        return self

    @property
    def ref(self) -> str:
        """The version number, or the alias (`champion` by default)."""
        return str(self.version) if self.version is not None else (self.alias or "champion")


class TradingSymbolSpec(CamelModel):
    """Desired state of one traded symbol."""

    symbol: Annotated[str, Field(pattern=SYMBOL_PATTERN, json_schema_extra={
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": SYMBOL_IMMUTABLE}]})]
    """Underlying symbol, upper case, e.g. SPY, QQQ, ES. Immutable: the pods read it from the live spec, so a
    change would reach every pod at once with no new revision (the API server refuses it)."""
    market: Market
    """Market of the symbol's options."""
    image: Annotated[str, Field(pattern=IMAGE_PATTERN, max_length=512)]
    """Container image of the trading runtime (by tag or digest)."""
    replicas: Annotated[int, Field(ge=0, le=5)] = 1
    """Pods of the symbol: one trades (it holds the symbol's Lease), the others are hot standbys that take over;
    0 stops the symbol without deleting it."""
    resources: Resources = Resources()
    """Container resources."""
    config: RuntimeConfig = RuntimeConfig()
    """Runtime configuration (strategy thresholds, runtime parameters, fault injection)."""
    paused: bool = False
    """Hold: spec changes are recorded but not rolled out until unpaused."""
    trading_enabled: bool = True
    """Kill switch: when false the pods keep running but open no positions."""
    policies: PolicyRefs = PolicyRefs()
    """Policies that govern this symbol."""
    rollout: RolloutSettings = RolloutSettings()
    """Analysis settings for new revisions."""
    revision_history_limit: Annotated[int, Field(ge=1, le=100)] = 10
    """Revisions kept for rollback (the running and stable ones are always kept)."""
    drain: DrainSettings = DrainSettings()
    """Deletion drain settings."""
    model: ModelRef | None = None
    """The meta-model to serve, from the MLflow model registry (resolved to a version per revision)."""

    @model_validator(mode="after")
    def _one_model_source(self) -> Self:
        if self.model is not None and self.config.ml.model_path:
            raise ValueError("model and config.ml.modelPath both name a model: give one")
        return self


class ConditionStatus(enum.StrEnum):
    """Status of a condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(CamelModel):
    """A Kubernetes condition (API conventions)."""

    type: str
    """Condition type, e.g. Ready."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    """CamelCase reason."""
    message: str = ""
    """Human-readable detail."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    observed_generation: int = 0
    """The generation the condition was computed for."""


class Phase(enum.StrEnum):
    """Summary of the state of a TradingSymbol."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    DEGRADED = "Degraded"
    PAUSED = "Paused"
    HALTED = "Halted"
    INVALID = "Invalid"
    TERMINATING = "Terminating"


class RollbackRecord(CamelModel):
    """The last rollback performed."""

    from_revision: int
    """Revision that was running before."""
    to_revision: int
    """Revision that runs now."""
    reason: str
    """Why (CamelCase reason and detail)."""
    time: str
    """When (RFC 3339)."""


class AnalysisKind(enum.StrEnum):
    """Why an analysis run exists."""

    ROLLOUT = "Rollout"
    SHADOW = "Shadow"
    TUNING = "Tuning"


class AnalysisPhase(enum.StrEnum):
    """State of an analysis run, or of one measurement (plus Error for a failed query)."""

    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class Measurement(CamelModel):
    """One measured value and how it was judged."""

    time: str
    """When it was taken (RFC 3339)."""
    metric: str
    """SLO name, or `objective` for the tuning objective."""
    phase: AnalysisPhase
    """Successful, Failed, Inconclusive or Error."""
    value: float | None = None
    """The measured value (None: no data or error)."""
    baseline: float | None = None
    """The stable revision's value (shadow runs)."""
    samples: float | None = None
    """Trials (ratio metrics) or samples behind the value: below the metric's minimum, Inconclusive."""
    low: float | None = None
    """Lower end of the value's confidence interval (ratio metrics; a value metric's equals its value)."""
    high: float | None = None
    """Upper end of the value's confidence interval."""
    advisory: bool | None = None
    """True for a metric that can fail a run but need not pass it (its SLO's analysis is not required)."""
    message: str = ""
    """Why it was judged so."""


class MetricTally(CamelModel):
    """Counts of one metric's measurements in a run."""

    metric: str
    """SLO name or `objective`."""
    successful: int = 0
    """Successful measurements."""
    failed: int = 0
    """Failed measurements."""
    inconclusive: int = 0
    """Inconclusive measurements."""
    errors: int = 0
    """Query errors."""
    consecutive_errors: int = 0
    """Query errors in a row."""


class AnalysisRun(CamelModel):
    """The analysis of one revision."""

    revision: int
    """Revision analysed."""
    kind: AnalysisKind
    """Rollout, Shadow or Tuning."""
    phase: AnalysisPhase = AnalysisPhase.RUNNING
    """Running until a verdict."""
    started_at: str
    """When the run started (RFC 3339)."""
    finished_at: str | None = None
    """When the verdict was reached."""
    baseline_revision: int | None = None
    """Stable revision compared against (shadow runs)."""
    message: str = ""
    """The verdict's reasons with the measured values."""
    tallies: list[MetricTally] = []
    """Counts per metric."""
    measurements: list[Measurement] = []
    """The latest measurements (bounded by the policy's measurementsKept)."""


class BackgroundState(CamelModel):
    """Analysis of the stable revision and the self-healing it leads to."""

    unanswered_since: str | None = None
    """Since when Prometheus has answered no background measurement (unset while it answers). Only changes are
    written: when each measurement ran is on the operator's /metrics
    (`tradeops_operator_background_measured_timestamp_seconds`)."""
    last_answered_at: str | None = None
    """When Prometheus answered again after measurements it did not answer: the end of the last outage."""
    consecutive_breaches: int = 0
    """Failed background measurements in a row."""
    last_breach: str = ""
    """The last failed measurement, with values."""
    actions: list[str] = []
    """When self-healing actions were taken (RFC 3339), within the cooldown window."""
    restarted_at: str | None = None
    """Set by a self-healing restart; stamped on the pod template."""
    exhausted: bool = False
    """Self-healing budget spent: the breach is left to people (no loop)."""


class TuningRecord(CamelModel):
    """One tuning proposal and its outcome."""

    time: str
    """When the proposal concluded."""
    parameter: str
    """Runtime-config path."""
    from_value: float
    """Value before."""
    to_value: float
    """Value proposed."""
    revision: int = 0
    """Revision that ran the proposal."""
    baseline: float | None = None
    """Objective of the stable revision."""
    objective: float | None = None
    """Objective measured for the proposal."""
    outcome: str
    """Kept, Reverted (no improvement), SLOBreach, Inconclusive, Aborted, or Invalid (skipped: the config
    it would make breaks a rule of the runtime config, e.g. entryScore above exitScore)."""
    message: str | None = None
    """Why an Invalid proposal was skipped."""


class TuningState(CamelModel):
    """The auto-tuner's search state (coordinate search with step halving)."""

    policy: str = ""
    """Tuning policy in use."""
    generation: int = 0
    """Spec generation the overrides apply to; a new spec restarts the search from git's values."""
    overrides: dict[str, float] = {}
    """Accepted parameter values (part of the stable revision)."""
    candidate: dict[str, float] | None = None
    """Values under analysis."""
    parameter_index: int = 0
    """Parameter being searched."""
    direction: int = 1
    """+1 or -1."""
    step: float | None = None
    """Current step (None: the parameter's first step)."""
    tried_opposite: bool = False
    """Both directions failed at this step: halve it next."""
    baseline_objective: float | None = None
    """Objective of the stable revision."""
    converged: bool = False
    """Every parameter searched down to its minimum step."""
    change_times: list[str] = []
    """Proposal start times within the last hour (change budget)."""
    last_change_at: str | None = None
    """When the last proposal started (cooldown)."""
    history: list[TuningRecord] = []
    """Latest proposals, newest last."""


class RequestAction(enum.StrEnum):
    """What a person asked the operator for (through opsctl)."""

    PROMOTE = "promote"
    ABORT = "abort"
    RETRY = "retry"
    ROLLBACK = "rollback"
    RESTART = "restart"


class RequestOutcome(enum.StrEnum):
    """How the operator answered a request."""

    ACCEPTED = "Accepted"
    REFUSED = "Refused"


class RequestRecord(CamelModel):
    """A request the operator consumed, and its answer (opsctl waits for its id here)."""

    id: str
    """The request's id, chosen by the requester."""
    action: RequestAction
    """promote, abort, retry, rollback or restart."""
    revision: int
    """The revision the request was made for."""
    to_revision: int | None = None
    """Rollback target."""
    generation: int
    """The spec generation the request was made for."""
    outcome: RequestOutcome
    """Accepted or Refused."""
    reason: str
    """CamelCase reason (Accepted, or why it was refused)."""
    message: str = ""
    """What was done, or why not."""
    time: str
    """When it was answered (RFC 3339)."""


class PinnedModel(CamelModel):
    """A registry model reference resolved to a version: what new revisions pin."""

    name: str
    """Registered model name."""
    ref: str
    """The alias or version number it was resolved from."""
    version: int
    """The version the reference named when it was resolved."""
    uri: str
    """Where the runtime loads the version's ONNX artifact from."""
    resolved_at: str
    """When the registry answered (RFC 3339)."""


class RetrainingJob(CamelModel):
    """A retraining Job the operator created for a regime change."""

    job: str
    """The Job's name."""
    model: str
    """The registered model it trains a new `challenger` version of."""
    requested_at: str
    """When the operator created it (RFC 3339); the next one waits for the risk policy's cooldown from here."""
    change_at: str
    """The regime change that requested it (RFC 3339, the runtime's clock)."""
    outcome: Literal["Succeeded", "Failed"] | None = None
    """How the Job ended, once it has (Succeeded: a new `challenger` version is registered)."""


class RegimeState(CamelModel):
    """What the operator has announced of the runtime's regime detector."""

    last_change_at: str | None = None
    """The latest regime change announced with an Event (RFC 3339, the runtime's clock): once per change."""
    retraining: RetrainingJob | None = None
    """The latest retraining requested."""


class FailedRevision(CamelModel):
    """A revision that failed (its analysis, its pods, a breach after promotion, a tuning breach) or was rolled
    back from by request: running it again takes `opsctl rollback --force` and a fresh analysis."""

    revision: int
    """The revision."""
    reason: str
    """Why (CamelCase reason and detail, as in `lastRollback`)."""
    time: str
    """When (RFC 3339)."""


class ForcedRollback(CamelModel):
    """A failed revision a person rolled back to with `--force`: it runs under analysis against stable."""

    revision: int
    """The failed revision under analysis."""
    generation: int
    """The spec generation it was asked for: a new spec ends it (the spec's revision rolls out)."""


class ContainerRestarts(CamelModel):
    """When the operator saw one container of the symbol's pods restart (crash loops between ready flaps)."""

    pod: str
    """Pod name."""
    container: str
    """Container name."""
    revision: int
    """Revision the pod runs."""
    count: int
    """restartCount last seen."""
    times: list[str] = []
    """When its restarts happened (RFC 3339), within `spec.rollout.crashLoopWindowSeconds`, newest last."""


class TradingSymbolStatus(CamelModel):
    """Observed state of a TradingSymbol, written by the operator."""

    observed_generation: int = 0
    """The spec generation last acted on."""
    phase: Phase = Phase.PENDING
    """Summary phase."""
    conditions: list[Condition] = []
    """Ready, Progressing, Degraded, Paused, Halted, SpecValid."""
    current_revision: int = 0
    """Revision the pods run now."""
    stable_revision: int = 0
    """Last revision that became fully ready (rollback target)."""
    update_revision: int = 0
    """Revision built from the current spec (may differ from current while paused or aborted)."""
    aborted_revision: int | None = None
    """Revision rolled back from; not retried until the spec changes or a retry is requested."""
    last_rollback: RollbackRecord | None = None
    """The last rollback."""
    replicas: int = 0
    """Desired pods of the running revision."""
    ready_replicas: int = 0
    """Pods ready."""
    drain_started: str | None = None
    """When deletion began draining (RFC 3339)."""
    previous_stable_revision: int = 0
    """Stable revision before the last promotion (target of a rollback on a breach after a change)."""
    stable_since: str | None = None
    """When the stable revision was promoted (RFC 3339)."""
    analysis: AnalysisRun | None = None
    """The latest analysis run."""
    background: BackgroundState | None = None
    """Background analysis and self-healing."""
    tuning: TuningState | None = None
    """Auto-tuning state and history."""
    requests: list[RequestRecord] = []
    """The latest requests answered (promote, abort, retry, rollback, restart), newest last."""
    model: PinnedModel | None = None
    """The last resolution of `spec.model` (new revisions pin its version)."""
    fleet_change: str | None = None
    """The FleetRollout change the update revision was built with (`rollout@change`), if any."""
    symbol: str | None = None
    """The market symbol this TradingSymbol trades, fixed at its first accepted reconcile: a spec naming another
    (spec.symbol is immutable; a cluster that does not enforce the CRD's rule lets one through) is refused."""
    failed_revisions: list[FailedRevision] = []
    """The latest revisions that failed or were rolled back from, newest last (bounded)."""
    forced_rollback: ForcedRollback | None = None
    """A failed revision rolled back to with `--force`, under analysis."""
    restarts: list[ContainerRestarts] = []
    """Containers of the symbol's pods that restarted, and when (a crash loop is counted in a window)."""
    regime: RegimeState | None = None
    """Regime changes announced and the retraining they requested (with `spec.config.ml.regimeDetection`)."""
