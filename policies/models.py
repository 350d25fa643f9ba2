"""Policy models: SLOs, analysis, tuning, risk limits and admission rules, as kept in git (YAML).

Every policy file holds documents of the form `{apiVersion, kind, metadata: {name}, spec}`; the models
here validate the `spec`. PromQL fields are jinja2 templates: `{{ selector }}` expands to the label
matchers of the scope (symbol, revision, namespace) and `{{ window }}` to a range such as `5m`."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

API_VERSION = "policies.tradeops.io/v1alpha1"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DURATION_PATTERN = r"^[0-9]+(s|m|h|d)$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class PolicyModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (typos must not pass)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
                              use_attribute_docstrings=True)


def duration_seconds(duration: str) -> int:
    """`30s` -> 30, `5m` -> 300, `1h` -> 3600, `3d` -> 259200."""
    match = re.fullmatch(r"([0-9]+)(s|m|h|d)", duration)
    if match is None:
        raise ValueError(f"not a duration: {duration!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# --- SLOs -----------------------------------------------------------------------------------------------


class Comparison(enum.StrEnum):
    """How a measured value passes: strictly below or strictly above the threshold."""

    BELOW = "below"
    ABOVE = "above"


class RatioQueries(PolicyModel):
    """A ratio metric's counts over the window: events out of trials, so it can be judged with an interval."""

    events: Annotated[str, Field(min_length=1)]
    """PromQL template of the events counted in the window (e.g. slow ticks, errors, answered scrapes)."""
    trials: Annotated[str, Field(min_length=1)]
    """PromQL template of the trials in the window (ticks, messages, scrapes, scored calls)."""
    reference: Annotated[str, Field(min_length=1)] | None = None
    """Events of a reference scored on the same trials (the hit rate's best baseline): the threshold then
    applies to the difference `events/trials - reference/trials`."""


class PairedDecisions(PolicyModel):
    """Shadow runs: the candidate's signal calls paired with the stable revision's on the same points of the
    same feed, each scored on the realised move over the strategy's horizon (read from the pods, not from
    Prometheus: a count cannot say which calls two revisions disagreed on)."""

    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_-]*$")] = "/decisions"
    """HTTP path on the pods' metrics port that answers their latest scored calls."""


class AnalysisMetric(PolicyModel):
    """What analysis measures for an SLO, judged against a threshold only when there are enough samples.

    A ratio metric (`ratio`) is judged with a confidence interval: Failed only when the whole interval is
    on the wrong side of the threshold, Successful only when it is wholly on the right side, otherwise
    Inconclusive. A value metric (`query`, e.g. a quantile) has no interval: it is compared as measured,
    but only over at least `minSamples` samples (`samples`). A paired metric (`paired`, shadow runs only)
    is the stable revision's hit rate minus the candidate's on the calls both made on the same points,
    judged on an anytime-valid confidence sequence of the mean per-pair difference (valid at every
    measurement of the growing sample); `minSamples` counts the discordant pairs."""

    ratio: RatioQueries | None = None
    """Counts of a ratio metric (preferred: judged with an interval)."""
    paired: PairedDecisions | None = None
    """The candidate's calls against the stable revision's on the same points (measured in shadow runs only)."""
    query: Annotated[str, Field(min_length=1)] | None = None
    """PromQL template of a value metric, one value for the scope (`{{ selector }}`, `{{ window }}`)."""
    samples: Annotated[str, Field(min_length=1)] | None = None
    """Value metrics: PromQL template of the number of samples behind the value (required with `query`)."""
    min_samples: Annotated[int, Field(ge=1)] = 30
    """Fewer trials (or samples) than this in the window: the measurement is Inconclusive, never Failed."""
    sample_unit: str = "samples"
    """What a trial is, for messages (`ticks`, `messages`, `scrapes`, `calls`)."""
    window: Annotated[str, Field(pattern=DURATION_PATTERN)] = "30s"
    """Range the query looks back over (shortened to exclude a revision's start and warm-up)."""
    passes: Comparison
    """The value must be below (latency, errors) or above (hit rate, availability) the threshold."""
    threshold: float
    """The SLO threshold, in the query's unit."""
    baseline_tolerance: Annotated[float, Field(ge=0.0)] | None = None
    """Shadow runs: the candidate may be at most this much worse than the stable revision (same unit)."""
    required: bool = True
    """A required metric must pass `count` measurements for a rollout analysis to succeed; one that is not
    (a hit rate that needs the strategy's horizon, scrape availability that needs many scrapes) can still
    fail a run, but its inconclusive measurements neither hold nor end it."""
    unit: str = ""
    """Unit for messages (`s`, `ratio`)."""

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if sum(kind is not None for kind in (self.ratio, self.query, self.paired)) != 1:
            raise ValueError("an analysis metric needs exactly one of ratio (events/trials), query (a value) or "
                             "paired (calls against the stable revision's)")
        if self.query is not None and self.samples is None:
            raise ValueError("a value metric (query) needs samples: the PromQL count behind the value")
        if self.ratio is not None and self.samples is not None:
            raise ValueError("samples is for value metrics; a ratio's trials are its samples")
        return self

    def templates(self) -> dict[str, str]:
        """Every PromQL template of the metric, by field name."""
        found = {"query": self.query, "samples": self.samples}
        if self.ratio is not None:
            found |= {"ratio.events": self.ratio.events, "ratio.trials": self.ratio.trials,
                      "ratio.reference": self.ratio.reference}
        return {k: v for k, v in found.items() if v is not None}


class ErrorRatioSLI(PolicyModel):
    """The SLI as bad events over all events (the Sloth model), summed per symbol by the rule renderer."""

    error_query: Annotated[str, Field(min_length=1)]
    """PromQL template of the rate of bad events (`{{ selector }}`, `{{ window }}`)."""
    total_query: Annotated[str, Field(min_length=1)]
    """PromQL template of the rate of all events."""


class SLO(PolicyModel):
    """One service-level objective."""

    name: Name
    """SLO name, used in rule and alert labels."""
    description: str = ""
    """What the SLO protects."""
    objective: Annotated[float, Field(gt=0.0, lt=1.0)]
    """Target ratio of good events over the SLO period (0.9995 = 99.95 %)."""
    period: Annotated[str, Field(pattern=DURATION_PATTERN)] = "30d"
    """Period the error budget is counted over."""
    sli: ErrorRatioSLI | None = None
    """Error-ratio SLI for burn-rate alerts and error budgets; omitted for analysis-only objectives."""
    analysis: AnalysisMetric | None = None
    """Measured by rollout analysis; omitted for objectives only alerted on."""
    runbook_url: Annotated[str, Field(pattern=r"^https?://")]
    """Linked from every alert of the SLO."""
    severity: Literal["page", "ticket"] = "page"
    """Severity of the fast-burn alerts (slow burns are always tickets)."""

    @model_validator(mode="after")
    def _measured_somehow(self) -> Self:
        if self.sli is None and self.analysis is None:
            raise ValueError("an SLO needs an sli (for alerts), an analysis metric, or both")
        return self


class SLOPolicySpec(PolicyModel):
    """The SLOs a symbol is held to."""

    slos: Annotated[list[SLO], Field(min_length=1)]
    """The objectives."""

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [slo.name for slo in self.slos]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate SLO names: {', '.join(duplicates)}")
        return self


# --- Analysis -------------------------------------------------------------------------------------------


class SelfHealingAction(enum.StrEnum):
    RESTART = "restart"
    NONE = "none"


class BackgroundAnalysis(PolicyModel):
    """Analysis of the stable revision while nothing is rolling out."""

    interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    """Seconds between two background measurements."""
    breach_limit: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive failed measurements that count as a breach."""
    recent_change_seconds: Annotated[int, Field(ge=0)] = 3600
    """A breach this soon after a promotion rolls back to the previous stable revision."""
    self_healing: SelfHealingAction = SelfHealingAction.RESTART
    """What a breach with no recent change leads to."""
    max_self_healing: Annotated[int, Field(ge=0, le=100)] = 2
    """Self-healing actions per cooldown window; beyond it the symbol is marked Degraded, not looped."""
    cooldown_seconds: Annotated[int, Field(ge=0)] = 600
    """Window for `maxSelfHealing`, and the least time between two actions."""
    warmup_seconds: Annotated[int, Field(ge=0, le=3600)] = 20
    """Not measured for this long after the stable revision's pods (re)start — a promotion, a rollback or a
    self-healing restart: a restart the operator caused is not evidence against the revision."""


class AnalysisPolicySpec(PolicyModel):
    """How a revision is judged (the Argo Rollouts vocabulary)."""

    interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 1
    """Seconds between two measurements: often, so that a failure is seen as soon as its interval is wholly past
    the threshold (each measurement's window grows with the run: it is judged on all the run has seen)."""
    count: Annotated[int, Field(ge=1, le=1000)] = 10
    """Judged measurements per metric for a Successful run (with the interval: how long a revision must look
    good before it is promoted)."""
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 2
    """Wait after the revision is rolled out before the first measurement (scrapes need to arrive)."""
    failure_limit: Annotated[int, Field(ge=0, le=100)] = 1
    """Failed measurements of one metric tolerated; one more fails the run."""
    inconclusive_limit: Annotated[int, Field(ge=0, le=100)] = 20
    """Inconclusive measurements of one required metric tolerated; one more ends the run Inconclusive. Room
    for the windows to fill: the first measurements of a new revision often have too few samples."""
    consecutive_error_limit: Annotated[int, Field(ge=0, le=100)] = 4
    """Consecutive query errors (Prometheus unreachable) tolerated; one more ends the run Inconclusive."""
    confidence: Annotated[float, Field(ge=0.5, lt=1.0)] = 0.9
    """Level of the two-sided interval ratio metrics are judged with: at 0.9 each verdict (Failed or
    Successful) is one-sided at 95 %."""
    measurements_kept: Annotated[int, Field(ge=1, le=100)] = 20
    """Measurements kept in status."""
    background: BackgroundAnalysis = BackgroundAnalysis()
    """Analysis of the stable revision."""


# --- Tuning ---------------------------------------------------------------------------------------------


class Direction(enum.StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class TuningObjective(PolicyModel):
    """The value the tuner improves, measured during each proposal's analysis."""

    query: Annotated[str, Field(min_length=1)]
    """PromQL template (`{{ selector }}`, `{{ window }}`)."""
    window: Annotated[str, Field(pattern=DURATION_PATTERN)] = "30s"
    """Range the query looks back over."""
    direction: Direction
    """Whether larger or smaller is better."""
    min_improvement: Annotated[float, Field(ge=0.0)] = 0.0
    """A proposal is kept only if it beats the baseline by more than this."""


class TunableParameter(PolicyModel):
    """One runtime parameter the tuner may move, by its camelCase path in the runtime config."""

    path: Annotated[str, Field(pattern=r"^[a-zA-Z]+(\.[a-zA-Z]+)+$")]
    """E.g. `strategy.entryScore` or `parameters.batchSize`."""
    min: float
    """Lower bound (inclusive)."""
    max: float
    """Upper bound (inclusive)."""
    step: Annotated[float, Field(gt=0.0)]
    """First step size."""
    min_step: Annotated[float, Field(gt=0.0)]
    """The search on this parameter ends when the step is halved below this."""
    integer: bool = False
    """Round proposals to integers."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.min_step > self.step:
            raise ValueError(f"minStep ({self.min_step}) exceeds step ({self.step})")
        return self


class TuningPolicySpec(PolicyModel):
    """What the auto-tuner may change, towards what, and how often."""

    enabled: bool = True
    """Off: no proposals (the policy still validates)."""
    objective: TuningObjective
    """What improves."""
    parameters: Annotated[list[TunableParameter], Field(min_length=1)]
    """Searched one at a time, in order (coordinate search with step halving)."""
    cooldown_seconds: Annotated[int, Field(ge=0)] = 300
    """Least time between two proposals."""
    max_changes_per_hour: Annotated[int, Field(ge=1, le=60)] = 4
    """Change budget: proposals started in any hour."""
    settle_seconds: Annotated[int, Field(ge=0)] = 10
    """Time the stable revision runs before its baseline objective is measured."""


# --- Risk and admission ---------------------------------------------------------------------------------


class RegimeRetraining(PolicyModel):
    """Retraining a symbol's registered model (`spec.model`) when its runtime detects a market regime change
    (`spec.config.ml.regimeDetection`): the operator creates a Job that runs the training pipeline
    (`python -m modelops train`), which tracks the run in MLflow and registers the new version as the model's
    `challenger` (`opsctl model promote` makes it the champion). At most one Job per symbol per cooldown."""

    enabled: bool = False
    """Request retraining on a regime change (off: the change is still a condition and an Event)."""
    cooldown_seconds: Annotated[int, Field(ge=60)] = 86400
    """Least time between two retraining Jobs of one symbol; a change within it is announced, not retrained on."""
    image: str = "ghcr.io/tradeops/tradeops-modelops:0.1.0"
    """Image of the Job: this package with the `ml` extra (deploy/docker/modelops.Dockerfile; CD pushes it as
    `tradeops-modelops:<commit>`)."""
    arguments: list[str] = ["--synthetic-days", "8"]
    """The training data and settings passed to `python -m modelops train` after the symbol, market and model
    (e.g. `["--file", "/data/spy.parquet"]` on a mounted recording)."""
    deadline_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    """The Job's activeDeadlineSeconds: a training that runs longer is stopped (and counted failed)."""


class RiskPolicySpec(PolicyModel):
    """Firm-wide risk limits a TradingSymbol's own limits must stay within."""

    max_capital: Annotated[float, Field(gt=0.0)] = 10_000_000.0
    """Largest capital one symbol may be given."""
    max_drawdown: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15
    """Largest maxDrawdown a symbol may set."""
    max_correlated_exposure: Annotated[float, Field(gt=0.0)] = 2_000_000.0
    """Largest correlatedExposureCap a symbol may set."""
    max_target_volatility: Annotated[float, Field(gt=0.0, le=2.0)] = 0.25
    """Largest targetVolatility a symbol may set."""
    min_entry_score: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    """Lowest entryScoreMin a symbol may give the online threshold adaptation (spec.config.ml)."""
    regime_retraining: RegimeRetraining = RegimeRetraining()
    """What a detected regime change may request: retraining the symbol's model, bounded by a cooldown."""


class AdmissionPolicySpec(PolicyModel):
    """Rules a TradingSymbol manifest must pass before it is applied (CI and opsctl policy check)."""

    allowed_registries: Annotated[list[str], Field(min_length=1)]
    """Image prefixes allowed (e.g. `ghcr.io/tradeops/`)."""
    require_digest: bool = False
    """Images must be pinned by digest."""
    allowed_markets: list[str] = ["equity-options", "index-options", "futures-options"]
    """Markets that may be traded."""
    max_replicas: Annotated[int, Field(ge=0, le=5)] = 3
    """Most pods per symbol."""
    forbid_fault_injection: bool = True
    """Fault injection must be off in manifests kept in git."""
    required_labels: list[str] = []
    """Labels every TradingSymbol must carry (e.g. `team`)."""


# --- Recovery -------------------------------------------------------------------------------------------


class Objective(PolicyModel):
    """What a drill must achieve: recovered within `rtoSeconds`, losing at most `rpoSeconds` of data."""

    rto_seconds: Annotated[float, Field(gt=0)]
    """Recovery time objective."""
    rpo_seconds: Annotated[float, Field(ge=0)]
    """Recovery point objective."""


class Retention(PolicyModel):
    """Which backups to keep in S3: the newest `keepLast` of each kind, and every one younger than
    `keepDays`. WAL older than the oldest kept base backup goes with it."""

    keep_last: Annotated[int, Field(ge=1)] = 7
    """Newest backups of each kind kept."""
    keep_days: Annotated[float, Field(ge=0)] = 14
    """Backups younger than this are kept."""


class RecordRetention(PolicyModel):
    """How long trading records (the audit log, which holds every order, fill and change) are kept: FINRA
    4511 asks six years, SEC 17a-4 the first two in an easily accessible place. Enforced by the monthly
    archive in the backups bucket: each month's records are written once under S3 Object Lock (compliance
    mode) until `keepYears` after the month, and move to archive storage after `accessibleYears`."""

    keep_years: Annotated[int, Field(ge=1, le=100)] = 6
    """Years every record is kept, unchangeable (Object Lock's retain-until date)."""
    accessible_years: Annotated[int, Field(ge=0, le=100)] = 2
    """Years records stay in standard (immediately readable) storage before moving to archive storage."""

    @model_validator(mode="after")
    def _accessible_within_kept(self) -> Self:
        if self.accessible_years > self.keep_years:
            raise ValueError(f"accessibleYears ({self.accessible_years}) exceeds keepYears ({self.keep_years})")
        return self


class RecoveryPolicy(PolicyModel):
    """RTO/RPO objectives per drill, the retention of backups and of trading records."""

    objectives: dict[str, Objective] = {}
    """Drill name → its objective."""
    retention: Retention = Retention()
    """Backup retention."""
    records: RecordRetention = RecordRetention()
    """Retention of trading records (the audit log's monthly archive)."""

    def objective(self, drill: str) -> Objective | None:
        return self.objectives.get(drill)


# --- Cost -----------------------------------------------------------------------------------------------


class PriceSheet(PolicyModel):
    """Prices of one provider and region (on-demand list prices), or of an on-premises site."""

    provider: Annotated[str, Field(min_length=1)]
    """`aws`, `gcp`, `azure`, `on-prem`, …"""
    region: Annotated[str, Field(min_length=1)]
    """Region (or site) the prices hold in."""
    cpu_core_hour: Annotated[float, Field(ge=0.0)]
    """Price of one CPU core for an hour."""
    memory_gib_hour: Annotated[float, Field(ge=0.0)]
    """Price of one GiB of memory for an hour."""
    storage_gib_month: Annotated[float, Field(ge=0.0)]
    """Price of one GiB of persistent volume for a month."""
    s3_storage_gib_month: Annotated[float, Field(ge=0.0)]
    """Price of one GiB of object storage for a month."""
    s3_put_per_1000: Annotated[float, Field(ge=0.0)]
    """Price of a thousand write requests (PUT, COPY, POST, LIST)."""


class SplitBy(enum.StrEnum):
    """How a shared service's cost is split across symbols: by what each symbol makes it do."""

    ROWS_WRITTEN = "rowsWritten"
    SAMPLES_SCRAPED = "samplesScraped"
    OPERATOR_EVENTS = "operatorEvents"
    CPU = "cpu"
    EQUAL = "equal"


class SharedService(PolicyModel):
    """A service every symbol uses (the operator, Prometheus, PostgreSQL, Redis, MLflow): its pods and
    volumes, and how its cost is split."""

    name: Name
    """Name of the cost line."""
    namespace: Annotated[str, Field(min_length=1)]
    """Namespace its pods and volume claims live in."""
    pod_pattern: Annotated[str, Field(min_length=1)]
    """Regular expression (PromQL, anchored) of its pod names."""
    pvc_pattern: str = ""
    """Regular expression of its PersistentVolumeClaims (empty: none)."""
    split_by: SplitBy = SplitBy.CPU
    """What the split follows; symbols with no usage get none of it, no usage at all splits equally."""


class CostPolicySpec(PolicyModel):
    """Prices, budgets and the shared services of the cost report and the cost alert (the OpenCost
    method: max(requested, used) × price per container, volumes, object storage, shared services split by
    usage, idle capacity as its own line)."""

    provider: Annotated[str, Field(min_length=1)]
    """The price sheet in use: its provider…"""
    region: Annotated[str, Field(min_length=1)]
    """…and region."""
    price_sheets: Annotated[list[PriceSheet], Field(min_length=1)]
    """Known prices; the one of `provider` and `region` applies."""
    currency: str = "USD"
    """Currency of prices and budgets."""
    budget_per_symbol: Annotated[float, Field(gt=0.0)] = 100.0
    """Monthly budget of a symbol (the seed's target: < $100/month per symbol)."""
    symbol_budgets: dict[str, Annotated[float, Field(gt=0.0)]] = {}
    """Budgets of particular symbols (ticker → monthly budget)."""
    hours_per_month: Annotated[float, Field(gt=0.0)] = 730.0
    """Hours of a billing month (365 × 24 / 12) for monthly figures."""
    projection_window: Annotated[str, Field(pattern=DURATION_PATTERN)] = "1d"
    """The month's projection runs at the average hourly cost of this recent window."""
    symbol_label: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")] = "label_trading_tradeops_io_symbol"
    """kube-state-metrics' label of `kube_pod_labels` holding the pod's symbol (the operator's
    `trading.tradeops.io/symbol` pod label, allow-listed with `--metric-labels-allowlist`)."""
    shared_services: list[SharedService] = []
    """Services every symbol uses."""
    alert_for: Annotated[str, Field(pattern=DURATION_PATTERN)] = "1h"
    """How long a projection must stay above budget before the alert fires."""

    @model_validator(mode="after")
    def _sheet_exists(self) -> Self:
        if not any(s.provider == self.provider and s.region == self.region for s in self.price_sheets):
            raise ValueError(f"no price sheet for provider {self.provider!r} in region {self.region!r}")
        names = [s.name for s in self.shared_services]
        if len(set(names)) != len(names):
            raise ValueError("shared service names must be unique")
        return self

    @property
    def prices(self) -> PriceSheet:
        return next(s for s in self.price_sheets if s.provider == self.provider and s.region == self.region)

    def budget(self, symbol: str) -> float:
        return self.symbol_budgets.get(symbol, self.budget_per_symbol)


KINDS: dict[str, type[PolicyModel]] = {
    "SLOPolicy": SLOPolicySpec,
    "AnalysisPolicy": AnalysisPolicySpec,
    "TuningPolicy": TuningPolicySpec,
    "RiskPolicy": RiskPolicySpec,
    "AdmissionPolicy": AdmissionPolicySpec,
    "RecoveryPolicy": RecoveryPolicy,
    "CostPolicy": CostPolicySpec,
}
