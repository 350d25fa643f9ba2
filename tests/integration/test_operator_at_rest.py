"""The operator at rest, counted (not timed): N unchanged, healthy TradingSymbols cost no API writes at all —
their background analysis runs at the interval they declare (counted by the operator's own metrics) and writes
nothing that did not change — and a bounded number of looks and reconciles per declared interval. The
per-object analysis daemons looked at every symbol every second, and every measurement wrote its time into the
status; this fails if anything polls like that again, or writes what did not change."""

from __future__ import annotations

import pathlib
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from devstack.processes import EmulatorProcess, OperatorProcess, free_port, install_crd, kube_for, wait_for
from tests.integration.operator_harness import create_ts, new_namespace
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import KubeApi

POLICIES = pathlib.Path(__file__).parent / "policies" / "at_rest"
INTERVAL = 3.0
"""The at-rest policy's background interval (policies/at_rest/analysis.yaml)."""
SYMBOLS = 8
REQUEST = re.compile(r'^apiserver_request_total\{verb="(\w+)",group="[^"]*",resource="([^"]*)",'
                     r'subresource="([^"]*)"\} (\d+)$')
READS = {"GET", "LIST", "WATCH"}


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def api_requests(emulator_url: str) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in scrape(f"{emulator_url}/metrics").splitlines():
        found = REQUEST.match(line)
        if found:
            verb, resource, sub, count = found.groups()
            counts[(verb, resource, sub)] = int(count)
    return counts


def operator_counter(metrics_url: str, name: str) -> float:
    found = re.search(rf"^{name}_total (\S+)$", scrape(metrics_url), re.MULTILINE)
    assert found is not None, f"{name}_total missing from the operator's metrics"
    return float(found.group(1))


@pytest.fixture
def at_rest(tmp_path: pathlib.Path) -> Iterator[tuple[KubeApi, str, str, str]]:
    emulator = EmulatorProcess(tmp_path).start()
    port = free_port()
    operator = OperatorProcess(emulator.kubeconfig, tmp_path / "operator.log",
                               env={"TRADEOPS_POLICIES_DIR": str(POLICIES), "TRADEOPS_METRICS_PORT": str(port)})
    try:
        kube = kube_for(emulator.kubeconfig)
        install_crd(kube)
        namespace = new_namespace(kube)
        operator.start()
        yield kube, namespace, emulator.url, f"http://127.0.0.1:{port}/metrics"
    finally:
        operator.stop()
        emulator.stop()


MEASURED = re.compile(r'^tradeops_operator_background_measured_timestamp_seconds\{name="([^"]+)",namespace="([^"]+)"\} '
                      r'(\S+)$', re.MULTILINE)


def measured_at(metrics_url: str, namespace: str) -> dict[str, float]:
    """Each symbol's last background measurement (epoch seconds), as the operator's /metrics shows it: the status
    records only what a measurement changed."""
    return {name: float(value) for name, ns, value in MEASURED.findall(scrape(metrics_url)) if ns == namespace}


def ready(kube: KubeApi, namespace: str) -> int:
    return sum((item.get("status") or {}).get("phase") == "Ready" for item in kube.list_objects(TRADING_SYMBOLS,
                                                                                                  namespace))


def test_unchanged_symbols_cost_no_api_writes_only_their_declared_analysis(
        at_rest: tuple[KubeApi, str, str, str]) -> None:
    kube, namespace, emulator_url, metrics_url = at_rest
    for i in range(SYMBOLS):
        create_ts(kube, namespace, f"s{i}", symbol=f"S{i}", policies={"analysis": "at-rest"})
    wait_for(lambda: ready(kube, namespace) == SYMBOLS, 120, f"{SYMBOLS} Ready symbols")
    measured = wait_for(lambda: (found := measured_at(metrics_url, namespace)) and len(found) == SYMBOLS and found,
                        120, f"{SYMBOLS} symbols measured in the background")
    # One more interval first: the emulated Deployment controller finishes the rollouts' status meanwhile.
    first = wait_for(lambda: (found := measured_at(metrics_url, namespace)) and all(
        found[name] >= measured[name] + INTERVAL for name in measured) and found, 60, "a second measurement")
    requests_before = api_requests(emulator_url)
    looks_before = operator_counter(metrics_url, "tradeops_operator_analysis_looks")
    reconciles_before = operator_counter(metrics_url, "tradeops_operator_reconciles")
    measurements_before = operator_counter(metrics_url, "tradeops_operator_background_measurements")
    started = time.monotonic()
    # At rest for four of the declared intervals, as the operator's own metrics show the measurements.
    wait_for(lambda: all(t >= first[name] + 4 * INTERVAL for name, t in measured_at(metrics_url, namespace).items()),
             120, "four more background intervals of every symbol")
    elapsed = time.monotonic() - started
    intervals = elapsed / INTERVAL + 1
    delta = api_requests(emulator_url) - requests_before
    writes = {key: count for key, count in delta.items() if key[0] not in READS}
    looks = operator_counter(metrics_url, "tradeops_operator_analysis_looks") - looks_before
    reconciles = operator_counter(metrics_url, "tradeops_operator_reconciles") - reconciles_before
    measurements = operator_counter(metrics_url, "tradeops_operator_background_measurements") - measurements_before

    assert writes == {}, f"API writes of unchanged symbols at rest: {writes}"
    assert 4 * SYMBOLS <= measurements <= SYMBOLS * intervals, (measurements, elapsed)
    # A reconcile per measurement (it writes nothing); the resync safety net (60 s) does not fall in the window.
    assert reconciles <= SYMBOLS * intervals, (reconciles, elapsed, measurements)
    # A look per measurement; the per-second daemons looked once a second.
    assert looks <= SYMBOLS * 2 * intervals, (looks, elapsed)
    assert looks < SYMBOLS * elapsed * 0.8, (looks, elapsed)
