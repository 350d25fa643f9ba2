"""The runtime's Prometheus metrics, in a registry of its own (one per process, or per test).

Counters kept elsewhere (the feed client's FeedStats, the config watcher's reload counts) are exported
by a collector that reads them at scrape time, so nothing is counted twice. Every series carries the
`symbol` label; `tradeops_runtime_info` carries the operator's revision, to tie metrics to a rollout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Sub-millisecond resolution at the low end, up to a second at the top (seconds).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

# Signed: a fill inside the spread can beat the mid.
SLIPPAGE_BUCKETS = (-50.0, -10.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0)

INFERENCE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.005)
"""Seconds: the meta-model's budget is 200 µs per decision."""

PREFIX = "tradeops"


@dataclass
class CounterSource:
    """A counter owned by another object, read at scrape time."""

    name: str
    documentation: str
    read: Callable[[], float]


class _SourcesCollector(Collector):
    def __init__(self, symbol: str, sources: list[CounterSource], gauges: list[CounterSource]) -> None:
        self.symbol, self.sources, self.gauges = symbol, sources, gauges

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            family = CounterMetricFamily(f"{PREFIX}_{source.name}", source.documentation, labels=["symbol"])
            family.add_metric([self.symbol], source.read())
            yield family
        for source in self.gauges:
            gauge = GaugeMetricFamily(f"{PREFIX}_{source.name}", source.documentation, labels=["symbol"])
            gauge.add_metric([self.symbol], source.read())
            yield gauge


@dataclass
class RuntimeMetrics:
    symbol: str
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r, labels = self.registry, ["symbol"]
        self.info = Info(f"{PREFIX}_runtime", "Build and revision of the running trading runtime",
                         ["symbol"], registry=r)
        self.config_info = Info(f"{PREFIX}_runtime_config", "Digest of the runtime config in effect (what a pod "
                                "runs, whatever its revision label says)", ["symbol"], registry=r)
        # The SLO: from the moment the feed was due to send the frame (its arrival when unstamped) to its decision,
        # so the network, every queue on the way and parsing are in it (the span of benchmarks/fleet_latency.py).
        self.tick_to_signal = Histogram(f"{PREFIX}_tick_to_signal_seconds",
                                        "Time from a tick's scheduled send by the feed to its signal decision",
                                        labels, buckets=(*LATENCY_BUCKETS, 2.5, 10.0), registry=r)
        # The runtime's share of it: from the frame's arrival at the feed client (before parsing).
        self.tick_processing = Histogram(f"{PREFIX}_tick_processing_seconds",
                                         "Time from a tick's arrival at the runtime (before parsing) to its signal "
                                         "decision", labels, buckets=LATENCY_BUCKETS, registry=r)
        self.ticks = Counter(f"{PREFIX}_ticks", "Market messages processed", ["symbol", "kind"], registry=r)
        self.signals = Counter(f"{PREFIX}_signals", "Signals emitted", ["symbol", "direction"], registry=r)
        self.errors = Counter(f"{PREFIX}_errors", "Errors while processing ticks", ["symbol", "stage"], registry=r)
        self.hit_rate = Gauge(f"{PREFIX}_signal_hit_rate", "Directional hit rate of scored signals", labels,
                              registry=r)
        self.baseline_hit_rate = Gauge(f"{PREFIX}_signal_baseline_hit_rate",
                                       "Hit rate of a baseline on the same signals", ["symbol", "baseline"],
                                       registry=r)
        self.coverage = Gauge(f"{PREFIX}_signal_coverage", "Share of scored horizons with a signal", labels,
                              registry=r)
        self.pnl = Gauge(f"{PREFIX}_pnl", "Profit and loss (currency units)", ["symbol", "kind"], registry=r)
        self.drawdown = Gauge(f"{PREFIX}_drawdown_ratio", "Drawdown from the equity peak", labels, registry=r)
        self.exposure = Gauge(f"{PREFIX}_exposure", "Exposure (notional)", ["symbol", "kind"], registry=r)
        self.trading_halted = Gauge(f"{PREFIX}_trading_halted", "1 when trading is halted, by reason",
                                    ["symbol", "reason"], registry=r)
        self.orders = Counter(f"{PREFIX}_orders", "Orders sent to the pre-trade controls", labels, registry=r)
        self.fills = Counter(f"{PREFIX}_fills", "Orders filled", labels, registry=r)
        self.fill_slippage = Histogram(f"{PREFIX}_fill_slippage_bps",
                                       "Fill price against the quote's mid, basis points (positive: paid over mid)",
                                       labels, buckets=SLIPPAGE_BUCKETS, registry=r)
        self.order_rejections = Counter(f"{PREFIX}_order_rejections", "Orders refused by the pre-trade controls",
                                        ["symbol", "reason"], registry=r)
        self.portfolio_cap = Gauge(f"{PREFIX}_runtime_position_cap",
                                   "Notional the portfolio service's correlation cap allows (NaN: no service)",
                                   labels, registry=r)
        self.leader = Gauge(f"{PREFIX}_leader", "1 in the replica that holds the symbol's Lease and trades, 0 in a "
                            "hot standby", labels, registry=r)
        self.rows_fenced = Counter(f"{PREFIX}_db_rows_fenced", "Rows of a deposed leader's flush refused by the "
                                   "book's epoch (storage/epochs.py) and dropped", ["symbol", "table"], registry=r)
        self.leader_transitions = Counter(f"{PREFIX}_leader_transitions", "Times this process became leader or "
                                          "standby", ["symbol", "to"], registry=r)
        self.book_reconciled = Counter(f"{PREFIX}_book_reconciled", "Instruments whose booked quantity was not the "
                                       "broker's when this process took the lead (the broker's was adopted)",
                                       ["symbol", "instrument"], registry=r)
        self.fills_replayed = Counter(f"{PREFIX}_fills_replayed", "Broker fills the book did not hold, booked when "
                                      "this process took the lead (order, fill and position rows)", ["symbol"],
                                      registry=r)

        self._ml_metrics(r)

    def _ml_metrics(self, r: CollectorRegistry) -> None:
        """Machine learning in the loop (trading_runtime/ml/): every adaptation and fallback is visible."""
        self.model_serving = Gauge(f"{PREFIX}_model_serving", "1 when the meta-model serves, 0 on the rule-based "
                                   "combiner", ["symbol"], registry=r)
        self.model_fallbacks = Counter(f"{PREFIX}_model_fallback", "Falls back from the meta-model to the "
                                       "rule-based combiner", ["symbol", "reason"], registry=r)
        self.model_inference = Histogram(f"{PREFIX}_model_inference_seconds", "Meta-model scoring time per "
                                         "decision", ["symbol"], buckets=INFERENCE_BUCKETS, registry=r)
        self.meta_decisions = Counter(f"{PREFIX}_meta_decisions", "Primary signals the meta-model accepted or "
                                      "rejected", ["symbol", "outcome"], registry=r)
        self.strategy_threshold = Gauge(f"{PREFIX}_strategy_threshold", "Threshold in force (adapted online "
                                        "when enabled)", ["symbol", "name"], registry=r)
        self.threshold_changes = Counter(f"{PREFIX}_threshold_changes", "Online threshold changes, by cause",
                                         ["symbol", "cause"], registry=r)
        self.regime_changes = Counter(f"{PREFIX}_regime_changes", "Market regime changes detected", ["symbol"],
                                      registry=r)
        # The operator reads these two (trading_operator/regime_watch.py): which pods watch, and the last change.
        self.regime_watching = Gauge(f"{PREFIX}_regime_watching", "1 when the regime detector watches, 0 while it "
                                     "learns the regime (warm-up, or relearning after a change)", ["symbol"],
                                     registry=r)
        self.regime_last_change = Gauge(f"{PREFIX}_regime_last_change_timestamp_seconds", "Time of the last regime "
                                        "change detected (absent before the first)", ["symbol"], registry=r)
        self.size_multiplier = Gauge(f"{PREFIX}_size_multiplier", "Multiplier (0..1) of the risk-capped size, "
                                     "by source", ["symbol", "source"], registry=r)

    def set_build(self, version: str, revision: int) -> None:
        self.info.labels(self.symbol).info({"version": version, "revision": str(revision)})

    def set_config(self, digest: str, revision: int) -> None:
        self.config_info.labels(self.symbol).info({"hash": digest, "revision": str(revision)})

    def export(self, counters: list[CounterSource], gauges: list[CounterSource] | None = None) -> None:
        """Expose counters kept by other objects."""
        self.registry.register(_SourcesCollector(self.symbol, counters, gauges or []))
