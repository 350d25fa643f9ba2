"""Drill metrics in the Prometheus text format: a textfile for node-exporter's collector and, when a URL
is given, a push to a Pushgateway."""

from __future__ import annotations

import pathlib

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from drills.report import DrillResult


def registry_for(result: DrillResult) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = ["drill", "kind"]
    values = [result.drill, result.kind]
    gauges = [
        ("tradeops_drill_success", "1 when the last drill passed every check and objective", 1.0 * result.success),
        ("tradeops_drill_duration_seconds", "Wall time of the last drill", result.duration_seconds),
        ("tradeops_drill_last_run_timestamp_seconds", "When the last drill finished",
         result.finished_at.timestamp()),
    ]
    if result.rto_seconds is not None:
        gauges.append(("tradeops_drill_rto_seconds", "Recovery time the last drill achieved", result.rto_seconds))
    if result.rpo_seconds is not None:
        gauges.append(("tradeops_drill_rpo_seconds", "Data loss window the last drill found", result.rpo_seconds))
    for name, doc, value in gauges:
        Gauge(name, doc, labels, registry=registry).labels(*values).set(value)
    return registry


def export(result: DrillResult, textfile: pathlib.Path | None, pushgateway: str | None) -> None:
    """Write the textfile (atomically, as prometheus_client does) and/or push; either may be absent."""
    registry = registry_for(result)
    if textfile is not None:
        textfile.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), registry)
    if pushgateway:
        push_to_gateway(pushgateway, job="tradeops-drill", registry=registry, grouping_key={"drill": result.drill})
