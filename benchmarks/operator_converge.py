"""How fast the operator converges N TradingSymbols on the emulated API (real processes, real HTTP).

Prints: time until every symbol is Ready, create→Deployment latency p50/p95, the operator's CPU
seconds and peak RSS. `--json` prints one JSON object instead.

    python benchmarks/operator_converge.py [--n 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

import kubernetes
import kubernetes.watch
import psutil

from devstack.processes import EmulatorProcess, OperatorProcess, install_crd, kube_for, wait_for
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import NAMESPACES

NAMESPACE = "bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


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


def run(n: int, timeout: float, rate: float) -> dict[str, Any]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-bench-"))
    emulator = EmulatorProcess(workdir).start()
    operator = OperatorProcess(emulator.kubeconfig, workdir / "operator.log")
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
        cpu_before = psutil.Process(operator.pid).cpu_times()
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

        watcher = threading.Thread(target=watch_deployments, daemon=True)
        start = time.monotonic()
        watcher.start()
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

        def all_ready() -> bool:
            items = kube.list_objects(TRADING_SYMBOLS, NAMESPACE)
            return sum((i.get("status") or {}).get("phase") == "Ready" for i in items) == n

        wait_for(all_ready, timeout, f"{n} TradingSymbols Ready", interval=0.1)
        converge_s = time.monotonic() - start
        stop.set()
        watcher.join(5)
        sampler.join(5)
        cpu_after = psutil.Process(operator.pid).cpu_times()
        latencies = [(deployed_at[k] - created_at[k]) * 1000 for k in created_at if k in deployed_at]
        return {
            "n": n,
            "converge_s": round(converge_s, 2),
            "create_to_deployment_p50_ms": round(statistics.median(latencies), 1),
            "create_to_deployment_p95_ms": round(percentile(latencies, 0.95), 1),
            "cpu_s": round((cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system), 2),
            "peak_rss_mb": round(samples.get("peak_rss", 0.0) / 2**20, 1),
        }
    finally:
        operator.stop()
        emulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="TradingSymbols to create (e.g. 1000)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="create this many per second (default 0: all at once, a burst)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.n, args.timeout, args.rate)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"TradingSymbols:              {result['n']} ({'burst' if args.rate <= 0 else f'{args.rate:g}/s'})")
        print(f"all Ready after:             {result['converge_s']} s")
        print(f"create→Deployment p50 / p95: {result['create_to_deployment_p50_ms']} / "
              f"{result['create_to_deployment_p95_ms']} ms")
        print(f"operator CPU:                {result['cpu_s']} s")
        print(f"operator peak RSS:           {result['peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
