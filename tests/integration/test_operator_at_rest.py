"""The operator at rest, counted (not timed): N unchanged TradingSymbols cost no API writes but the status
writes of the background analysis they declare, and a bounded number of looks and reconciles per declared
interval. The per-object analysis daemons looked at every symbol every second; this fails if anything
polls like that again, or writes what did not change."""

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
from trading_operator.timestamps import parse_time

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


def measured_at(kube: KubeApi, namespace: str) -> dict[str, float]:
    """Each symbol's last background measurement (epoch seconds), for the Ready ones that have one."""
    out = {}
    for item in kube.list_objects(TRADING_SYMBOLS, namespace):
        status = item.get("status") or {}
        last = (status.get("background") or {}).get("lastMeasuredAt")
        if status.get("phase") == "Ready" and last:
            out[item["metadata"]["name"]] = parse_time(last).timestamp()
    return out


def test_unchanged_symbols_cost_only_their_declared_analysis(at_rest: tuple[KubeApi, str, str, str]) -> None:
    kube, namespace, emulator_url, metrics_url = at_rest
    for i in range(SYMBOLS):
        create_ts(kube, namespace, f"s{i}", symbol=f"S{i}", policies={"analysis": "at-rest"})
    measured = wait_for(lambda: (found := measured_at(kube, namespace)) and len(found) == SYMBOLS and found,
                        120, f"{SYMBOLS} Ready symbols measured in the background")
    # One more interval first: the emulated Deployment controller finishes the rollouts' status meanwhile.
    first = wait_for(lambda: (found := measured_at(kube, namespace)) and all(
        found[name] >= measured[name] + INTERVAL for name in measured) and found, 60, "a second measurement")
    requests_before = api_requests(emulator_url)
    looks_before = operator_counter(metrics_url, "tradeops_operator_analysis_looks")
    reconciles_before = operator_counter(metrics_url, "tradeops_operator_reconciles")
    started = time.monotonic()
    # At rest for three of the declared intervals, as the measurements themselves show.
    wait_for(lambda: all(t >= first[name] + 3 * INTERVAL for name, t in measured_at(kube, namespace).items()),
             120, "three more background intervals of every symbol")
    elapsed = time.monotonic() - started
    intervals = elapsed / INTERVAL + 1
    delta = api_requests(emulator_url) - requests_before
    writes = {key: count for key, count in delta.items() if key[0] not in READS}
    looks = operator_counter(metrics_url, "tradeops_operator_analysis_looks") - looks_before
    reconciles = operator_counter(metrics_url, "tradeops_operator_reconciles") - reconciles_before

    assert set(writes) <= {("PATCH", "tradingsymbols", "status")}, f"writes of unchanged symbols: {writes}"
    status_writes = writes.get(("PATCH", "tradingsymbols", "status"), 0)
    assert 3 * SYMBOLS <= status_writes <= SYMBOLS * intervals, (status_writes, elapsed)
    # A reconcile per measurement (its status write's event is looked at, not reconciled); the resync safety
    # net (60 s) does not fall in the window.
    assert reconciles <= SYMBOLS * intervals, (reconciles, elapsed, status_writes)
    # A look per measurement and one per event its status write causes; the daemons looked once a second.
    assert looks <= SYMBOLS * 2 * intervals, (looks, elapsed)
    assert looks < SYMBOLS * elapsed * 0.8, (looks, elapsed)
