"""How fast a breaching revision is rolled back, and whether healthy revisions are ever rolled back.

The whole local stack runs for real: the synthetic feed, Prometheus scraping every second, the emulated
API whose kubelet runs every pod as a trading-runtime process (with a real kubelet's timing: the
readiness probe every 5 s as the operator's Deployment asks), the operator (default policies: analysis
every 2 s, failure limit 1).

Each of N runs: a TradingSymbol becomes stable on revision 1, then its spec injects 120 ms of latency
(revision 2). Measured: from the first breaching sample of revision 2 in Prometheus (the first scrape
whose histogram holds a tick slower than the 50 ms threshold) to a pod of revision 1 Ready again (its
readiness probe passed: it serves). Excluded: the time before the breach shows in Prometheus (the scrape
interval), and the old pods' termination after the new one is Ready. Then M healthy spec changes: any
rollback among them is a false rollback.

    python benchmarks/rollback_time.py [--runs 5] [--healthy 5] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

from prometheus_api_client import PrometheusConnect

from devstack.processes import kube_for, wait_for
from devstack.stack import AnalysisStack, start_analysis_stack
from policies.loader import default_policies
from trading_operator.executor import TRADING_SYMBOLS as _TS
from trading_operator.kube import NAMESPACES, KubeApi
from trading_operator.naming import REVISION_LABEL

THRESHOLD_BUCKET = "0.05"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ts_body(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "trading.tradeops.io/v1alpha1", "kind": "TradingSymbol",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"symbol": "SPY", "market": "equity-options",
                     "image": "ghcr.io/tradeops/trading-runtime:1.0.0", "drain": {"timeoutSeconds": 0}}}


def retire(kube: KubeApi, namespace: str, name: str) -> None:
    """Scale to zero (the harness stops the process) and delete: finished runs do not load the machine."""
    kube.merge_patch(_TS, namespace, name, {"spec": {"replicas": 0}})
    wait_status(kube, namespace, name, 30, replicas=0)
    kube.delete(_TS, namespace, name)


def status_of(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube.get(_TS, namespace, name).get("status") or {})


def wait_status(kube: KubeApi, namespace: str, name: str, timeout: float, **expected: Any) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        current = status_of(kube, namespace, name)
        return current if all(current.get(k) == v for k, v in expected.items()) else None

    return wait_for(matches, timeout, f"{namespace}/{name} {expected}", interval=0.1)


def first_breach(prometheus: PrometheusConnect, namespace: str, since: float, until: float) -> float:
    """Time of the first sample of revision 2 with a tick above the threshold."""
    selector = f'namespace="{namespace}", revision="2"'
    query = (f"sum(tradeops_tick_to_signal_seconds_count{{{selector}}}) - "
             f'sum(tradeops_tick_to_signal_seconds_bucket{{{selector}, le="{THRESHOLD_BUCKET}"}}) > 0')
    result = prometheus.custom_query_range(query, start_time=_dt(since), end_time=_dt(until), step="1s")
    if not result:
        raise RuntimeError(f"no breaching sample of {namespace} revision 2 in Prometheus")
    return min(float(t) for t, _ in result[0]["values"])


def _dt(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def one_rollback(stack: AnalysisStack, kube: KubeApi, prometheus: PrometheusConnect, index: int) -> float:
    namespace, name = f"rb-{index}", "spy"
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kube.create(_TS, namespace, ts_body(namespace, name))
    wait_status(kube, namespace, name, 90, phase="Ready", stableRevision=1, currentRevision=1)
    started = time.time()
    kube.merge_patch(_TS, namespace, name, {"spec": {"config": {"faultInjection": {"extraLatencyMs": 120}}}})
    wait_status(kube, namespace, name, 120, abortedRevision=2, currentRevision=1)
    restored = wait_for(lambda: next((t for t, ns, _, labels, event in stack.kubelet.history.records
                                      if ns == namespace and labels.get(REVISION_LABEL) == "1"
                                      and event == "ready" and t > started), None), 60,
                        "revision 1 serving again")
    time.sleep(2)  # let Prometheus finish the last scrapes of revision 2
    breach = first_breach(prometheus, namespace, started - 5, time.time())
    retire(kube, namespace, name)
    return restored - breach


def one_healthy(kube: KubeApi, index: int) -> bool:
    """A healthy spec change; True when it was (falsely) rolled back."""
    namespace, name = f"ok-{index}", "spy"
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kube.create(_TS, namespace, ts_body(namespace, name))
    wait_status(kube, namespace, name, 90, phase="Ready", stableRevision=1)
    change = {"spec": {"config": {"strategy": {"entryScore": 0.6 + 0.01 * (index + 1)}}}}
    kube.merge_patch(_TS, namespace, name, change)

    def decided() -> dict[str, Any] | None:
        current = status_of(kube, namespace, name)
        run = current.get("analysis") or {}
        return current if run.get("revision") == 2 and run.get("phase") not in (None, "Running") else None

    final = wait_for(decided, 120, f"the analysis of {namespace}/{name} revision 2", interval=0.2)
    retire(kube, namespace, name)
    return final.get("abortedRevision") == 2 or final["analysis"]["phase"] == "Failed"


def run(runs: int, healthy: int) -> dict[str, Any]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-rollback-"))
    stack = start_analysis_stack(workdir)
    try:
        kube = kube_for(stack.kubeconfig)
        prometheus = PrometheusConnect(url=stack.prometheus.url, disable_ssl=True)
        times = [one_rollback(stack, kube, prometheus, i) for i in range(runs)]
        false_rollbacks = sum(one_healthy(kube, i) for i in range(healthy))
        prometheus._session.close()
    finally:
        stack.stop()
    return {
        "runs": runs,
        "rollback_p50_s": round(statistics.median(times), 2) if times else None,
        "rollback_p95_s": round(percentile(times, 0.95), 2) if times else None,
        "rollback_max_s": round(max(times), 2) if times else None,
        "healthy_runs": healthy,
        "false_rollbacks": false_rollbacks,
        "interval_s": default_policies().analysis["default"].interval_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--healthy", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.runs, args.healthy)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"rollback after the first breaching sample, {result['runs']} runs: p50 {result['rollback_p50_s']} s, "
              f"p95 {result['rollback_p95_s']} s, max {result['rollback_max_s']} s "
              f"(analysis interval {result['interval_s']} s)")
        print(f"false rollbacks: {result['false_rollbacks']} of {result['healthy_runs']} healthy revisions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
