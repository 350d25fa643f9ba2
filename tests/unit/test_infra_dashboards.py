"""The Grafana dashboards generated from code: well-formed, laid out, every panel's PromQL parsed by promtool
and naming only metrics the runtime or the operator exports or the generated rules record."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry

from infra import dashboards
from tests.unit.infra_harness import ROOT
from trading_operator import metrics as operator_metrics
from trading_operator import symbol_gauges  # noqa: F401  (its gauges are in the operator's registry)
from trading_runtime.gateway.metrics import PoolMetrics
from trading_runtime.metrics import CounterSource, RuntimeMetrics

BOARDS = dashboards.all_dashboards()
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "info": ("_info",),
            "gauge": ("",), "summary": ("_count", "_sum", "")}
GRAFANA_VARIABLES = {"$symbol": ".*", "$__range": "1h", "$__rate_interval": "1m", "$__interval": "1m"}


def exported(registry: CollectorRegistry) -> set[str]:
    """Every sample name a registry exports, its labelled metrics included before they have a child."""
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


def runtime_metric_names() -> set[str]:
    metrics = RuntimeMetrics("SPY")
    metrics.export([CounterSource("feed_messages", "m", lambda: 0.0)])
    PoolMetrics(metrics.registry)  # the client pool's, in the runtime's registry when it has a broker API
    return exported(metrics.registry)


def recorded_names() -> set[str]:
    """What the generated rules record (`make rules`)."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


KNOWN = runtime_metric_names() | exported(operator_metrics.REGISTRY) | recorded_names() | {"up"}


def metric_names(expr: str) -> list[str]:
    """The metrics a panel names: every selector of a panel has label matchers (the symbol variable at
    least), so a metric is an identifier right before `{`."""
    return re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr)


def as_prometheus_reads(expr: str) -> str:
    """Grafana's variables replaced by values, as Grafana does before sending the query."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def exprs(board):
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


@pytest.mark.parametrize("name", BOARDS)
def test_dashboard_is_json_with_unique_panel_ids_and_no_overlap(name):
    board = json.loads(json.dumps(BOARDS[name]))
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        new = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & new, p["title"]
        cells |= new


@pytest.mark.parametrize("name", BOARDS)
def test_every_query_uses_metrics_that_exist(name):
    for expr in exprs(BOARDS[name]):
        assert metric_names(expr), f"no metric selector with label matchers in {expr}"
        for metric in metric_names(expr):
            assert metric in KNOWN, f"{metric} in {expr}: neither exported nor recorded"
    (symbols,) = [v for v in BOARDS[name]["templating"]["list"] if v["name"] == "symbol"]
    source = re.fullmatch(r"label_values\((.+), symbol\)", symbols["definition"])
    assert source
    assert source.group(1) in KNOWN


def test_every_panel_query_parses(tmp_path):
    """promtool parses every query of every panel (as a recording rule), after Grafana's substitutions."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH: install Debian's `prometheus` package (scripts/install-system-deps.sh)"
    rules = [{"record": f"panel:query:{n}", "expr": as_prometheus_reads(expr)}
             for n, expr in enumerate(e for board in BOARDS.values() for e in exprs(board))]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_query_naming_a_missing_metric_or_not_parsing_is_caught(tmp_path):
    assert "tradeops_no_such_metric" not in KNOWN
    assert metric_names('rate(tradeops_no_such_metric{symbol=~"$symbol"}[5m])') == ["tradeops_no_such_metric"]
    path = tmp_path / "bad.yml"
    broken = {"record": "a:b", "expr": "sum(rate(x[5m])"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [broken]}]}))
    promtool = shutil.which("promtool")
    assert promtool
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode != 0


def test_the_symbol_dashboard_covers_latency_throughput_hit_rate_pnl_and_drawdown():
    joined = "\n".join(exprs(dashboards.symbols()))
    for metric in ("tradeops_tick_to_signal_seconds_bucket", "tradeops_ticks_total", "tradeops_signal_hit_rate",
                   "tradeops_pnl", "tradeops_drawdown_ratio"):
        assert metric in joined
    assert all('symbol=~"$symbol"' in e for e in exprs(dashboards.symbols()))


def test_rollouts_and_error_budgets_have_their_dashboards():
    assert "tradeops_operator_rollbacks_total" in "\n".join(exprs(dashboards.rollouts()))
    assert "slo:error_budget_remaining:ratio" in "\n".join(exprs(dashboards.error_budgets()))


def test_the_trading_kpis_are_on_a_dashboard():
    names = {name for expr in exprs(dashboards.trading_kpis()) for name in metric_names(expr)}
    assert names == {"tradeops:pnl:sum", "tradeops:signals_per_minute:rate5m", "tradeops:fill_ratio:rate1h",
                     "tradeops:fill_slippage_bps:avg1h", "tradeops:trading_halted_seconds:1d",
                     "tradeops:rollbacks:increase1d", "tradeops:runtime_restarts:1d",
                     "tradeops:self_healing_restarts:increase1d"}


def test_the_cli_writes_the_dashboards(tmp_path):
    assert dashboards.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BOARDS)
