"""`opsctl top` against a real Prometheus scraping real trading runtimes, with phases from the (emulated)
Kubernetes API: `--once` for scripts (table and JSON, "no data" where Prometheus has nothing), Prometheus
unreachable → exit 4, and the live view in a 120x40 tmux pane: drawn, refreshed, ended by Ctrl-C."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.processes import FeedProcess
from opsctl.top_view import COLUMNS
from tests.integration.conftest import Stack
from tests.integration.operator_harness import create_ts, new_namespace
from tests.integration.runtime_process import RuntimeProcess, wait_until
from tests.prometheus_server import ThrowawayPrometheus
from tests.servers import free_port
from trading_operator.executor import TRADING_SYMBOLS

pytestmark = pytest.mark.integration
ROOT = pathlib.Path(__file__).resolve().parents[2]
OPSCTL = str(pathlib.Path(sys.executable).with_name("opsctl"))
STRATEGY = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}}


@dataclass
class Fleet:
    namespace: str
    prometheus: ThrowawayPrometheus
    kubeconfig: pathlib.Path

    def opsctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([OPSCTL, "--kubeconfig", str(self.kubeconfig), "top", "--once", "-n", self.namespace,
                               "--prometheus-url", self.prometheus.url, *args],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def fleet(private_stack: Stack, tmp_path_factory) -> Iterator[Fleet]:
    """SPY healthy and QQQ failing a fifth of its ticks, both scraped with the labels a PodMonitor gives;
    ES is a TradingSymbol with no runtime: all "no data" but its phase. An API server of the module's own:
    the shared one has an operator that would set the phases itself."""
    stack = private_stack
    workdir = tmp_path_factory.mktemp("top")
    namespace = new_namespace(stack.kube)
    feed = FeedProcess(workdir, symbols="SPY,QQQ", rate=100.0, seed=5).start()
    prometheus = ThrowawayPrometheus().add_rule_file(ROOT / "deploy/prometheus/rules.yml")
    prometheus.add_file_sd_dir()
    prometheus.start()
    runtimes = [RuntimeProcess(workdir, "SPY", feed.url, revision=1, runtime=STRATEGY).start(),
                RuntimeProcess(workdir, "QQQ", feed.url, revision=2,
                               runtime={**STRATEGY, "faultInjection": {"errorRate": 0.2}}).start()]
    for runtime in runtimes:
        prometheus.write_targets(runtime.symbol, [{"targets": [runtime.address], "labels": {
            "namespace": namespace, "revision": runtime.dir.name.split("-")[1]}}])
    for name, symbol, phase in (("spy", "SPY", "Ready"), ("qqq", "QQQ", "Degraded"), ("es", "ES", "Halted")):
        create_ts(stack.kube, namespace, name, symbol=symbol)
        stack.kube.patch_status(TRADING_SYMBOLS, namespace, name, {"phase": phase})
    create_ts(stack.kube, new_namespace(stack.kube), "spy", symbol="SPY")  # another team's: not shown with -n
    try:
        # Data for every column that can have some: latency quantiles and the generated budget rules.
        prometheus.wait_for('histogram_quantile(0.95, sum by (symbol, le) '
                            '(rate(tradeops_tick_to_signal_seconds_bucket[1m]))) >= 0', series=2, timeout=90)
        prometheus.wait_for("slo:error_budget_remaining:ratio", series=2, timeout=90)
        yield Fleet(namespace, prometheus, stack.emulator.kubeconfig)
    finally:
        for runtime in runtimes:
            runtime.stop()
        prometheus.destroy()
        feed.stop()


def rows(stdout: str) -> dict[str, list[str]]:
    """Table rows by symbol column; cells are split on runs of two or more spaces."""
    out = {}
    for line in stdout.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        out[cells[0].split("/")[-1]] = cells
    return out


def test_once_prints_every_symbol_with_no_data_where_prometheus_has_none(fleet):
    result = fleet.opsctl()
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["SYMBOL", "PHASE", "REV"]
    table = rows(result.stdout)
    assert set(table) == {"SPY", "QQQ", "ES"}, "-n: only the namespace's symbols"
    spy, qqq, es = table["SPY"], table["QQQ"], table["ES"]
    assert spy[0] == f"{fleet.namespace}/SPY"
    assert spy[1:3] == ["Ready", "1"]
    assert float(spy[3]) > 10, "ticks per second"
    assert 0 < float(spy[4]) < 1000, "p95 in milliseconds"
    assert spy[5] == "0.00%"
    assert spy[6] == "no data", "no signal is scored before its 60 s horizon"
    assert qqq[1:3] == ["Degraded", "2"]
    assert 5 < float(qqq[5].rstrip("%")) < 40, "a fifth of QQQ's ticks fail"
    assert es == [f"{fleet.namespace}/ES", "Halted"] + ["no data"] * 9


def test_once_json_has_null_for_no_data(fleet):
    result = fleet.opsctl("-o", "json")
    assert result.returncode == 0, result.stderr
    lines = {line["symbol"]: line for line in json.loads(result.stdout)}
    assert set(lines) == {"SPY", "QQQ", "ES"}
    assert lines["ES"]["tickRate"] is None
    assert lines["ES"]["phase"] == "Halted"
    assert lines["SPY"]["revisions"] == ["1"]
    assert lines["SPY"]["tickRate"] > 10
    assert 0 < lines["SPY"]["budgetLeft"] <= 1
    assert lines["SPY"]["hitRate"] is None


def test_an_unreachable_prometheus_is_exit_4_in_one_line():
    result = subprocess.run([OPSCTL, "top", "--once", "--prometheus-url", f"http://127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "KUBECONFIG": "/nonexistent"})
    assert result.returncode == 4
    assert result.stderr.startswith("opsctl: error: Prometheus at")
    assert len(result.stderr.splitlines()) == 1


def test_live_view_in_tmux_refreshes_and_quits_on_ctrl_c(fleet):
    tmux = shutil.which("tmux")
    assert tmux, "tmux is not installed: apt-get install tmux"
    socket = f"tradeops-top-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tmux, "-L", socket, *args], capture_output=True, text=True, timeout=10)

    # The tmux server inherits COLUMNS=80/LINES=24 from the test run, which rich would believe over the pane.
    command = (f"unset COLUMNS LINES; exec {OPSCTL} --kubeconfig {fleet.kubeconfig} -n {fleet.namespace} top "
               f"--interval 1 --prometheus-url {fleet.prometheus.url}")
    assert run("new-session", "-d", "-s", "top", "-x", "120", "-y", "40", command).returncode == 0
    try:
        def screen() -> str:
            return run("capture-pane", "-p", "-t", "top").stdout

        def drawn() -> str | None:
            text = screen()
            return text if "/QQQ" in text and "/ES" in text else None

        try:
            first = wait_until(drawn, 30, "the table drawn")
        except TimeoutError:
            pytest.fail(f"the table was not drawn; the screen:\n{screen()}")
        lines = first.splitlines()
        assert lines[0].startswith(f"opsctl top — {fleet.prometheus.url}")
        assert lines[1].split() == " ".join(COLUMNS).split(), "the header on one line: every column fits"
        assert all(len(line) <= 120 for line in lines)
        es = next(line for line in lines if "/ES" in line)
        assert es.count("no data") == 9
        clock = lines[0].split(" — ")[2]
        wait_until(lambda: screen().splitlines()[0].split(" — ")[2] != clock, 10, "a refresh")
        run("send-keys", "-t", "top", "C-c")
        wait_until(lambda: run("has-session", "-t", "top").returncode != 0, 10, "opsctl top to end on Ctrl-C")
    finally:
        run("kill-server")
