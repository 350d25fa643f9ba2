"""The rules generated from the default SLO policy pass `promtool check rules`, and promtool's unit tests
show the burn-rate alerts firing when (and only when) the SRE workbook says they should.

Counters advance once a minute: ticks by 100, errors by `100 x error ratio`. The error-ratio SLO's budget is
1 % (objective 99 %), so 20 errors a minute burn it 20x as fast as sustainable."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from typing import Any

import yaml

from policies.loader import load_dir
from policies.rules import ALERT_NAME, groups, render_rules

RUNBOOK = "https://github.com/tradeops/tradeops/blob/main/docs/runbooks.md#error-ratio"
SPY = {"namespace": "trading", "symbol": "SPY"}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is not on PATH: install Debian's `prometheus` package (scripts/install-system-deps.sh)"
    return found


def write_rules(directory: pathlib.Path) -> pathlib.Path:
    path = directory / "rules.yml"
    path.write_text(render_rules(groups(load_dir().slo["default"])))
    return path


def burn_alert(factor: str, long: str, short: str, severity: str, burn: str) -> dict[str, Any]:
    """An expected firing alert of the error-ratio SLO for SPY; `burn` is the long window's rate, as shown."""
    hours = {"14.4": "50", "6": "120", "3": "240", "1": "720"}[factor]
    return {
        "exp_labels": {**SPY, "severity": severity, "slo": "error-ratio", "burn_rate": factor, "long": long,
                       "short": short},
        "exp_annotations": {
            "summary": f"SPY burns the error-ratio error budget {factor}x too fast",
            "description": f"trading/SPY: the error-ratio SLO (99 % over 30d) burns its error budget {burn}x as "
                           f"fast as sustainable over {long} (and above {factor}x over {short}); at {factor}x "
                           f"the whole budget lasts {hours} h.",
            "runbook_url": RUNBOOK,
        },
    }


def ticks(symbol: str, minutes: int) -> dict[str, str]:
    return {"series": f'tradeops_ticks_total{{namespace="trading", symbol="{symbol}", kind="trade"}}',
            "values": f"0+100x{minutes}"}


def errors(symbol: str, values: str) -> dict[str, str]:
    return {"series": f'tradeops_errors_total{{namespace="trading", symbol="{symbol}", stage="signal"}}',
            "values": values}


def alerts_at(minute: int, *expected: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": f"{minute}m", "alertname": ALERT_NAME, "exp_alerts": list(expected)}


FAST_BURN = {
    # SPY healthy for 6 h, then 20x from minute 361; QQQ healthy throughout (and has no error series at all).
    "name": "20x burn pages once the 1h window passes 14.4x; a healthy symbol beside it stays quiet",
    "interval": "1m",
    "input_series": [ticks("SPY", 480), errors("SPY", "0x360 20+20x120"), ticks("QQQ", 480)],
    "alert_rule_test": [
        alerts_at(360),
        # 40 min in: the 1h ratio is 800/6000 = 13.3x < 14.4x; only the 3-day ticket (2.0x) fires.
        alerts_at(400, burn_alert("1", "3d", "6h", "ticket", "2.0")),
        # 50 min in: 1000/6000 = 16.7x over 1h, 20x over 5m: the page fires.
        alerts_at(410, burn_alert("14.4", "1h", "5m", "page", "16.7"),
                  burn_alert("1", "3d", "6h", "ticket", "2.4")),
        # 2 h in: the 6h window reaches 2400/36000 = 6.7x and the day 2400/48000 = 5x: all four pairs fire.
        alerts_at(480, burn_alert("14.4", "1h", "5m", "page", "20.0"),
                  burn_alert("6", "6h", "30m", "page", "6.7"),
                  burn_alert("3", "1d", "2h", "ticket", "5.0"),
                  burn_alert("1", "3d", "6h", "ticket", "5.0")),
    ],
    "promql_expr_test": [{
        "expr": 'slo:sli_error:ratio_rate5m{slo="error-ratio"}',
        "eval_time": "410m",
        "exp_samples": [{"labels": 'slo:sli_error:ratio_rate5m{namespace="trading", slo="error-ratio", symbol="SPY"}',
                         "value": 0.2},
                        {"labels": 'slo:sli_error:ratio_rate5m{namespace="trading", slo="error-ratio", symbol="QQQ"}',
                         "value": 0}],
    }],
}

SLOW_BURN = {
    # 2x from minute 61: too slow for pages and for the 3x ticket; the 3-day window passes 1x after an hour.
    "name": "2x burn raises only the ticket, after its long window passes 1x",
    "interval": "1m",
    "input_series": [ticks("SPY", 150), errors("SPY", "0x60 2+2x90")],
    "alert_rule_test": [
        alerts_at(100),  # 80 errors / 10000 ticks = 0.8x
        alerts_at(150, burn_alert("1", "3d", "6h", "ticket", "1.2")),  # 180 / 15000 = 1.2x
    ],
}

def about(expr: str, value: float, slo: str) -> dict[str, Any]:
    """A promql_expr_test that `expr` is within 1e-9 of `value` for ES at 120m."""
    return {"expr": f"abs({expr} - {value}) < bool 1e-9", "eval_time": "120m",
            "exp_samples": [{"labels": f'{{namespace="trading", slo="{slo}", symbol="ES"}}', "value": 1}]}


WITHIN_BUDGET = {
    # Errors at half the budget, 1 % of ticks slower than 50 ms, every scrape answered.
    "name": "a symbol within budget fires nothing; recordings hold its ratios and budgets",
    "interval": "1m",
    "input_series": [
        {"series": 'tradeops_ticks_total{namespace="trading", symbol="ES", kind="trade"}', "values": "0+200x120"},
        {"series": 'tradeops_errors_total{namespace="trading", symbol="ES", stage="feed"}', "values": "0+1x120"},
        {"series": 'tradeops_tick_to_signal_seconds_count{namespace="trading", symbol="ES"}', "values": "0+100x120"},
        {"series": 'tradeops_tick_to_signal_seconds_bucket{namespace="trading", symbol="ES", le="0.05"}',
         "values": "0+99x120"},
        {"series": 'up{namespace="trading", symbol="ES", job="runtime"}', "values": "1x120"},
    ],
    "alert_rule_test": [alerts_at(30), alerts_at(120)],
    "promql_expr_test": [
        {"expr": 'slo:error_budget_remaining:ratio{slo="error-ratio"}', "eval_time": "120m",
         "exp_samples": [{"labels": 'slo:error_budget_remaining:ratio{namespace="trading", slo="error-ratio", '
                                    'symbol="ES"}', "value": 0.5}]},
        # 1 % of ticks slow: float rounding of the rates needs a tolerance here (promtool compares exactly).
        about('slo:sli_error:ratio_rate1h{slo="tick-to-signal-latency"}', 0.01, "tick-to-signal-latency"),
        about('slo:error_budget_remaining:ratio{slo="tick-to-signal-latency"}', 0.8, "tick-to-signal-latency"),
        {"expr": 'slo:error_budget_remaining:ratio{slo="availability"}', "eval_time": "120m",
         "exp_samples": [{"labels": 'slo:error_budget_remaining:ratio{namespace="trading", slo="availability", '
                                    'symbol="ES"}', "value": 1}]},
        {"expr": "slo:error_budget:ratio", "eval_time": "1m",
         "exp_samples": [{"labels": 'slo:error_budget:ratio{slo="tick-to-signal-latency"}', "value": 0.05},
                         {"labels": 'slo:error_budget:ratio{slo="error-ratio"}', "value": 0.01},
                         {"labels": 'slo:error_budget:ratio{slo="availability"}', "value": 0.0005}]},
    ],
}


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


def test_generated_rules_pass_promtool_check(tmp_path: pathlib.Path):
    result = run_promtool("check", "rules", str(write_rules(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 45 rules found" in result.stdout  # 3 SLOs with an SLI x (7 ratios + 4 budget rules + 4 alerts)


def test_alerts_fire_and_stay_quiet_as_the_workbook_says(tmp_path: pathlib.Path):
    write_rules(tmp_path)
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                     "tests": [FAST_BURN, SLOW_BURN, WITHIN_BUDGET]}, sort_keys=False))
    result = run_promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
