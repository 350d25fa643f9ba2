"""The Grafana dashboards generated from code: well-formed, laid out, and querying metrics that exist."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from infra import dashboards
from tests.unit.infra_harness import ROOT
from trading_runtime.metrics import CounterSource, RuntimeMetrics

BOARDS = dashboards.all_dashboards()
# Named by the operator issue (rollout metrics) and the SLO recording rules from policies/.
OPERATOR_METRICS = {"tradeops_operator_rollbacks_total", "tradeops_operator_analysis_runs_total"}
RECORDED = {"slo:sli_error:ratio_rate5m", "slo:error_budget_remaining:ratio"}


def runtime_metric_names() -> set[str]:
    """Every sample name the runtime exports (one of each kind of labelled series set once)."""
    from prometheus_client import generate_latest

    metrics = RuntimeMetrics("SPY")
    metrics.set_build("0.1.0", 1)
    metrics.tick_to_signal.labels("SPY").observe(0.001)
    for labelled, labels in ((metrics.ticks, ("SPY", "quote")), (metrics.signals, ("SPY", "up")),
                             (metrics.errors, ("SPY", "feed")), (metrics.pnl, ("SPY", "realized")),
                             (metrics.baseline_hit_rate, ("SPY", "persistence")),
                             (metrics.trading_halted, ("SPY", "storage"))):
        labelled.labels(*labels)
    for gauge in (metrics.hit_rate, metrics.drawdown, metrics.coverage):
        gauge.labels("SPY")
    metrics.export([CounterSource("feed_messages", "m", lambda: 0.0)])
    text = generate_latest(metrics.registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


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
    known = runtime_metric_names() | OPERATOR_METRICS | RECORDED
    for expr in exprs(BOARDS[name]):
        for metric in re.findall(r"\b(?:tradeops_[a-z_]+|slo:[a-z_:0-9]+)", expr):
            assert metric in known, f"{metric} in {expr}"


def test_the_symbol_dashboard_covers_latency_throughput_hit_rate_pnl_and_drawdown():
    joined = "\n".join(exprs(dashboards.symbols()))
    for metric in ("tradeops_tick_to_signal_seconds_bucket", "tradeops_ticks_total", "tradeops_signal_hit_rate",
                   "tradeops_pnl", "tradeops_drawdown_ratio"):
        assert metric in joined
    assert all('symbol=~"$symbol"' in e for e in exprs(dashboards.symbols()))


def test_rollouts_and_error_budgets_have_their_dashboards():
    assert "tradeops_operator_rollbacks_total" in "\n".join(exprs(dashboards.rollouts()))
    assert "slo:error_budget_remaining:ratio" in "\n".join(exprs(dashboards.error_budgets()))


def test_the_error_budget_recording_rule_name_matches_the_generated_rules():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "tradeops-rules.yaml").read_text())
    recorded = {r["record"] for g in rules["spec"]["groups"] for r in g["rules"] if "record" in r}
    assert recorded & RECORDED, "the dashboards read recording rules the generated file defines"


def test_the_cli_writes_the_dashboards(tmp_path):
    assert dashboards.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BOARDS)
