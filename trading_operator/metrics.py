"""The operator's own Prometheus metrics: rollouts, rollbacks, analysis verdicts and self-healing.

Rollbacks, promotions and restarts are counted where their Event is recorded (the executor), so a
metric and the Event that explains it never disagree; verdicts where the status that ends a run is
committed (the executor).
Served on `--metrics-port` (the manifest's 9103) for the PodMonitor."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from trading_operator.conditions import Reason

REGISTRY = CollectorRegistry(auto_describe=True)
EVENTS = Counter("tradeops_operator_events", "Events the operator recorded, by reason and type",
                 ["namespace", "symbol", "reason", "type"], registry=REGISTRY)
ROLLBACKS = Counter("tradeops_operator_rollbacks", "Rollbacks to the stable revision (analysis, background, manual)",
                    ["namespace", "symbol"], registry=REGISTRY)
PROMOTIONS = Counter("tradeops_operator_promotions", "Revisions promoted to stable", ["namespace", "symbol"],
                     registry=REGISTRY)
ANALYSIS_RUNS = Counter("tradeops_operator_analysis_runs", "Analysis runs that reached a verdict",
                        ["namespace", "symbol", "verdict"], registry=REGISTRY)
SELF_HEALING = Counter("tradeops_operator_self_healing", "Self-healing restarts of a stable revision",
                       ["namespace", "symbol"], registry=REGISTRY)
RECONCILES = Counter("tradeops_operator_reconciles", "Reconciles of a TradingSymbol (read, plan, act)",
                     registry=REGISTRY)
ANALYSIS_LOOKS = Counter("tradeops_operator_analysis_looks",
                         "Looks of the analysis loop at a TradingSymbol (most measure nothing)", registry=REGISTRY)
RESYNCS = Counter("tradeops_operator_resyncs", "Reconciles started by the resync safety net", registry=REGISTRY)
BACKGROUND_MEASUREMENTS = Counter("tradeops_operator_background_measurements",
                                  "Background measurements of stable revisions (a healthy one writes no status)",
                                  registry=REGISTRY)
BACKGROUND_MEASURED = Gauge("tradeops_operator_background_measured_timestamp_seconds",
                            "When each TradingSymbol's stable revision was last measured in the background",
                            ["namespace", "name"], registry=REGISTRY)


def background_measured(namespace: str, name: str, timestamp: float) -> None:
    """Count a background measurement and show its time: the status records only what it changed."""
    BACKGROUND_MEASUREMENTS.inc()
    BACKGROUND_MEASURED.labels(namespace, name).set(timestamp)


def forget_symbol(namespace: str, name: str) -> None:
    """A deleted TradingSymbol's per-symbol gauges go with it."""
    with contextlib.suppress(KeyError):
        BACKGROUND_MEASURED.remove(namespace, name)


def record_event(namespace: str, symbol: str, type_: str, reason: str) -> None:
    """Count an Event and what it stands for."""
    EVENTS.labels(namespace, symbol, reason, type_).inc()
    if reason == Reason.ROLLED_BACK.value:
        ROLLBACKS.labels(namespace, symbol).inc()
    elif reason == Reason.PROMOTED.value:
        PROMOTIONS.labels(namespace, symbol).inc()
    elif reason == Reason.SELF_HEALING_RESTART.value:
        SELF_HEALING.labels(namespace, symbol).inc()


def record_verdict(namespace: str, symbol: str, verdict: str) -> None:
    """Count an analysis run's verdict (once per run: when the status that ends it is committed)."""
    ANALYSIS_RUNS.labels(namespace, symbol, verdict).inc()


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics on a thread of its own (a pod's metrics port: all interfaces)."""
    start_http_server(port, addr=host, registry=REGISTRY)
