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
        # From the frame's arrival at the feed client (before parsing) to its decision: the runtime's own SLO.
        self.tick_to_signal = Histogram(f"{PREFIX}_tick_to_signal_seconds",
                                        "Time from a tick's arrival (before parsing) to its signal decision", labels,
                                        buckets=LATENCY_BUCKETS, registry=r)
        # From the moment the feed was due to send it: the network and every queue on the way too.
        self.feed_to_signal = Histogram(f"{PREFIX}_feed_to_signal_seconds",
                                        "Time from a tick's scheduled send by the feed to its signal decision",
                                        labels, buckets=(*LATENCY_BUCKETS, 2.5, 10.0), registry=r)
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
        self.order_rejections = Counter(f"{PREFIX}_order_rejections", "Orders refused by the pre-trade controls",
                                        ["symbol", "reason"], registry=r)
        self.portfolio_cap = Gauge(f"{PREFIX}_runtime_position_cap",
                                   "Notional the portfolio service's correlation cap allows (NaN: no service)",
                                   labels, registry=r)

    def set_build(self, version: str, revision: int) -> None:
        self.info.labels(self.symbol).info({"version": version, "revision": str(revision)})

    def set_config(self, digest: str, revision: int) -> None:
        self.config_info.labels(self.symbol).info({"hash": digest, "revision": str(revision)})

    def export(self, counters: list[CounterSource], gauges: list[CounterSource] | None = None) -> None:
        """Expose counters kept by other objects."""
        self.registry.register(_SourcesCollector(self.symbol, counters, gauges or []))
