"""How long the common opsctl verbs take, as a person feels them, against the devstack's emulated API.

The emulator runs as its own process (`python -m devstack.emulator`, real HTTP) holding N TradingSymbols,
each with 3 ControllerRevisions, 5 Events and an analysis run in its status. Each verb is the real console
script, started on a fixed schedule (one every --interval seconds); its latency runs from the scheduled
start to the process's exit, so a run that starts late because the one before overran is counted late
(no coordinated omission). Printed: p50/p95 per verb, kubectl's `get ts` against the same server for
comparison, the bare interpreter's start, and `import_ms`: the time `opsctl get` spends importing modules
(`python -X importtime`, which adds some overhead of its own). Each verb's CPU time (user + system) is
printed too: it moves less than wall time when other processes load the machine (the 1-minute load average
is printed with the figures).

Excludes: a shell's own start, the terminal's drawing, network distance (the server is local), and the
load other processes put on this 2-core machine (read ratios, not absolutes).

    python benchmarks/opsctl_latency.py [--symbols 12] [--runs 15] [--interval 2.0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from devstack.processes import EmulatorProcess, install_crd, kube_for
from trading_operator import api, builders
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import CONTROLLER_REVISIONS, EVENTS, NAMESPACES, KubeApi
from trading_operator.revisions import Revision, template_hash, template_of

NAMESPACE = "bench"
OPSCTL = str(pathlib.Path(sys.executable).with_name("opsctl"))
VERBS = {
    "get": ["get"],
    "get_wide_all": ["get", "-A", "-o", "wide"],
    "describe": ["describe", "sym-00"],
    "history": ["history", "sym-00"],
    "analysis": ["analysis", "sym-00"],
    "version_client": ["version", "--client"],
}


STATUS = {
    "phase": "Progressing", "currentRevision": 3, "stableRevision": 2, "updateRevision": 3, "readyReplicas": 2,
    "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "2/2 pods ready",
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    "analysis": {"revision": 3, "kind": "Rollout", "phase": "Running", "startedAt": "2026-01-01T00:00:00Z",
                 "tallies": [{"metric": "tick-to-signal-latency", "successful": 2}],
                 "measurements": [{"time": "2026-01-01T00:00:06Z", "metric": "tick-to-signal-latency",
                                   "phase": "Successful", "value": 0.0013, "message": "0.0013 s below 0.05 s"}]},
}
"""What the operator leaves in each symbol's status mid-rollout (describe and analysis show all of it)."""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def seed(kube: KubeApi, count: int) -> None:
    """`count` TradingSymbols as the operator leaves them: revisions, Events and an analysis run."""
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for index in range(count):
        name = f"sym-{index:02d}"
        spec = {"symbol": f"S{index:02d}", "market": "equity-options",
                "image": "ghcr.io/tradeops/trading-runtime:0.1.0", "replicas": 2}
        ts = kube.create(TRADING_SYMBOLS, NAMESPACE, {"apiVersion": api.API_VERSION, "kind": api.KIND,
                                                      "metadata": {"name": name}, "spec": spec})
        owner = builders.Owner(name, NAMESPACE, ts["metadata"]["uid"])
        for number in (1, 2, 3):
            raw = {**spec, "config": {"parameters": {"batchSize": 128 * number}}}
            model = api.TradingSymbolSpec.model_validate(raw)
            template = template_of(model)
            revision = Revision(number, f"{name}-{number}", template_hash(template), template)
            kube.create(CONTROLLER_REVISIONS, NAMESPACE, builders.build_revision(owner, model, revision, number))
        kube.patch_status(TRADING_SYMBOLS, NAMESPACE, name, STATUS)
        for event in range(5):
            kube.create(EVENTS, NAMESPACE, {
                "apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{name}.{event}"},
                "involvedObject": {"apiVersion": api.API_VERSION, "kind": api.KIND, "name": name,
                                   "namespace": NAMESPACE, "uid": ts["metadata"]["uid"]},
                "reason": "RevisionCreated", "message": f"Revision {event} created", "type": "Normal",
                "lastTimestamp": f"2026-01-01T00:0{event}:00Z"})


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str], runs: int, interval: float) -> tuple[list[float], list[float]]:
    """Milliseconds from each run's scheduled start to the process's exit, and the CPU milliseconds (user +
    system) each run used: less sensitive than wall time to what else the machine is doing."""
    latencies, cpu = [], []
    start = time.monotonic() + 0.1
    for index in range(runs):
        scheduled = start + index * interval
        time.sleep(max(0.0, scheduled - time.monotonic()))
        before = cpu_seconds()
        done = subprocess.run(command, capture_output=True, env=env, check=False)
        latencies.append((time.monotonic() - scheduled) * 1000)
        cpu.append((cpu_seconds() - before) * 1000)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-400:]}")
    return latencies, cpu


def summarise(result: dict[str, Any], name: str, measured: tuple[list[float], list[float]]) -> None:
    latencies, cpu = measured
    result[f"{name}_ms_p50"] = round(statistics.median(latencies), 1)
    result[f"{name}_ms_p95"] = round(percentile(latencies, 0.95), 1)
    result[f"{name}_cpu_ms_p50"] = round(statistics.median(cpu), 1)


def import_ms(env: dict[str, str], runs: int) -> float:
    """Median total import time of `opsctl get` (the top-level entries of -X importtime)."""
    totals = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "opsctl", "get"], capture_output=True,
                              text=True, env=env, check=True)
        top = [line for line in done.stderr.splitlines()
               if line.startswith("import time:") and line.split("|")[2].startswith(" ") and
               not line.split("|")[2].startswith("  ")]
        totals.append(sum(int(line.split("|")[1]) for line in top if line.split("|")[1].strip().isdigit()) / 1000)
    return statistics.median(totals)


def run(symbols: int, runs: int, interval: float) -> dict[str, Any]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-opsctl-bench-"))
    emulator = EmulatorProcess(workdir).start()
    try:
        kube = kube_for(emulator.kubeconfig)
        install_crd(kube)
        seed(kube, symbols)
        env = {"KUBECONFIG": str(emulator.kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(workdir)}
        result: dict[str, Any] = {"symbols": symbols, "runs": runs, "interval_s": interval}
        for verb, args in VERBS.items():
            summarise(result, verb, timed([OPSCTL, "-n", NAMESPACE, *args], env, runs, interval))
        kubectl = shutil.which("kubectl")
        if kubectl is not None:
            summarise(result, "kubectl_get", timed([kubectl, "-n", NAMESPACE, "get", "ts"], env, runs, interval))
        summarise(result, "python", timed([sys.executable, "-c", "pass"], env, runs, interval / 4))
        result["load_average_1m"] = round(os.getloadavg()[0], 1)
        result["import_ms"] = round(import_ms({**env, "KUBECONFIG": str(emulator.kubeconfig)}, max(3, runs // 3)), 1)
        return result
    finally:
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=12)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between scheduled starts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.symbols, args.runs, args.interval)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"opsctl against the emulated API, {args.symbols} symbols, {args.runs} runs each, one every "
          f"{args.interval:g}s (ms from the scheduled start to exit)")
    for key in [k for k in result if k.endswith("_ms_p50") and not k.endswith("_cpu_ms_p50")]:
        name = key.removesuffix("_ms_p50")
        print(f"  {name:<16} p50 {result[key]:7.1f}   p95 {result[f'{name}_ms_p95']:7.1f}   "
              f"CPU p50 {result[f'{name}_cpu_ms_p50']:7.1f}")
    print(f"  imports of `opsctl get`: {result['import_ms']:.1f} ms (python -X importtime); load average "
          f"{result['load_average_1m']} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
