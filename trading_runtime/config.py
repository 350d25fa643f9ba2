"""The runtime configuration: one pydantic model, embedded in the TradingSymbol spec and validated by the
runtime when it loads the file the operator renders into a ConfigMap."""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Models whose fields are camelCase on the wire (Kubernetes style) and snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class StrategyThresholds(CamelModel):
    """Thresholds the signal combiner applies to turn indicators into trades."""

    entry_score: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6
    """Minimum absolute combined score (0..1) to open a position."""
    exit_score: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    """Absolute combined score (0..1) below which an open position is closed; must be below entryScore."""
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.55
    """Minimum confidence (0..1) of a signal before it is traded."""
    horizon_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    """Horizon over which a signal's direction is scored against the realised move."""

    @model_validator(mode="after")
    def _exit_below_entry(self) -> Self:
        if self.exit_score >= self.entry_score:
            raise ValueError(f"exitScore ({self.exit_score}) must be below entryScore ({self.entry_score})")
        return self


REMOVED_PARAMETERS = frozenset({"workers", "cacheTtlSeconds", "cache_ttl_seconds"})


class RuntimeParameters(CamelModel):
    """Performance parameters of the runtime process (the ones auto-tuning may move within policy)."""

    batch_size: Annotated[int, Field(ge=1, le=10000)] = 256
    """Rows per batched database write."""
    flush_interval_ms: Annotated[int, Field(ge=10, le=60000)] = 250
    """Longest time a row waits in the write-behind queue before it is flushed."""
    queue_capacity: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    """Bound of the write-behind queue (rows); at least batchSize, or the runtime refuses to start (exit 2)."""

    @model_validator(mode="before")
    @classmethod
    def _drop_removed(cls, data: Any) -> Any:
        """`workers` and `cacheTtlSeconds` were removed (nothing read them); revisions stored before that still
        carry them, and must stay readable for a rollback."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in REMOVED_PARAMETERS}
        return data


class FaultInjection(CamelModel):
    """Deliberate faults for testing analysis, rollback and drills: the failures users ship (slow, erroring
    or wrong signals; a crash loop, a pod that never becomes ready, an out-of-memory kill). All off by
    default; an admission policy keeps them out of the manifests kept in git."""

    extra_latency_ms: Annotated[float, Field(ge=0.0, le=10000.0)] = 0.0
    """Latency added to every tick-to-signal computation."""
    error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """Fraction of ticks whose processing fails with an error."""
    accuracy_degradation: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """Fraction of signals whose direction is flipped."""
    crash_after_seconds: Annotated[float, Field(ge=0.0, le=86400.0)] = 0.0
    """Exit with status 1 this many seconds after start (a crash loop at start); 0: off."""
    never_ready: bool = False
    """Readiness (/readyz) fails for ever: the pod runs but never becomes Ready."""
    memory_ballast_mb: Annotated[int, Field(ge=0, le=65536)] = 0
    """Megabytes allocated and touched at start (above the memory limit: the container is OOMKilled)."""


class RiskLimits(CamelModel):
    """Risk limits the runtime enforces (the risk policy in policies/ sets them per symbol)."""

    capital: Annotated[float, Field(gt=0.0)] = 5_000_000.0
    """Capital allocated to this symbol: the equity position sizing and drawdowns are measured against."""
    max_drawdown: Annotated[float, Field(gt=0.0, le=1.0)] = 0.10
    """Drawdown from the equity peak at which trading halts."""
    correlation_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7
    """|Correlation| of returns above which symbols share one exposure limit."""
    correlated_exposure_cap: Annotated[float, Field(gt=0.0)] = 1_000_000.0
    """Cap on the combined notional of a group of correlated symbols."""
    target_volatility: Annotated[float, Field(gt=0.0, le=2.0)] = 0.10
    """Annualised volatility that position sizing aims for."""


class PreTradeLimits(CamelModel):
    """Pre-trade controls every order passes before it reaches the broker (SEC 15c3-5, MiFID II RTS 6);
    an order that fails one is rejected and recorded with its reason."""

    price_collar: Annotated[float, Field(gt=0.0, le=1.0)] = 0.10
    """Largest distance of the execution price from the instrument's mid, as a fraction of the mid."""
    max_order_quantity: Annotated[float, Field(gt=0.0)] = 1_000.0
    """Largest quantity (contracts) of one order."""
    max_order_value: Annotated[float, Field(gt=0.0)] = 2_000_000.0
    """Largest value of one order: price × quantity × contract multiplier (currency units)."""
    max_orders_per_second: Annotated[int, Field(ge=1, le=10_000)] = 20
    """Orders accepted in any one second; more are throttled."""
    duplicate_window_seconds: Annotated[float, Field(ge=0.0, le=3600.0)] = 1.0
    """An order repeating the last one accepted for its instrument (same quantity) this recently is a
    duplicate; a re-entry after a closing order is not."""


class MachineLearning(CamelModel):
    """Machine learning in the loop (trading_runtime/ml/): all off by default; the rule-based combiner and
    the formula sizing run unchanged unless a part is switched on."""

    model_path: str | None = None
    """ONNX meta-model (modelops/) that accepts or rejects the combiner's signal: a file, or an http(s) URL
    (the operator sets it to the pinned registry version's artifact when the spec names a `model`). When it
    fails to load or to score, the runtime falls back to the rule-based combiner alone
    (tradeops_model_fallback_total)."""
    model_name: str | None = None
    """Registered model the operator resolved `spec.model` to (set by the operator, not by hand)."""
    model_version: Annotated[int, Field(ge=1)] | None = None
    """The registry version the revision pins (set by the operator with modelPath)."""
    accept_probability: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Probability of a correct call at or above which the meta-model accepts the primary signal."""
    adaptive_thresholds: bool = False
    """Adapt entryScore online from the labelled calls (ADWIN resets the adaptation on drift)."""
    entry_score_min: Annotated[float, Field(ge=0.0, le=1.0)] = 0.4
    """Lowest entryScore the online adaptation may reach."""
    entry_score_max: Annotated[float, Field(ge=0.0, le=1.0)] = 0.9
    """Highest entryScore the online adaptation may reach."""
    target_hit_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.55
    """Hit rate the adaptation steers the labelled calls towards (raises entryScore below it)."""
    regime_detection: bool = False
    """Detect regime changes on the volatility, spread and quoted size of each 10 s of underlying quotes (a
    CUSUM per feature); a change shrinks sizing and the operator may request retraining (the risk policy)."""
    regime_warmup_seconds: Annotated[float, Field(ge=60.0, le=86400.0)] = 1800.0
    """Quotes the regime detector learns the market from before it watches for a change."""
    regime_size_multiplier: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Multiplier of the risk-capped size for `regimeCooldownSeconds` after a regime change."""
    regime_cooldown_seconds: Annotated[float, Field(ge=0.0, le=86400.0)] = 1800.0
    """How long sizing stays tightened after a regime change."""
    bandit_sizing: bool = False
    """A contextual bandit learns a multiplier in [0, 1] of the risk-capped size (it can only shrink it)."""

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.entry_score_min > self.entry_score_max:
            raise ValueError(f"entryScoreMin ({self.entry_score_min}) must not exceed entryScoreMax "
                             f"({self.entry_score_max})")
        return self


API_KEY_ENV_PREFIX = "TRADEOPS_API_KEY_"
"""The runtime reads each API key's value from `TRADEOPS_API_KEY_<NAME>` (the operator fills it from the key's
Secret; the ConfigMap never holds a key)."""


def api_key_env(name: str) -> str:
    """The environment variable holding the value of the API key called `name`."""
    return API_KEY_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


class SecretKeyRef(CamelModel):
    """A key of a Secret in the symbol's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    """The Secret's name."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """The key in the Secret whose value is the API key."""


class BrokerApiKey(CamelModel):
    """One API key of the broker's HTTP API and the provider's rate limit for it."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
    """Shown in metrics and logs (the key's value never is)."""
    secret_key_ref: SecretKeyRef
    """Where the key's value is (a Secret: never the config)."""
    rate_per_second: Annotated[float, Field(gt=0.0, le=100_000.0)]
    """The provider's sustained rate for the key. With Redis (every pod the operator builds has it) the limit
    holds across every process that uses the key — all symbols, standbys and surge pods together; without
    Redis, for this process alone."""
    burst: Annotated[int, Field(ge=1, le=10_000)] = 1
    """Requests the provider lets through at once (its token bucket's size)."""


class BrokerApi(CamelModel):
    """A broker's HTTP API (orders and market-data snapshots) reached through the runtime's client pool
    (trading_runtime/gateway/): load-balanced across `endpoints` and `keys`, each key held under its rate limit,
    with a circuit breaker per endpoint and a retry budget. Absent: orders fill on paper, in the process."""

    endpoints: Annotated[list[Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]],
                         Field(min_length=1, max_length=16)]
    """Base URLs of the API's endpoints (`https://broker.example/`), all serving the same API."""
    keys: Annotated[list[BrokerApiKey], Field(min_length=1, max_length=16)]
    """API keys the pool spreads calls over."""
    orders: bool = True
    """Send orders to the API (client order id = the runtime's deterministic order id); false: paper fills."""
    snapshots: bool = True
    """Take market-data snapshots from the API: at start, and to resync after a feed sequence gap."""
    timeout_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 2.0
    """Longest wait for one attempt's answer, and for a snapshot (the feed waits on a resync's)."""
    deadline_seconds: Annotated[float, Field(gt=0.0, le=300.0)] = 10.0
    """Longest time one call may take over all its attempts."""
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Attempts per call (different endpoints or keys)."""
    failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 5
    """Consecutive failures of an endpoint that open its circuit breaker."""
    open_seconds: Annotated[float, Field(gt=0.0, le=600.0)] = 1.0
    """How long an opened breaker sends nothing before one probe (doubling while probes fail)."""
    retry_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    """Retries may add at most this share of the first attempts' traffic (the retry budget)..."""
    retry_min_per_second: Annotated[float, Field(ge=0.0, le=1000.0)] = 5.0
    """...plus this many per second."""
    order_timeout_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 30.0
    """How long an order whose answer was lost is sent again (same client order id) before the runtime halts
    trading: its outcome is then unknown."""
    order_expiry: bool = True
    """Orders carry an expiry (`expireAt`, good-till-time: IBKR's GTD, FIX `ExpireTime`) no later than the
    sender's Lease renew deadline, and the broker refuses one received after it: an order still on the wire
    when leadership moves cannot fill. False, for a broker without expiry: orders carry none, and one that
    reaches the broker after the next leader read its fills stays unbooked until a later takeover or start
    replays it (docs/scaling.md, "What can still be lost")."""
    max_clock_skew_seconds: Annotated[float, Field(ge=0.0, le=60.0)] = 0.5
    """The most any runtime's wall clock may differ from the broker's (plus the broker's lag in listing a
    fill): a new leader waits this much longer before it reads the broker's fills at takeover."""
    fill_lookback_seconds: Annotated[float, Field(gt=0.0, le=30 * 86400.0)] = 86400.0
    """How far back a leader lists the broker's fills at takeover and at start, to book those it does not
    hold; an older one missing from the book is caught by the positions check (a `book-reconciled` event)."""

    @model_validator(mode="after")
    def _distinct_keys(self) -> Self:
        names = [k.name for k in self.keys]
        envs = {api_key_env(n) for n in names}
        if len(envs) != len(names):
            raise ValueError(f"API key names must be distinct (also with - read as _): {names}")
        return self


class Warmup(CamelModel):
    """Warm-up from recent market-data history before going live (trading_runtime/warmup.py): the history is
    run through the engine (indicators and scored calls, never orders), then the live feed takes over."""

    history_seconds: Annotated[float, Field(ge=0.0, le=3600.0)] = 0.0
    """Market seconds of history to replay at start; 0 (the default): none, the runtime starts cold. At most an
    hour: the stable revision keeps its scored calls that far back at any horizon of 1 s or more."""
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None
    """Base URL of the history API (`{url}/v1/history/{symbol}?seconds=S`); absent: the feed's own host and
    port over HTTP (ws:// → http://, wss:// → https://)."""
    timeout_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 5.0
    """Time for one history request."""
    attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Requests tried (with backoff) before the runtime gives up on history and starts cold."""
    max_replay_seconds: Annotated[float, Field(gt=0.0, le=300.0)] = 20.0
    """Wall seconds the replay may take; past it the rest of the history is skipped (said in the log and the
    metrics) and the runtime goes live: readiness is never held longer by a warm-up."""


class RuntimeConfig(CamelModel):
    """Configuration of one trading runtime process."""

    strategy: StrategyThresholds = StrategyThresholds()
    """Signal thresholds."""
    parameters: RuntimeParameters = RuntimeParameters()
    """Runtime performance parameters."""
    risk: RiskLimits = RiskLimits()
    """Risk limits."""
    fault_injection: FaultInjection = FaultInjection()
    """Fault injection for tests and drills (off by default)."""
    pre_trade: PreTradeLimits = PreTradeLimits()
    """Pre-trade controls on every order."""
    ml: MachineLearning = MachineLearning()
    """Machine learning in the loop (off by default)."""
    broker: BrokerApi | None = None
    """A broker's HTTP API for orders and market-data snapshots; absent (the default): paper fills in the
    process."""
    warmup: Warmup = Warmup()
    """Warm-up from recent market-data history at start (off by default)."""


class RenderedConfig(CamelModel):
    """The runtime.yaml the operator writes into the ConfigMap: the config of the running revision and
    the identity of the symbol. A change of it rolls the pods."""

    symbol: str
    """The traded underlying symbol."""
    market: str
    """The market of the symbol's options."""
    revision: int
    """The operator's revision number this config belongs to."""
    runtime: RuntimeConfig
    """The runtime configuration of the revision."""


class Switches(CamelModel):
    """The switches.yaml the runtime hot-reloads without a restart."""

    trading_enabled: bool = True
    """Kill switch: when false, no new positions are opened and open ones are flattened by policy."""
