"""The cost rules generated from the default CostPolicy pass `promtool check rules`, and promtool's unit tests
show them pricing pods by max(request, use), splitting the operator by its Events per symbol, projecting the
month, and alerting on the symbol whose projection passes its budget (and only on it).

Figures expected here are computed by hand from the series below and the default AWS prices:
SPY: 0.5 cores used (above its 0.25 request), 256 MiB requested (above 200 MiB used);
QQQ: 4 cores and 8 GiB requested, little used; the operator: 0.1 core and 128 MiB requested, with 3 Events
a minute for SPY and 1 for QQQ. January (promtool's clock starts at 1970-01-01) has 31 days."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from policies.cost_rules import ALERT_NAME, cost_groups
from policies.loader import load_dir
from policies.rules import render_rules
from tests.integration.test_rules_promtool import run_promtool

# The default policy, projecting from the last hour (the series start at 0: a day's average would include
# the first evaluations, before the counters have two samples to take a rate of).
POLICY = load_dir().cost["default"].model_copy(update={"projection_window": "1h"})
CPU, MEMORY = POLICY.prices.cpu_core_hour, POLICY.prices.memory_gib_hour
MIB = 2**20
OPERATOR_HOURLY = 0.1 * CPU + 0.125 * MEMORY
SPY_HOURLY = 0.5 * CPU + 0.25 * MEMORY + 0.75 * OPERATOR_HOURLY
QQQ_HOURLY = 4 * CPU + 8 * MEMORY + 0.25 * OPERATOR_HOURLY
HOURS_IN_JANUARY = 31 * 24


def pod(namespace: str, name: str, cpu_request: float, memory_request: float, cores_used: float,
        memory_used: float, symbol: str | None = None, minutes: int = 180) -> list[dict[str, str]]:
    where = f'namespace="{namespace}", pod="{name}", container="main"'
    series = [
        {"series": f'kube_pod_container_resource_requests{{{where}, resource="cpu", unit="core"}}',
         "values": f"{cpu_request}x{minutes}"},
        {"series": f'kube_pod_container_resource_requests{{{where}, resource="memory", unit="byte"}}',
         "values": f"{memory_request:.0f}x{minutes}"},
        {"series": f"container_cpu_usage_seconds_total{{{where}}}", "values": f"0+{cores_used * 60:g}x{minutes}"},
        {"series": f"container_memory_working_set_bytes{{{where}}}", "values": f"{memory_used:.0f}x{minutes}"},
    ]
    if symbol:
        series.append({"series": f'kube_pod_labels{{namespace="{namespace}", pod="{name}", '
                                 f'label_trading_tradeops_io_symbol="{symbol}"}}', "values": f"1x{minutes}"})
    return series


def events(symbol: str, per_minute: int, minutes: int = 180) -> dict[str, str]:
    return {"series": f'tradeops_operator_events_total{{namespace="trading", symbol="{symbol}", reason="x", '
                      f'type="Normal"}}', "values": f"0+{per_minute}x{minutes}"}


def about(record: str, value: float, symbol: str, eval_time: str = "150m") -> dict[str, Any]:
    """`record` of `symbol` is within 1e-9 of `value` (promtool compares exactly; float sums are not)."""
    return {"expr": f'abs({record}{{symbol="{symbol}"}} - {value!r}) < bool 1e-9', "eval_time": eval_time,
            "exp_samples": [{"labels": f'{{symbol="{symbol}"}}', "value": 1}]}


def test_cost_rules_pass_promtool_check(tmp_path: pathlib.Path):
    rules = tmp_path / "cost-rules.yml"
    rules.write_text(render_rules(cost_groups(POLICY)))
    result = run_promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {4 + 2 * len(POLICY.shared_services)} rules found" in result.stdout


def test_costs_are_priced_split_projected_and_alerted(tmp_path: pathlib.Path):
    (tmp_path / "cost-rules.yml").write_text(render_rules(cost_groups(POLICY)))
    qqq_projection = QQQ_HOURLY * HOURS_IN_JANUARY
    assert SPY_HOURLY * HOURS_IN_JANUARY < POLICY.budget_per_symbol < qqq_projection
    test = {
        "name": "SPY within budget, QQQ over it",
        "interval": "1m",
        "input_series": [
            *pod("trading", "spy-1", 0.25, 256 * MIB, 0.5, 200 * MIB, "SPY"),
            *pod("trading", "qqq-1", 4, 8192 * MIB, 0.2, 512 * MIB, "QQQ"),
            *pod("tradeops-system", "tradeops-operator-abc", 0.1, 128 * MIB, 0.01, 64 * MIB),
            events("SPY", 3), events("QQQ", 1),
        ],
        "promql_expr_test": [
            about("tradeops:cost_direct_hourly:usd", 0.5 * CPU + 0.25 * MEMORY, "SPY"),
            {"expr": 'tradeops:cost_shared_share:ratio{service="operator", symbol="SPY"}', "eval_time": "150m",
             "exp_samples": [{"labels": 'tradeops:cost_shared_share:ratio{service="operator", symbol="SPY"}',
                              "value": 0.75}]},
            about("tradeops:cost_hourly:usd", SPY_HOURLY, "SPY"),
            about("tradeops:cost_hourly:usd", QQQ_HOURLY, "QQQ"),
            about("tradeops:cost_monthly_projection:usd", qqq_projection, "QQQ"),
        ],
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": ALERT_NAME, "exp_alerts": []},  # pending: `for` is 1h
            {"eval_time": "150m", "alertname": ALERT_NAME, "exp_alerts": [{
                "exp_labels": {"severity": "ticket", "symbol": "QQQ"},
                "exp_annotations": {
                    "summary": "QQQ is projected to cost more than its monthly budget",
                    "description": f"QQQ costs {qqq_projection:.2f} USD a month at its average hourly cost of the last "
                                   "1h (compute, memory and its share of the shared services; object storage "
                                   "excluded). Budget: 100 USD unless the CostPolicy sets the symbol's own.",
                    "runbook_url": "https://github.com/tradeops/tradeops/blob/main/docs/reports.md#cost-per-symbol",
                }}]},
        ],
    }
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump({"rule_files": ["cost-rules.yml"], "evaluation_interval": "1m",
                                     "tests": [test]}, sort_keys=False))
    result = run_promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
