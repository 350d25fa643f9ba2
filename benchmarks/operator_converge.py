"""How fast the operator converges N TradingSymbols on the emulated API (real processes, real HTTP).

Prints: time until every symbol is Ready (the last one's first Ready, seen on a watch),
create→Deployment latency p50/p95, the operator's CPU seconds (in all and per symbol), its reconciles
per symbol and peak RSS, and the emulated API server's CPU seconds; then, with nothing changing,
`--idle-seconds` at rest: the operator's CPU per symbol per second, its API writes (counted by the
emulator's `/metrics`, by verb and resource) and its CPU per reconcile (counted by the operator's own
`tradeops_operator_reconciles_total`). The 1-minute load average is reported next to the figures: the
machine may be shared, and CPU seconds are what load distorts least. `--json` prints one JSON object
instead.

    python benchmarks/operator_converge.py [--n 200] [--rate 20] [--idle-seconds 30] [--json]

`TRADEOPS_PROFILE=/tmp/operator.prof` makes the operator write a cProfile of its run (`python -m pstats`);
with `--profile-at-rest`, of the at-rest window alone.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from typing import Any

import kubernetes
import kubernetes.watch
import psutil

from devstack.processes import (
    EmulatorProcess,
    OperatorProcess,
    StackError,
    free_port,
    install_crd,
    kube_for,
    wait_for,
)
from trading_operator import api
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import NAMESPACES

NAMESPACE = "bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


READS = {"GET", "LIST", "WATCH"}
METRIC = re.compile(r'^apiserver_request_total\{verb="(\w+)",group="([^"]*)",resource="([^"]*)",'
                    r'subresource="([^"]*)"\} (\d+)$')


def request_totals(url: str) -> Counter[tuple[str, str, str]]:
    """The emulator's API request counts by (verb, resource, subresource)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    totals: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        found = METRIC.match(line)
        if found:
            verb, _, resource, sub, count = found.groups()
            totals[(verb, resource, sub)] += int(count)
    return totals


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def reconciles_total(metrics_url: str) -> float:
    """The operator's own count of reconciles."""
    with urllib.request.urlopen(metrics_url, timeout=60) as response:  # a loaded machine answers slowly
        text = response.read().decode()
    found = re.search(r"^tradeops_operator_reconciles_total (\S+)$", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"tradeops_operator_reconciles_total missing from {metrics_url}")
    return float(found.group(1))


def at_rest(url: str, metrics_url: str, pid: int, n: int, seconds: float, settle: float,
            profile: bool = False) -> dict[str, Any]:
    """The operator with nothing changing: CPU, API writes and reconciles over `seconds`, after `settle`
    seconds (past the background analysis' warm-up, so its declared interval is part of what is measured).
    `profile`: the operator's profile starts afresh with the window (SIGUSR1)."""
    time.sleep(settle)
    if profile:
        os.kill(pid, signal.SIGUSR1)
    requests_before, cpu_before, load_before = request_totals(url), cpu_seconds(pid), os.getloadavg()[0]
    reconciles_before = reconciles_total(metrics_url)
    time.sleep(seconds)
    cpu = cpu_seconds(pid) - cpu_before
    delta = request_totals(url) - requests_before
    writes = {f"{verb} {resource}{'/' + sub if sub else ''}": count
              for (verb, resource, sub), count in sorted(delta.items()) if verb not in READS}
    reconciles = round(reconciles_total(metrics_url) - reconciles_before)
    return {
        "idle_seconds": seconds,
        "idle_cpu_s": round(cpu, 3),
        "idle_cpu_ms_per_symbol_per_s": round(cpu * 1000 / n / seconds, 4),
        "idle_writes": sum(writes.values()),
        "idle_writes_by_kind": writes,
        "idle_requests": sum(delta.values()),
        "idle_reconciles": reconciles,
        # No reconcile at rest: no per-reconcile figure (not 0).
        "idle_cpu_ms_per_reconcile": round(cpu * 1000 / reconciles, 2) if reconciles else None,
        "idle_load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def sample_operator(pid: int, stop: threading.Event, out: dict[str, float]) -> None:
    """Peak RSS and CPU seconds of the operator, sampled while the benchmark runs."""
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            out["peak_rss"] = max(out.get("peak_rss", 0.0), float(process.memory_info().rss))
            times = process.cpu_times()
            out["cpu"] = times.user + times.system
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def run(n: int, timeout: float, rate: float, idle_seconds: float, settle: float,
        profile_at_rest: bool = False) -> dict[str, Any]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-bench-"))
    emulator = EmulatorProcess(workdir).start()
    metrics_port = free_port()
    operator = OperatorProcess(emulator.kubeconfig, workdir / "operator.log",
                               env={"TRADEOPS_METRICS_PORT": str(metrics_port)})
    try:
        kube = kube_for(emulator.kubeconfig)
        install_crd(kube)
        kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        operator.start()
        time.sleep(2.0)  # let the operator start its watches before the clock starts
        samples: dict[str, float] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=sample_operator, args=(operator.pid, stop, samples), daemon=True)
        sampler.start()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_for(lambda: reconciles_total(metrics_url) >= 0, 180, "the operator's metrics")  # started
        reconciles_before = reconciles_total(metrics_url)
        cpu_before, emulator_cpu_before = cpu_seconds(operator.pid), cpu_seconds(emulator.pid)
        load_before = os.getloadavg()[0]
        created_at: dict[str, float] = {}
        deployed_at: dict[str, float] = {}

        def watch_deployments() -> None:
            apps = kubernetes.client.AppsV1Api(kube.api_client)
            watch = kubernetes.watch.Watch()
            for event in watch.stream(apps.list_namespaced_deployment, NAMESPACE, timeout_seconds=int(timeout)):
                owner = event["object"].metadata.owner_references[0].name
                deployed_at.setdefault(owner, time.monotonic())
                if len(deployed_at) >= n or stop.is_set():
                    watch.stop()

        ready_at: dict[str, float] = {}
        all_ready = threading.Event()

        def watch_ready() -> None:
            """When each symbol first reports Ready, from a watch: polling a list of N objects ten times a
            second cost the emulator more CPU than the operator's own requests."""
            custom = kubernetes.client.CustomObjectsApi(kube.api_client)
            watch = kubernetes.watch.Watch()
            for event in watch.stream(custom.list_namespaced_custom_object, api.GROUP, api.VERSION, NAMESPACE,
                                      api.PLURAL, timeout_seconds=int(timeout)):
                obj = event["object"]
                if (obj.get("status") or {}).get("phase") == "Ready":
                    ready_at.setdefault(obj["metadata"]["name"], time.monotonic())
                if len(ready_at) >= n:
                    all_ready.set()
                    watch.stop()

        watcher = threading.Thread(target=watch_deployments, daemon=True)
        ready_watcher = threading.Thread(target=watch_ready, daemon=True)
        start = time.monotonic()
        watcher.start()
        ready_watcher.start()
        for i in range(n):
            name = f"sym{i:04d}"
            if rate > 0:  # paced creation: latency without a queue in front of the operator
                time.sleep(max(0.0, start + i / rate - time.monotonic()))
            created_at[name] = time.monotonic()
            kube.create(TRADING_SYMBOLS, NAMESPACE, {
                "apiVersion": TRADING_SYMBOLS.api_version, "kind": "TradingSymbol",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"symbol": f"S{i}", "market": "equity-options", "image": "ghcr.io/tradeops/runtime:1"},
            })

        if not all_ready.wait(timeout):
            raise StackError(f"{len(ready_at)} of {n} TradingSymbols Ready after {timeout:.0f}s")
        converge_s = max(ready_at.values()) - start  # the last one's first Ready
        stop.set()
        watcher.join(5)
        sampler.join(5)
        cpu = cpu_seconds(operator.pid) - cpu_before
        emulator_cpu = cpu_seconds(emulator.pid) - emulator_cpu_before
        reconciles = reconciles_total(metrics_url) - reconciles_before
        latencies = [(deployed_at[k] - created_at[k]) * 1000 for k in created_at if k in deployed_at]
        result: dict[str, Any] = {
            "n": n,
            "rate": rate,
            "converge_s": round(converge_s, 2),
            "create_to_deployment_p50_ms": round(statistics.median(latencies), 1),
            "create_to_deployment_p95_ms": round(percentile(latencies, 0.95), 1),
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_symbol": round(cpu * 1000 / n, 2),
            "reconciles_per_symbol": round(reconciles / n, 2),
            "peak_rss_mb": round(samples.get("peak_rss", 0.0) / 2**20, 1),
            # The API server's share (the emulator: its controllers and kubelet too) of the same machine.
            "emulator_cpu_s": round(emulator_cpu, 2),
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        profile = os.environ.get("TRADEOPS_PROFILE")
        if idle_seconds > 0:
            result.update(at_rest(emulator.url, metrics_url, operator.pid, n, idle_seconds, settle,
                                  profile=bool(profile) and profile_at_rest))
        if profile:  # written now: a slow shutdown may end in SIGKILL
            path = pathlib.Path(profile)
            path.unlink(missing_ok=True)
            os.kill(operator.pid, signal.SIGUSR2)
            sizes = [-1]

            def written() -> bool:  # the same non-zero size twice in a row: the dump is complete
                sizes.append(path.stat().st_size if path.exists() else -1)
                return sizes[-1] > 0 and sizes[-1] == sizes[-2]
            wait_for(written, 60, f"the operator's profile in {profile}", interval=0.5)
        return result
    finally:
        operator.stop()
        emulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="TradingSymbols to create (e.g. 1000)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="create this many per second (default 0: all at once, a burst)")
    parser.add_argument("--idle-seconds", type=float, default=30.0,
                        help="after convergence, measure this long at rest (0: skip)")
    parser.add_argument("--settle-seconds", type=float, default=25.0,
                        help="wait this long after convergence before the at-rest measurement (the default "
                             "background analysis warms up for 20 s)")
    parser.add_argument("--profile-at-rest", action="store_true",
                        help="with TRADEOPS_PROFILE: the operator's profile covers the at-rest window alone")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.n, args.timeout, args.rate, args.idle_seconds, args.settle_seconds, args.profile_at_rest)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"TradingSymbols:              {result['n']} ({'burst' if args.rate <= 0 else f'{args.rate:g}/s'})")
        print(f"all Ready after:             {result['converge_s']} s")
        print(f"create→Deployment p50 / p95: {result['create_to_deployment_p50_ms']} / "
              f"{result['create_to_deployment_p95_ms']} ms")
        print(f"operator CPU:                {result['cpu_s']} s ({result['cpu_ms_per_symbol']} ms per symbol, "
              f"{result['reconciles_per_symbol']} reconciles per symbol)")
        print(f"operator peak RSS:           {result['peak_rss_mb']} MB")
        print(f"emulator CPU:                {result['emulator_cpu_s']} s")
        print(f"load average (1 min):        {result['load_avg_1m'][0]} → {result['load_avg_1m'][1]}")
        if "idle_seconds" in result:
            per_reconcile = result["idle_cpu_ms_per_reconcile"]
            print(f"at rest for {result['idle_seconds']:g} s:")
            print(f"  CPU per symbol per second: {result['idle_cpu_ms_per_symbol_per_s']} ms")
            print(f"  reconciles:                {result['idle_reconciles']} "
                  f"({'no data' if per_reconcile is None else f'{per_reconcile} ms CPU each'})")
            print(f"  API writes:                {result['idle_writes']} {result['idle_writes_by_kind']}")
            print(f"  load average (1 min):      {result['idle_load_avg_1m'][0]} → {result['idle_load_avg_1m'][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
