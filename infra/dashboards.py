"""Grafana dashboards as code: plain functions return the dashboard JSON (schema 39), provisioned as
ConfigMaps the Prometheus stack's Grafana sidecar picks up. `python -m infra.dashboards DIR` writes them
as files for review or a local Grafana."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

Dashboard = dict[str, Any]
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SYMBOL = 'symbol=~"$symbol"'


def _target(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}


def panel(title: str, exprs: list[tuple[str, str]], *, kind: str = "timeseries", unit: str = "short",
          width: int = 12, height: int = 8, thresholds: list[tuple[float, str]] | None = None,
          base: str = "green") -> dict[str, Any]:
    """A panel of PromQL expressions `(expr, legend)`; ids and positions are assigned by `dashboard()`.
    Thresholds are ascending `(value, colour)` steps above the `base` colour."""
    steps = [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in thresholds or []]
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"w": width, "h": height},
        "targets": [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(exprs)],
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {},
    }


def _variables(symbol_query: str) -> list[dict[str, Any]]:
    return [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "symbol", "type": "query", "label": "Symbol", "datasource": DATASOURCE,
         "query": {"query": f"label_values({symbol_query}, symbol)", "refId": "symbols"},
         "definition": f"label_values({symbol_query}, symbol)", "refresh": 2, "includeAll": True,
         "multi": True, "current": {"text": "All", "value": "$__all"}, "sort": 1},
    ]


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], symbol_query: str) -> Dashboard:
    """A dashboard: panels laid out left to right, top to bottom on the 24-column grid."""
    x = y = row_height = 0
    laid_out = []
    for number, item in enumerate(panels, start=1):
        w, h = item["gridPos"]["w"], item["gridPos"]["h"]
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append({**item, "id": number, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x, row_height = x + w, max(row_height, h)
    return {
        "uid": uid,
        "title": title,
        "tags": ["tradeops"],
        "timezone": "utc",
        "editable": False,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": _variables(symbol_query)},
        "annotations": {"list": []},
        "panels": laid_out,
    }


def symbols() -> Dashboard:
    """Per symbol: tick-to-signal latency, throughput, hit rate, PnL, drawdown, errors."""
    def quantile(q: str) -> str:
        return (f"histogram_quantile({q}, sum by (symbol, le) "
                f"(rate(tradeops_tick_to_signal_seconds_bucket{{{SYMBOL}}}[5m])))")
    return dashboard("tradeops-symbols", "tradeops / symbols", [
        panel("Tick-to-signal latency p50 / p99", [(quantile("0.5"), "{{symbol}} p50"),
                                                   (quantile("0.99"), "{{symbol}} p99")], unit="s"),
        panel("Throughput (ticks and signals per second)", [
            (f"sum by (symbol) (rate(tradeops_ticks_total{{{SYMBOL}}}[5m]))", "{{symbol}} ticks"),
            (f"sum by (symbol) (rate(tradeops_signals_total{{{SYMBOL}}}[5m]))", "{{symbol}} signals"),
        ], unit="ops"),
        panel("Signal hit rate vs baselines", [
            (f"tradeops_signal_hit_rate{{{SYMBOL}}}", "{{symbol}}"),
            (f"tradeops_signal_baseline_hit_rate{{{SYMBOL}}}", "{{symbol}} {{baseline}}"),
        ], unit="percentunit"),
        panel("PnL", [(f"sum by (symbol, kind) (tradeops_pnl{{{SYMBOL}}})", "{{symbol}} {{kind}}")],
              unit="currencyUSD"),
        panel("Drawdown", [(f"max by (symbol) (tradeops_drawdown_ratio{{{SYMBOL}}})", "{{symbol}}")],
              unit="percentunit", thresholds=[(0.05, "orange"), (0.1, "red")]),
        panel("Errors per second by stage", [
            (f"sum by (symbol, stage) (rate(tradeops_errors_total{{{SYMBOL}}}[5m]))", "{{symbol}} {{stage}}"),
        ], unit="ops"),
        panel("Broker API calls per second by endpoint and outcome (config.broker)", [
            (f"sum by (symbol, endpoint, outcome) (rate(tradeops_api_requests_total{{{SYMBOL}}}[5m]))",
             "{{symbol}} {{endpoint}} {{outcome}}"),
        ], unit="ops"),
        panel("Broker API circuit breakers (0 closed, 1 half-open, 2 open)", [
            (f"max by (symbol, endpoint) (tradeops_api_breaker_state{{{SYMBOL}}})", "{{symbol}} {{endpoint}}"),
        ], thresholds=[(1, "orange"), (2, "red")]),
        panel("Trading halted", [(f"max by (symbol, reason) (tradeops_trading_halted{{{SYMBOL}}})",
                                  "{{symbol}} {{reason}}")], kind="stat", width=24, height=4,
              thresholds=[(1, "red")]),
    ], "tradeops_runtime_info")


def rollouts() -> Dashboard:
    """Revisions running per symbol, analysis verdicts, rollbacks."""
    return dashboard("tradeops-rollouts", "tradeops / rollouts and rollbacks", [
        panel("Running revision per pod", [
            (f"count by (symbol, revision) (tradeops_runtime_info{{{SYMBOL}}})", "{{symbol}} rev {{revision}}"),
        ], width=24),
        panel("Analysis runs by verdict", [
            (f"sum by (symbol, verdict) (increase(tradeops_operator_analysis_runs_total{{{SYMBOL}}}[1h]))",
             "{{symbol}} {{verdict}}"),
        ], kind="barchart"),
        panel("Rollbacks", [
            (f"sum by (symbol) (increase(tradeops_operator_rollbacks_total{{{SYMBOL}}}[$__range]))", "{{symbol}}"),
        ], kind="stat", thresholds=[(1, "red")]),
    ], "tradeops_runtime_info")


def error_budgets() -> Dashboard:
    """SLO error budgets and burn rates (the recording rules generated from policies/)."""
    return dashboard("tradeops-error-budgets", "tradeops / error budgets", [
        panel("Error budget remaining", [
            (f"slo:error_budget_remaining:ratio{{{SYMBOL}}}", "{{symbol}} {{slo}}"),
        ], kind="bargauge", unit="percentunit", width=24, base="red",
              thresholds=[(0.0, "orange"), (0.25, "green")]),
        panel("SLI error ratio (5m)", [(f"slo:sli_error:ratio_rate5m{{{SYMBOL}}}", "{{symbol}} {{slo}}")],
              unit="percentunit"),
        panel("Errors per second", [
            (f"sum by (symbol) (rate(tradeops_errors_total{{{SYMBOL}}}[5m]))", "{{symbol}}"),
        ], unit="ops"),
    ], "slo:sli_error:ratio_rate5m")


def trading_kpis() -> Dashboard:
    """The trading KPIs per symbol, from the recording rules `make rules` generates (policies/kpi_rules.py)."""
    def kpi(record: str) -> str:
        return f"{record}{{{SYMBOL}}}"
    return dashboard("tradeops-trading-kpis", "tradeops / trading KPIs", [
        panel("PnL per symbol", [(kpi("tradeops:pnl:sum"), "{{symbol}}")], unit="currencyUSD"),
        panel("Signals per minute", [(kpi("tradeops:signals_per_minute:rate5m"), "{{symbol}}")], unit="short"),
        panel("Fill ratio (1h)", [(kpi("tradeops:fill_ratio:rate1h"), "{{symbol}}")], unit="percentunit",
              base="red", thresholds=[(0.9, "orange"), (0.98, "green")]),
        panel("Slippage against mid (1h average, bp)", [(kpi("tradeops:fill_slippage_bps:avg1h"), "{{symbol}}")],
              unit="short", thresholds=[(5, "orange"), (20, "red")]),
        panel("Time halted (last day)", [(kpi("tradeops:trading_halted_seconds:1d"), "{{symbol}}")], kind="stat",
              unit="s", width=8, thresholds=[(1, "orange"), (3600, "red")]),
        panel("Rollbacks per day", [(kpi("tradeops:rollbacks:increase1d"), "{{symbol}}")], kind="stat", width=8,
              thresholds=[(1, "orange"), (3, "red")]),
        panel("Restarts per day", [(kpi("tradeops:runtime_restarts:1d"), "{{symbol}} crashes"),
                                   (kpi("tradeops:self_healing_restarts:increase1d"), "{{symbol}} self-healing")],
              kind="stat", width=8, thresholds=[(1, "orange"), (5, "red")]),
    ], "tradeops:pnl:sum")


def all_dashboards() -> dict[str, Dashboard]:
    """Every dashboard by file name."""
    return {f"{d['uid']}.json": d for d in (symbols(), rollouts(), error_budgets(), trading_kpis())}


def main(argv: list[str]) -> int:
    target = pathlib.Path(argv[0] if argv else "dashboards")
    target.mkdir(parents=True, exist_ok=True)
    for name, board in all_dashboards().items():
        (target / name).write_text(json.dumps(board, indent=2, sort_keys=True) + "\n")
        print(target / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
