"""The rules generated from the default SLO policy pass `promtool check rules`, and promtool's unit tests
show the burn-rate alerts firing when (and only when) the SRE workbook says they should.

Counters advance once a minute: ticks by 100, processing errors by `100 x error ratio`. The error-ratio SLO's
budget is 1 % (objective 99 %), so 20 errors a minute burn it 20x as fast as sustainable. Every burn starts
after three healthy days, the longest window's length: with less history the long windows see only the
burn and fire early (a 20x burn over 6 h of history raises the 3-day ticket after 40 minutes). With full
history, a pair fires when its long window passes its factor: window x factor / burn after the burn starts
(the workbook's detection time; the next minute, as the comparison is strict)."""

from __future__ import annotations

import math
import pathlib
import shutil
import subprocess
from typing import Any

import yaml

from policies.loader import load_dir
from policies.operator_alerts import OPERATOR_DOWN_ALERT, operator_alerts
from policies.rule_set import rule_groups
from policies.rules import ALERT_NAME, render_rules
from policies.symbol_alerts import HALTED_ALERT, PAUSED_ALERT, RUNTIME_ABSENT_ALERT, symbol_alerts

RUNBOOK = "https://github.com/tradeops/tradeops/blob/main/docs/runbooks.md#error-ratio"
SPY = {"namespace": "trading", "symbol": "SPY"}
HISTORY = 3 * 24 * 60
"""Minutes of healthy history before a burn: the 3-day window."""


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is not on PATH: install Debian's `prometheus` package (scripts/install-system-deps.sh)"
    return found


def write_rules(directory: pathlib.Path) -> pathlib.Path:
    path = directory / "rules.yml"
    path.write_text(render_rules(rule_groups(load_dir().slo["default"])))
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


def ticks(symbol: str, per_sample: int, samples: int) -> dict[str, str]:
    return {"series": f'tradeops_ticks_total{{namespace="trading", symbol="{symbol}", kind="trade"}}',
            "values": f"0+{per_sample}x{samples}"}


def errors(symbol: str, values: str, stage: str = "process") -> dict[str, str]:
    return {"series": f'tradeops_errors_total{{namespace="trading", symbol="{symbol}", stage="{stage}"}}',
            "values": values}


def alerts_at(minute: int, *expected: dict[str, Any], name: str = ALERT_NAME) -> dict[str, Any]:
    return {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": list(expected)}


STEP = 5
"""Minutes between samples and between evaluations of the long-history tests: three days at one minute is
more than promtool evaluates in a couple of minutes on a loaded machine. An alert is then seen at the first
evaluation after its detection time."""


def detected(window_minutes: int, factor: float, burn: float) -> int:
    """The first evaluation of the burn at which a pair fires: its long window's ratio is above the factor
    after window x factor / burn minutes (the workbook's detection time)."""
    return (math.floor(window_minutes * factor / burn / STEP) + 1) * STEP


def quiet(window_minutes: int, factor: float, burn: float) -> int:
    """The last evaluation clearly before the detection time (an exact boundary, where float rounding
    decides, is left out)."""
    return math.ceil(window_minutes * factor / burn / STEP) * STEP - STEP


H, D = 60, 24 * 60


def test_the_detection_times_are_the_workbooks():
    # 14.4 x 1h / 20 = 43.2 min, 6 x 6h / 20 = 108 min, 3 x 1d / 20 = 1 x 3d / 20 = 216 min, 1 x 3d / 2 = 36 h.
    assert [(quiet(w, f, b), detected(w, f, b)) for w, f, b in
            [(H, 14.4, 20), (6 * H, 6, 20), (D, 3, 20), (3 * D, 1, 20), (3 * D, 1, 2)]] == [
        (40, 45), (105, 110), (215, 220), (215, 220), (2155, 2165)]


def counter(per_minute: int) -> str:
    """A counter's increments per sample."""
    return str(per_minute * STEP)


FAST_BURN = {
    # SPY healthy for 3 days, then 20x; QQQ healthy throughout (and has no error series at all), and a Redis
    # outage on QQQ's quiet market counts nothing against its error ratio.
    "name": "a 20x burn pages and tickets at the workbook's times; a healthy symbol beside it stays quiet",
    "interval": f"{STEP}m",
    "input_series": [
        ticks("SPY", 100 * STEP, (HISTORY + 240) // STEP),
        errors("SPY", f"0x{HISTORY // STEP} {counter(20)}+{counter(20)}x{240 // STEP}"),
        ticks("QQQ", 100 * STEP, (HISTORY + 240) // STEP),
        errors("QQQ", f"0x{HISTORY // STEP} {counter(50)}+{counter(50)}x{240 // STEP}", stage="redis"),
    ],
    "alert_rule_test": [
        alerts_at(HISTORY),
        alerts_at(HISTORY + quiet(H, 14.4, 20)),  # 40 min: the 1h window at 800/6000 = 13.3x
        alerts_at(HISTORY + detected(H, 14.4, 20), burn_alert("14.4", "1h", "5m", "page", "15.0")),  # 900/6000
        alerts_at(HISTORY + quiet(6 * H, 6, 20), burn_alert("14.4", "1h", "5m", "page", "20.0")),
        alerts_at(HISTORY + detected(6 * H, 6, 20), burn_alert("14.4", "1h", "5m", "page", "20.0"),
                  burn_alert("6", "6h", "30m", "page", "6.1")),  # 2200/36000
        alerts_at(HISTORY + quiet(D, 3, 20), burn_alert("14.4", "1h", "5m", "page", "20.0"),
                  burn_alert("6", "6h", "30m", "page", "11.9")),  # 4300/36000
        # 4400/144000 = 3.06x over the day, 4400/432000 = 1.02x over three: both tickets at once.
        alerts_at(HISTORY + detected(D, 3, 20), burn_alert("14.4", "1h", "5m", "page", "20.0"),
                  burn_alert("6", "6h", "30m", "page", "12.2"),
                  burn_alert("3", "1d", "2h", "ticket", "3.1"),
                  burn_alert("1", "3d", "6h", "ticket", "1.0")),
    ],
    "promql_expr_test": [{
        "expr": 'slo:sli_error:ratio_rate5m{slo="error-ratio"}',
        "eval_time": f"{HISTORY + 50}m",
        "exp_samples": [{"labels": 'slo:sli_error:ratio_rate5m{namespace="trading", slo="error-ratio", symbol="SPY"}',
                         "value": 0.2},
                        {"labels": 'slo:sli_error:ratio_rate5m{namespace="trading", slo="error-ratio", symbol="QQQ"}',
                         "value": 0}],
    }],
}

SLOW_END = detected(3 * D, 1, 2)
SLOW_BURN = {
    # 2x after three healthy days: too slow for pages and for the 3x ticket; the 3-day window passes 1x after
    # 3 d x 1 / 2 = 36 h.
    "name": "a 2x burn raises only the 3-day ticket, after 36 hours",
    "interval": f"{STEP}m",
    "input_series": [ticks("SPY", 100 * STEP, (HISTORY + SLOW_END) // STEP),
                     errors("SPY", f"0x{HISTORY // STEP} {counter(2)}+{counter(2)}x{SLOW_END // STEP}")],
    "alert_rule_test": [
        alerts_at(HISTORY + 12 * 60),
        alerts_at(HISTORY + quiet(3 * D, 1, 2)),  # 4310 / 432000 = 0.998x
        alerts_at(HISTORY + SLOW_END, burn_alert("1", "3d", "6h", "ticket", "1.0")),  # 4330 / 432000
    ],
}

IDLE = {
    # Ticks stop (a closed market) while Redis errors go on: no ratio, no NaN, no alert; the 30-day ratio
    # averages the windows that had events only.
    "name": "a symbol with no ticks has no error ratio, never an infinite one",
    "interval": "1m",
    "input_series": [
        {"series": 'tradeops_ticks_total{namespace="trading", symbol="ES", kind="trade"}',
         "values": "0+100x60 6000x120"},
        errors("ES", "0+1x60 60x120"),
        errors("ES", "0+10x180", stage="redis"),
    ],
    "alert_rule_test": [alerts_at(60), alerts_at(180)],
    "promql_expr_test": [
        {"expr": 'slo:sli_error:ratio_rate5m{slo="error-ratio"}', "eval_time": "180m", "exp_samples": []},
        {"expr": 'abs(slo:sli_error:ratio_rate30d{slo="error-ratio"} - 0.01) < bool 1e-9', "eval_time": "180m",
         "exp_samples": [{"labels": '{namespace="trading", slo="error-ratio", symbol="ES"}', "value": 1}]},
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
        ticks("ES", 200, 120),
        errors("ES", "0+1x120"),
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


def symbol_alert(name: str, symbol: str, severity: str, value: str = "1", **labels: str) -> dict[str, Any]:
    """An expected alert of the symbol group, its annotations filled in as Alertmanager would see them."""
    all_labels = {"namespace": "trading", "symbol": symbol, **labels}
    (rule,) = [r for r in symbol_alerts() if r["alert"] == name]

    def fill(text: str) -> str:
        for key, label in all_labels.items():
            text = text.replace(f"{{{{ $labels.{key} }}}}", label)
        return text.replace("{{ $value }}", value)
    return {"exp_labels": {**all_labels, "severity": severity},
            "exp_annotations": {key: fill(text) for key, text in rule["annotations"].items()}}


def operator_series(symbol: str, replicas: int, phase: str, minutes: int) -> list[dict[str, str]]:
    """The operator's gauges of one TradingSymbol (scraped with its labels honoured)."""
    labels = f'namespace="trading", symbol="{symbol}", tradingsymbol="{symbol.lower()}"'
    return [{"series": f"tradeops_operator_symbol_replicas{{{labels}}}", "values": f"{replicas}x{minutes}"},
            {"series": f'tradeops_operator_symbol_phase{{{labels}, phase="{phase}"}}', "values": f"1x{minutes}"}]


def up(symbol: str, values: str) -> dict[str, str]:
    return {"series": f'up{{namespace="trading", symbol="{symbol}", revision="1", job="trading-runtimes"}}',
            "values": values}


SYMBOL_STATE = {
    # SPY runs; ES stops answering its scrapes at minute 11; QQQ should run and has never been scraped; DAX
    # is scaled to zero on purpose. SPY is halted by its kill switch from minute 20; ES is paused.
    "name": "absent runtimes page after 5 minutes; halted and paused symbols raise their alerts",
    "interval": "1m",
    "input_series": [
        *operator_series("SPY", 1, "Ready", 40), *operator_series("ES", 2, "Paused", 40),
        *operator_series("QQQ", 1, "Progressing", 40), *operator_series("DAX", 0, "Ready", 40),
        up("SPY", "1x40"), up("ES", "1x10 0x30"),
        {"series": 'tradeops_trading_halted{namespace="trading", symbol="SPY", reason="kill-switch", pod="spy-1"}',
         "values": "0x19 1x21"},
        {"series": 'tradeops_trading_halted{namespace="trading", symbol="SPY", reason="drawdown", pod="spy-1"}',
         "values": "0x40"},
    ],
    "alert_rule_test": [
        alerts_at(4, name=RUNTIME_ABSENT_ALERT),
        alerts_at(5, symbol_alert(RUNTIME_ABSENT_ALERT, "QQQ", "page"), name=RUNTIME_ABSENT_ALERT),
        alerts_at(15, symbol_alert(RUNTIME_ABSENT_ALERT, "QQQ", "page"), name=RUNTIME_ABSENT_ALERT),
        alerts_at(16, symbol_alert(RUNTIME_ABSENT_ALERT, "ES", "page", value="2"),
                  symbol_alert(RUNTIME_ABSENT_ALERT, "QQQ", "page"), name=RUNTIME_ABSENT_ALERT),
        alerts_at(19, name=HALTED_ALERT),
        alerts_at(20, symbol_alert(HALTED_ALERT, "SPY", "ticket", reason="kill-switch"), name=HALTED_ALERT),
        alerts_at(1, symbol_alert(PAUSED_ALERT, "ES", "ticket"), name=PAUSED_ALERT),
    ],
}


def operator_down(minute: int) -> dict[str, Any]:
    (rule,) = operator_alerts()
    return alerts_at(minute, {"exp_labels": {"severity": "page"}, "exp_annotations": rule["annotations"]},
                     name=OPERATOR_DOWN_ALERT)


PROMETHEUS_OPERATOR = {"series": 'up{job="monitoring/kube-prometheus-stack-operator"}', "values": "1x40"}
"""kube-prometheus-stack's own operator, up all along: it must not hide ours."""

OPERATOR_FAILS_ITS_SCRAPES = {
    "name": "an operator whose scrapes fail from minute 11 pages 5 minutes later",
    "interval": "1m",
    "input_series": [PROMETHEUS_OPERATOR,
                     {"series": 'up{job="tradeops-system/tradeops-operator", pod="tradeops-operator-0"}',
                      "values": "1x10 0x30"}],
    "alert_rule_test": [alerts_at(10, name=OPERATOR_DOWN_ALERT), alerts_at(15, name=OPERATOR_DOWN_ALERT),
                        operator_down(16), operator_down(30)],
}

OPERATOR_GONE = {
    # The last sample at minute 10 reads for Prometheus's 5-minute lookback; absent from minute 16, pages at 21.
    "name": "an operator whose target is gone pages once its series is stale for 5 minutes",
    "interval": "1m",
    "input_series": [PROMETHEUS_OPERATOR, {"series": 'up{job="tradeops-operator"}', "values": "1x10 _x30"}],
    "alert_rule_test": [alerts_at(15, name=OPERATOR_DOWN_ALERT), alerts_at(20, name=OPERATOR_DOWN_ALERT),
                        operator_down(21), operator_down(35)],
}

OPERATOR_RUNS = {
    "name": "a running operator raises nothing; a restart shorter than 5 minutes neither",
    "interval": "1m",
    "input_series": [{"series": 'up{job="tradeops-system/tradeops-operator"}', "values": "1x10 0x3 1x20"}],
    "alert_rule_test": [alerts_at(m, name=OPERATOR_DOWN_ALERT) for m in (5, 12, 14, 16, 30)],
}


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=300, check=False)


def test_generated_rules_pass_promtool_check(tmp_path: pathlib.Path):
    result = run_promtool("check", "rules", str(write_rules(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    # 3 SLOs with an SLI x (7 ratios + 4 budget rules + 4 alerts), 3 symbol alerts, 1 operator alert, 9 KPIs
    assert "SUCCESS: 58 rules found" in result.stdout


def promtool_tests(directory: pathlib.Path, evaluation_interval: str, tests: list[dict[str, Any]]) -> None:
    write_rules(directory)
    path = directory / "tests.yml"
    path.write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": evaluation_interval,
                                    "tests": tests}, sort_keys=False))
    result = run_promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_burns_after_three_healthy_days_alert_at_the_workbooks_detection_times(tmp_path: pathlib.Path):
    promtool_tests(tmp_path, f"{STEP}m", [FAST_BURN, SLOW_BURN])


def test_idle_healthy_halted_paused_and_absent_symbols(tmp_path: pathlib.Path):
    promtool_tests(tmp_path, "1m", [IDLE, WITHIN_BUDGET, SYMBOL_STATE])


def test_operator_down_pages_when_its_scrapes_fail_or_its_target_is_gone(tmp_path: pathlib.Path):
    promtool_tests(tmp_path, "1m", [OPERATOR_FAILS_ITS_SCRAPES, OPERATOR_GONE, OPERATOR_RUNS])
