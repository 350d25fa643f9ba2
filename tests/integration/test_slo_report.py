"""opsctl slo report against a real Prometheus scraping two runtimes whose error ratios are known.

Each fake runtime serves counters that grow at fixed rates (computed from the clock at scrape time, so every
scrape is consistent): SPY fails 0.4 % of its ticks and answers 2 % of them slower than 50 ms; QQQ never
fails (it has no error series at all, as a fresh runtime) and is always fast. A report of one TradingSymbol
looks it up on the emulated API (its namespace and ticker select the series)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from typer.testing import CliRunner

from devstack.emulator import EmulatorThread, kubeconfig_for
from devstack.processes import install_crd
from opsctl.main import app
from policies.loader import load_dir
from policies.rules import groups, render_rules
from tests.integration import emulator_fixtures
from tests.prometheus_server import ThrowawayPrometheus
from tests.servers import free_port
from trading_operator import api
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import NAMESPACES, KubeApi

TICKS_PER_SECOND = 100.0
runner = CliRunner()


class SteadyRuntime(Collector):
    """A runtime's SLI counters at constant rates since it started."""

    def __init__(self, symbol: str, error_ratio: float, slow_ratio: float) -> None:
        self.symbol, self.error_ratio, self.slow_ratio = symbol, error_ratio, slow_ratio
        self.started = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        ticks = TICKS_PER_SECOND * (time.monotonic() - self.started)
        family = CounterMetricFamily("tradeops_ticks", "Market messages processed", labels=["symbol", "kind"])
        family.add_metric([self.symbol, "trade"], ticks)
        yield family
        if self.error_ratio:
            errors = CounterMetricFamily("tradeops_errors", "Errors", labels=["symbol", "stage"])
            errors.add_metric([self.symbol, "process"], ticks * self.error_ratio)
            yield errors
        latency = HistogramMetricFamily("tradeops_tick_to_signal_seconds", "Tick to signal", labels=["symbol"])
        latency.add_metric([self.symbol], buckets=[("0.05", ticks * (1 - self.slow_ratio)), ("+Inf", ticks)],
                           sum_value=ticks * 0.01)
        yield latency


@pytest.fixture(scope="module")
def prometheus() -> Iterator[ThrowawayPrometheus]:
    server = ThrowawayPrometheus(scrape_interval="1s")
    rules = server.dir / "rules.yml"
    rules.write_text(render_rules(groups(load_dir().slo["default"])))
    server.add_rule_file(rules)
    exporters = []
    for runtime in (SteadyRuntime("SPY", 0.004, 0.02), SteadyRuntime("QQQ", 0.0, 0.0)):
        registry = CollectorRegistry()
        registry.register(runtime)
        port = free_port()
        exporters.append(start_http_server(port, addr="127.0.0.1", registry=registry))
        # The target's symbol label is what `up` carries; the runtime's own label wins on its series.
        server.add_target(f"127.0.0.1:{port}", {"namespace": "trading", "symbol": runtime.symbol})
    try:
        server.start()
        # rate() needs two scrapes of every runtime.
        server.wait_for("sum by (symbol) (rate(tradeops_ticks_total[1h]))", series=2)
        yield server
    finally:
        server.destroy()
        for http, thread in exporters:
            http.shutdown()
            http.server_close()
            thread.join()


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulated API with TradingSymbols `spy` (SPY, scraped) and `es` (ES, not scraped) in `trading`."""
    with EmulatorThread() as emulator, emulator_fixtures.api_client_for(emulator.url) as client:
        kube = KubeApi(client)
        install_crd(kube)
        kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "trading"}})
        for name, ticker in (("spy", "SPY"), ("es", "ES")):
            kube.create(TRADING_SYMBOLS, "trading", {
                "apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name},
                "spec": {"symbol": ticker, "market": "equity-options", "image": "ghcr.io/tradeops/rt:0.1.0"}})
        path = tmp_path_factory.mktemp("slo") / "kubeconfig"
        path.write_text(json.dumps(kubeconfig_for(emulator.url, "trading")))
        yield str(path)


def report(prometheus: ThrowawayPrometheus, *args: str, kubeconfig: str = "") -> dict[tuple[str, str], dict[str, Any]]:
    result = runner.invoke(app, ["slo", "report", "-o", "json", *args],
                           env={"TRADEOPS_PROMETHEUS_URL": prometheus.url, "KUBECONFIG": kubeconfig})
    assert result.exit_code == 0, result.output
    return {(row["symbol"], row["slo"]): row for row in json.loads(result.stdout)}


# (symbol, slo) -> (error ratio, budget remaining): budget = 1 - objective (1 %, 5 %, 0.05 %).
EXPECTED = {
    ("SPY", "error-ratio"): (0.004, 0.6),
    ("SPY", "tick-to-signal-latency"): (0.02, 0.6),
    ("SPY", "availability"): (0.0, 1.0),
    ("QQQ", "error-ratio"): (0.0, 1.0),
    ("QQQ", "tick-to-signal-latency"): (0.0, 1.0),
    ("QQQ", "availability"): (0.0, 1.0),
}


def test_budget_left_per_symbol_and_slo_matches_the_known_ratios(prometheus: ThrowawayPrometheus):
    rows = report(prometheus)
    assert set(rows) == set(EXPECTED)
    for key, (ratio, remaining) in EXPECTED.items():
        row = rows[key]
        assert row["namespace"] == "trading"
        assert row["window"] == "30d"
        assert row["errorRatio"] == pytest.approx(ratio, abs=1e-6), key
        assert row["budgetRemaining"] == pytest.approx(remaining, abs=1e-4), key
        # Constant rates: the last hour burns like the whole period.
        assert row["burnRate1h"] == pytest.approx(1 - remaining, abs=1e-4), key


@pytest.mark.parametrize("name", ["spy", "SPY"], ids=["name", "ticker"])
def test_a_tradingsymbol_and_a_window_narrow_the_report(prometheus: ThrowawayPrometheus, kubeconfig: str, name: str):
    rows = report(prometheus, name, "--window", "5m", kubeconfig=kubeconfig)
    assert {symbol for symbol, _ in rows} == {"SPY"}
    assert {row["window"] for row in rows.values()} == {"5m"}
    assert rows["SPY", "error-ratio"]["budgetRemaining"] == pytest.approx(0.6, abs=1e-4)


def test_a_tradingsymbol_without_series_is_an_error_that_says_where_to_look(prometheus: ThrowawayPrometheus,
                                                                           kubeconfig: str):
    result = runner.invoke(app, ["slo", "report", "es", "--prometheus-url", prometheus.url],
                           env={"KUBECONFIG": kubeconfig})
    assert result.exit_code == 3
    assert result.stderr == (f"opsctl: error: no SLI series of ES in namespace trading in Prometheus at "
                             f"{prometheus.url}: is the runtime scraped there (`up{{symbol!=\"\"}}`)? If not this "
                             "Prometheus, set TRADEOPS_PROMETHEUS_URL or pass --prometheus-url\n")


def test_table_shows_budget_left(prometheus: ThrowawayPrometheus, kubeconfig: str):
    result = runner.invoke(app, ["slo", "report", "--prometheus-url", prometheus.url, "spy"],
                           env={"KUBECONFIG": kubeconfig})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "SYMBOL", "SLO", "OBJECTIVE", "WINDOW", "ERROR", "RATIO", "BUDGET",
                                "LEFT", "BURN", "1H"]
    assert any(line.split()[:7] == ["trading", "SPY", "error-ratio", "99%", "30d", "0.40%", "60.00%"]
               for line in lines[1:]), result.stdout


def test_generated_rules_record_the_same_budgets_in_prometheus(prometheus: ThrowawayPrometheus):
    remaining = prometheus.wait_for('slo:error_budget_remaining:ratio{slo="error-ratio"}', series=2)
    assert {r["metric"]["symbol"]: float(r["value"][1]) for r in remaining} == {
        "SPY": pytest.approx(0.6, abs=1e-4), "QQQ": pytest.approx(1.0)}
    assert prometheus.query('ALERTS{alertname="TradeopsErrorBudgetBurn"}') == []  # 0.4x: no burn alert


def test_stopped_prometheus_exits_4():
    server = ThrowawayPrometheus().start()
    server.destroy()
    result = runner.invoke(app, ["slo", "report", "--prometheus-url", server.url])
    assert result.exit_code == 4
    assert result.stderr == (f"opsctl: error: Prometheus at {server.url} is unreachable (connection refused): set "
                             "TRADEOPS_PROMETHEUS_URL or pass --prometheus-url\n")
