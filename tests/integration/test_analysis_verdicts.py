"""Verdicts on real Prometheus data: the runtime's own metrics classes, exposed over HTTP and scraped every
second by a real Prometheus, judged through the operator's real client with the shipped SLO policy. A
handful of bad signals is Inconclusive; a sustained breach is Failed; a healthy revision is Successful."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client import start_http_server

from policies.loader import default_policies
from policies.models import AnalysisPolicySpec
from tests.prometheus_server import ThrowawayPrometheus
from tests.servers import free_port
from trading_operator.analysis import Scope, expressions, judge_all, queries_for, settings_for
from trading_operator.api import AnalysisPhase, Measurement, RolloutSettings
from trading_operator.prometheus import MetricsSource
from trading_runtime.metrics import CounterSource, RuntimeMetrics

NAMESPACE = "verdicts"
SETTINGS = settings_for(AnalysisPolicySpec(), RolloutSettings())


@dataclass
class Runtime:
    """One runtime's metrics, fed at a steady pace by `tick` (called ten times a second)."""

    revision: int
    tick: Callable[[RuntimeMetrics, dict[str, float]], None]
    metrics: RuntimeMetrics = field(default_factory=lambda: RuntimeMetrics("SPY"))
    accuracy: dict[str, float] = field(default_factory=lambda: {"calls": 0, "hits": 0, "persistence": 0,
                                                                 "majority": 0})

    def __post_init__(self) -> None:
        a = self.accuracy
        self.metrics.export([CounterSource("signal_calls", "calls", lambda: a["calls"]),
                             CounterSource("signal_hits", "hits", lambda: a["hits"]),
                             CounterSource("signal_persistence_hits", "p", lambda: a["persistence"]),
                             CounterSource("signal_majority_hits", "m", lambda: a["majority"])])


def healthy(m: RuntimeMetrics, accuracy: dict[str, float]) -> None:
    for _ in range(5):  # 50 ticks a second, all fast
        m.ticks.labels("SPY", "quote").inc()
        m.tick_to_signal.labels("SPY").observe(0.002)


def handful_of_bad_signals(m: RuntimeMetrics, accuracy: dict[str, float]) -> None:
    """A trickle: a tick every three seconds, every one slow and failing; a few wrong calls."""
    if time.monotonic() * 10 % 30 < 1:
        m.ticks.labels("SPY", "quote").inc()
        m.errors.labels("SPY", "process").inc()
        m.tick_to_signal.labels("SPY").observe(0.2)
        accuracy["calls"] += 1
        accuracy["persistence"] += 1


def sustained_breach(m: RuntimeMetrics, accuracy: dict[str, float]) -> None:
    for _ in range(5):  # 50 ticks a second, all slow, one in ten failing
        m.ticks.labels("SPY", "quote").inc()
        m.tick_to_signal.labels("SPY").observe(0.12)
    m.errors.labels("SPY", "process").inc(0.5)


@pytest.fixture(scope="module")
def measured() -> Iterator[Callable[[int], dict[str, Measurement]]]:
    runtimes = [Runtime(1, healthy), Runtime(2, handful_of_bad_signals), Runtime(3, sustained_breach)]
    prometheus = ThrowawayPrometheus()
    servers = []
    for runtime in runtimes:
        port = free_port()
        servers.append(start_http_server(port, addr="127.0.0.1", registry=runtime.metrics.registry)[0])
        prometheus.add_target(f"127.0.0.1:{port}", {"namespace": NAMESPACE, "symbol": "SPY",
                                                         "revision": str(runtime.revision)})
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(0.1):
            for runtime in runtimes:
                runtime.tick(runtime.metrics, runtime.accuracy)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    source = MetricsSource(None)
    try:
        prometheus.start()
        source = MetricsSource(prometheus.url)
        # Full 30 s windows: a few hundred ticks of the steady runtimes, enough scrapes to judge availability.
        prometheus.wait_for('sum(count_over_time(up{revision="1"}[30s])) >= 28', timeout=90)

        def measure(revision: int) -> dict[str, Measurement]:
            queries = queries_for(default_policies().slo["default"], Scope(NAMESPACE, "SPY", revision))
            samples = [source.query(e) for e in expressions(queries)]
            return {m.metric: m for m in judge_all(queries, samples, SETTINGS, "2026-12-06T00:00:00Z")}

        yield measure
    finally:
        stop.set()
        feeder.join(timeout=5)
        source.close()
        for server in servers:
            server.shutdown()
            server.server_close()
        prometheus.destroy()


def test_a_healthy_revision_is_successful_on_every_required_metric(measured):
    result = measured(1)
    for metric in ("tick-to-signal-latency", "error-ratio"):
        assert result[metric].phase is AnalysisPhase.SUCCESSFUL, result[metric].message
        assert result[metric].samples is not None
        assert result[metric].samples > 100
    assert result["availability"].phase is AnalysisPhase.SUCCESSFUL, result["availability"].message
    assert result["signal-hit-rate"].phase is AnalysisPhase.INCONCLUSIVE
    assert result["signal-hit-rate"].message.startswith("0 calls, fewer than the 30 needed")


def test_a_handful_of_bad_signals_is_inconclusive_never_failed(measured):
    result = measured(2)
    for metric, unit in (("tick-to-signal-latency", "ticks over 50 ms"), ("error-ratio", "messages"),
                         ("signal-hit-rate", "calls")):
        measurement = result[metric]
        assert measurement.phase is AnalysisPhase.INCONCLUSIVE, measurement.message
        assert f"{unit}, fewer than the" in measurement.message
        assert measurement.samples is not None
        assert 0 < measurement.samples < 20


def test_a_sustained_breach_is_failed_with_its_counts_and_interval(measured):
    result = measured(3)
    latency = result["tick-to-signal-latency"]
    assert latency.phase is AnalysisPhase.FAILED, latency.message
    assert latency.low is not None
    assert latency.low > 0.05
    assert "not below 0.05" in latency.message
    errors = result["error-ratio"]
    assert errors.phase is AnalysisPhase.FAILED, errors.message
    assert errors.value == pytest.approx(0.1, abs=0.03)
