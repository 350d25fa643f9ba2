"""Which shipped faults the operator catches, how fast the stable revision serves again, and whether healthy
revisions are left alone.

The whole local stack runs for real (devstack.stack): the synthetic feed, Prometheus scraping every second,
the emulated API whose kubelet runs every Pod as a trading-runtime process with a real kubelet's timing
(readiness probe every 5 s, restart back-off from 10 s), and the operator with the shipped default policies.

Each fault is shipped as a user ships it: a TradingSymbol spec change on a symbol whose revision 1 is stable.

| fault        | the spec change                                                     | caught by          |
|--------------|---------------------------------------------------------------------|--------------------|
| `latency`    | `faultInjection.extraLatencyMs: 120`                                 | analysis (SLO)     |
| `errors`     | `faultInjection.errorRate: 0.2`                                      | analysis (SLO)     |
| `accuracy`   | `faultInjection.accuracyDegradation: 1.0` (every signal flipped)     | shadow analysis    |
| `crash-loop` | `faultInjection.crashAfterSeconds: 2`                                | the rollout        |
| `never-ready`| `faultInjection.neverReady: true` (readiness never passes)           | the rollout        |
| `bad-image`  | an image name with a typo (the devstack answers ErrImagePull)        | the rollout        |
| `bad-config` | `parameters.queueCapacity` below `batchSize` (the runtime exits 2)   | the rollout        |

A wrong signal is only wrong on a market where the strategy has skill: on the synthetic market without
its seeded order-flow edge no strategy has any, and a flipped one is exactly as good. So the feed runs with
the edge on (`--edge`, 1.0: the strategy's calls are right ~85-90 % of the time at a few seconds' horizon),
and the `accuracy` fault and the healthy changes are shipped to a symbol that analyses its changes as shadow
runs (`rollout.shadow`, `analysisCount` `--shadow-count`) with a `--horizon` of a few seconds
(`strategy.horizonSeconds`): the shadow's calls are paired with the stable revision's on the same points
(`signal-calls-vs-stable`), and enough of them are scored within the run. The horizon is market time: the
synthetic market advances one clock by every symbol's step, so with the feed's three symbols it runs three
times as fast as wall time (a 3 s horizon is a second of wall time here). The other faults ship to a symbol
with the defaults (a surge rollout, a 60 s horizon).

Measured per run, from the kubelet's own record of container starts, readiness and exits (wall clock):
- start, "the fault is live": for the SLO faults, the first pod of the faulty revision Ready (it serves with
  the fault; for `accuracy` the shadow pod, which computes signals and trades nothing); for the others,
  which never serve, the moment the API server accepted the spec change (the rollout of the bad revision
  begins);
- end, "the stable revision serves again": the first moment, at or after the operator's rollback was seen in
  status (`abortedRevision` = the faulty revision, polled every 0.1 s), at which a pod of the stable
  revision is Ready and no container of the faulty revision runs.
A run is `detected` when the operator rolled the faulty revision back within `--fault-timeout`; undetected
runs have no time (they are not counted as fast). Excluded: creating the symbol and its first rollout.

Then `--healthy` symbols (shadow symbols like the `accuracy` one; `--healthy-rollout surge` for the
defaults) get a healthy change (`batchSize` 256→512, a config change) and soak for
`--soak-seconds` under background analysis, side by side: `false_rollbacks` counts RolledBack Events and
aborted revisions among them, `false_restarts` SelfHealingRestart Events; `stable_pods_saw_new_config`
counts revision-1 pods whose mounted `runtime.yaml` (the file the kubelet keeps in sync with the
ConfigMap, what the runtime reads) changed while they ran — a new revision's config leaking into stable
pods; `healthy_paired_measurements` the last `signal-calls-vs-stable` measurement of each healthy shadow run.
The JSON also names the code (`git describe`), the market (`feed_edge`, `shadow_horizon_s`,
`shadow_analysis_count`, `healthy_rollout`, `warmup_history_s`, `stable_seconds_before_shadow_fault`) and the
load average before and after.

The shadow symbols' pods warm up from the feed's history at start (`--warmup-seconds` of market time,
`warmup.historySeconds`; docs/analysis-and-rollback.md): their calls on the replayed history are paired with the
stable revision's live calls on the same points as retrospective pairs, which can fail a candidate but never pass
it. So the stable revision of a shadow symbol runs `--stable-seconds` before its fault is shipped (a stable
revision has been trading when a change comes; excluded from the timing). The defaults, 600 s of history (the
feed's whole ring) and 200 s of stable running (600 s of market time with the feed's three symbols), let the
candidate's replayed calls all find the stable revision's live calls on the same points; with less of either
there are fewer retrospective pairs, and a market that called little then leaves the verdict to live calls.
The warm-up delays the faulty pod's
readiness by its fetch and replay: that time is before "the fault is live" and shows in `phases_p50_s.shipped`.

    python benchmarks/fault_matrix.py --json [--runs N] [--soak-seconds S] [--healthy H] [--faults a,b]
        [--edge E] [--horizon S] [--shadow-count N] [--healthy-rollout shadow|surge] [--warmup-seconds S]
        [--stable-seconds S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.processes import StackError, kube_for, wait_for
from devstack.stack import AnalysisStack, start_analysis_stack
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import EVENTS, NAMESPACES, KubeApi
from trading_operator.naming import REVISION_LABEL

SLO_FAULTS = ("latency", "errors", "accuracy")
FAULTS: dict[str, dict[str, Any]] = {
    "latency": {"config": {"faultInjection": {"extraLatencyMs": 120}}},
    "errors": {"config": {"faultInjection": {"errorRate": 0.2}}},
    "accuracy": {"config": {"faultInjection": {"accuracyDegradation": 1.0}}},
    "crash-loop": {"config": {"faultInjection": {"crashAfterSeconds": 2}}},
    "never-ready": {"config": {"faultInjection": {"neverReady": True}}},
    "bad-image": {"image": "ghcr.io/tradeops/trading-runtme:1.0.0"},
    "bad-config": {"config": {"parameters": {"batchSize": 512, "queueCapacity": 200}}},
}
HEALTHY_CHANGE = {"config": {"parameters": {"batchSize": 512}}}
SHADOW_FAULTS = ("accuracy",)
"""Faults shipped to a shadow symbol (`shadow_spec`): a decision comparison needs stable running beside."""


def shadow_spec(horizon_seconds: int, count: int, warmup_seconds: float = 0.0) -> dict[str, Any]:
    """A symbol that analyses its changes as shadow runs of `count` measurements, scoring its calls over a
    horizon of a few seconds (the default 60 s scores one call a minute), its pods warming up from the last
    `warmup_seconds` of market-data history (0: cold)."""
    config: dict[str, Any] = {"strategy": {"horizonSeconds": horizon_seconds}}
    if warmup_seconds:
        config["warmup"] = {"historySeconds": warmup_seconds}
    return {"rollout": {"shadow": True, "analysisCount": count}, "config": config}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ts_body(name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "trading.tradeops.io/v1alpha1", "kind": "TradingSymbol", "metadata": {"name": name},
            "spec": {"symbol": "SPY", "market": "equity-options",
                     "image": "ghcr.io/tradeops/trading-runtime:1.0.0", "drain": {"timeoutSeconds": 0},
                     **(extra or {})}}


def status_of(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube.get(TRADING_SYMBOLS, namespace, name).get("status") or {})


def wait_status(kube: KubeApi, namespace: str, name: str, timeout: float, **expected: Any) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        current = status_of(kube, namespace, name)
        return current if all(current.get(k) == v for k, v in expected.items()) else None

    return wait_for(matches, timeout, f"{namespace}/{name} {expected}", interval=0.1)


def stable_symbol(kube: KubeApi, namespace: str, name: str = "spy", extra: dict[str, Any] | None = None) -> None:
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kube.create(TRADING_SYMBOLS, namespace, ts_body(name, extra))
    wait_status(kube, namespace, name, 180, phase="Ready", stableRevision=1, currentRevision=1)


def retire(kube: KubeApi, namespace: str, name: str = "spy") -> None:
    """Scale to zero (the kubelet stops the processes) and delete: finished runs do not load the machine."""
    kube.merge_patch(TRADING_SYMBOLS, namespace, name, {"spec": {"replicas": 0}})
    wait_status(kube, namespace, name, 60, replicas=0)
    kube.delete(TRADING_SYMBOLS, namespace, name)


Record = tuple[float, str, str, dict[str, str], str]


def serving_alone_since(records: list[Record], namespace: str, stable: str, faulty: str, after: float) -> float | None:
    """The first time at or after `after` at which a pod of `stable` is Ready and no container of `faulty` runs."""
    running: dict[str, bool] = {}
    ready: dict[str, bool] = {}
    revision: dict[str, str] = {}

    def holds() -> bool:
        return (any(ready.get(p) for p, r in revision.items() if r == stable)
                and not any(running.get(p) for p, r in revision.items() if r == faulty))

    checked = False
    for when, _, pod, labels, event in sorted((r for r in records if r[1] == namespace), key=lambda r: r[0]):
        if when > after and not checked:
            checked = True
            if holds():
                return after
        revision[pod] = labels.get(REVISION_LABEL, "")
        if event == "started":
            running[pod] = True
        elif event in ("exited", "stopped"):
            running[pod], ready[pod] = False, False
        elif event in ("ready", "unready"):
            ready[pod] = event == "ready"
        if checked and holds():
            return when
    return after if not checked and holds() else None


@dataclass
class FaultRun:
    detected: bool
    seconds: float | None
    reason: str
    phases: dict[str, float] = field(default_factory=dict)
    """Where the time went (seconds from the fault being live): `shipped` (the spec change, negative for the SLO
    faults: the faulty pod starts, and for `accuracy` scores calls, before it is Ready), `analysing` (the run of
    the faulty revision seen started), `verdict` (its verdict seen), `rolled_back` (status says stable runs),
    `serving`."""


def first_event(records: list[Record], namespace: str, revision: str, event: str, after: float) -> float | None:
    return next((t for t, ns, _, labels, e in sorted(records, key=lambda r: r[0])
                 if ns == namespace and labels.get(REVISION_LABEL) == revision and e == event and t >= after), None)


def one_fault(stack: AnalysisStack, kube: KubeApi, fault: str, index: int, timeout: float,
              shadow: dict[str, Any], stable_seconds: float = 0.0) -> FaultRun:
    namespace = f"fm-{fault}-{index}"
    stable_symbol(kube, namespace, extra=shadow if fault in SHADOW_FAULTS else None)
    if fault in SHADOW_FAULTS:  # a stable revision that has traded a while, as one has when a change comes
        time.sleep(stable_seconds)
    kube.merge_patch(TRADING_SYMBOLS, namespace, "spy", {"spec": FAULTS[fault]})
    shipped = time.time()
    deadline = time.monotonic() + timeout
    decided: float | None = None
    status: dict[str, Any] = {}
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        status = status_of(kube, namespace, "spy")
        run = status.get("analysis") or {}
        if run.get("revision") == 2:
            seen.setdefault("analysing", time.time())
            if run.get("phase") != "Running":
                seen.setdefault("verdict", time.time())
        if status.get("abortedRevision") == 2 and status.get("currentRevision") == 1:
            decided = time.time()
            break
        time.sleep(0.1)
    reason = str((status.get("lastRollback") or {}).get("reason") or status.get("phase") or "")
    if decided is None:
        retire(kube, namespace)
        return FaultRun(False, None, f"not rolled back in {timeout:.0f}s (phase {status.get('phase')})")
    records = stack.kubelet.history.records
    live = first_event(records, namespace, "2", "ready", shipped) if fault in SLO_FAULTS else shipped
    end = wait_for(lambda: serving_alone_since(list(records), namespace, "1", "2", decided), 120,
                   f"{namespace}: the stable revision serving alone", interval=0.2)
    retire(kube, namespace)
    if live is None:  # rolled back before a faulty pod ever served: nothing was live
        return FaultRun(True, 0.0, reason)
    # The old pods stop when the faulty revision is rolled out (its run starts then); the stable pods the
    # rollback starts become Ready before the faulty ones stop (surge).
    marks = {"shipped": shipped, **seen, "old_pods_stopped": first_event(records, namespace, "1", "stopped", shipped),
             "rolled_back": decided, "stable_started": first_event(records, namespace, "1", "started", decided),
             "stable_ready": first_event(records, namespace, "1", "ready", decided), "serving": end}
    phases = {k: round(v - live, 2) for k, v in marks.items() if v is not None}
    return FaultRun(True, max(0.0, end - live), reason, phases)


@dataclass
class ConfigWatch:
    """Hashes of the mounted runtime.yaml of every revision-1 pod, sampled while they run."""

    workdir: pathlib.Path
    namespaces: list[str]
    seen: dict[str, set[str]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        for namespace in self.namespaces:
            for pod_dir in (self.workdir / "pods").glob(f"{namespace}_*"):
                for config in pod_dir.glob("volumes/*/runtime.yaml"):
                    try:
                        digest = hashlib.sha256(config.read_bytes()).hexdigest()
                    except OSError:
                        continue  # the pod is being torn down
                    self.seen.setdefault(str(pod_dir), set()).add(digest)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()

    def leaked(self, records: list[Record]) -> int:
        """Revision-1 pods (by the labels the kubelet recorded) whose config changed while they ran."""
        stable_pods = {(ns, pod) for _, ns, pod, labels, _ in records
                       if ns in self.namespaces and labels.get(REVISION_LABEL) == "1"}
        return sum(1 for pod_dir, digests in self.seen.items()
                   if len(digests) > 1 and tuple(pathlib.Path(pod_dir).name.split("_")[:2]) in stable_pods)


def healthy_soak(stack: AnalysisStack, kube: KubeApi, count: int, soak_seconds: float,
                 shadow: dict[str, Any] | None) -> dict[str, Any]:
    namespaces = [f"fm-healthy-{i}" for i in range(count)]
    for namespace in namespaces:
        stable_symbol(kube, namespace, extra=shadow)
    watch = ConfigWatch(stack.workdir, namespaces)
    watch.sample()
    sampler = threading.Thread(target=watch.run, daemon=True)
    sampler.start()
    try:
        for namespace in namespaces:
            kube.merge_patch(TRADING_SYMBOLS, namespace, "spy", {"spec": HEALTHY_CHANGE})
        # A shadow run takes its `analysisCount` measurements, one a second at best.
        decide_s = 240 + (int(shadow["rollout"]["analysisCount"]) * 2 if shadow else 0)
        try:
            wait_for(lambda: all(_concluded(kube, ns) for ns in namespaces), decide_s,
                     "the healthy revisions decided", interval=0.5)
        except StackError:  # say where each one stood: held (Paused), still measuring, or never rolled out
            for namespace in namespaces:
                status = status_of(kube, namespace, "spy")
                run = status.get("analysis") or {}
                print(f"{namespace}: phase {status.get('phase')}, analysis {run.get('phase')} "
                      f"({len(run.get('measurements') or [])} kept): {run.get('message')}", file=sys.stderr)
            raise
        leaked = watch.leaked(list(stack.kubelet.history.records))
        time.sleep(soak_seconds)
    finally:
        watch.stop.set()
        sampler.join(5)
    false_rollbacks = false_restarts = 0
    verdicts = []
    for namespace in namespaces:
        reasons = [e.get("reason") for e in kube.list_objects(EVENTS, namespace)]
        status = status_of(kube, namespace, "spy")
        false_rollbacks += reasons.count("RolledBack") + (1 if status.get("abortedRevision") and
                                                          "RolledBack" not in reasons else 0)
        false_restarts += reasons.count("SelfHealingRestart")
        verdicts.append(_paired_verdict(status))
        retire(kube, namespace)
    return {"false_rollbacks": false_rollbacks, "false_restarts": false_restarts,
            "stable_pods_saw_new_config": leaked, "healthy_paired_measurements": verdicts}


def _paired_verdict(status: dict[str, Any]) -> str:
    """The last paired measurement of the healthy revision's analysis (what the new metric said of it)."""
    kept = [m for m in (status.get("analysis") or {}).get("measurements") or []
            if m.get("metric") == "signal-calls-vs-stable"]
    return f"{kept[-1].get('phase')}: {kept[-1].get('message')}" if kept else "not measured"


def _concluded(kube: KubeApi, namespace: str) -> bool:
    status = status_of(kube, namespace, "spy")
    return bool(status.get("stableRevision") == 2 or status.get("abortedRevision") == 2)


def _median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each phase over the runs that reached it."""
    names = sorted({k for phases in runs for k in phases}, key=lambda k: min(p.get(k, 1e9) for p in runs))
    return {k: round(statistics.median([p[k] for p in runs if k in p]), 2) for k in names}


def code_version() -> str:
    root = pathlib.Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=False)
    except FileNotFoundError:  # no git (a tree copied without it): the figures still print
        return "unknown"
    return done.stdout.strip() or "unknown"


@dataclass(frozen=True)
class Market:
    """The feed's seeded edge and the shadow symbols' horizon and run length."""

    edge: float
    horizon_seconds: int
    shadow_count: int
    healthy_rollout: str
    warmup_seconds: float = 0.0
    stable_seconds: float = 0.0

    def shadow(self) -> dict[str, Any]:
        return shadow_spec(self.horizon_seconds, self.shadow_count, self.warmup_seconds)


def run(faults: list[str], runs: int, healthy: int, soak_seconds: float, fault_timeout: float,
        progress: Callable[[str], None], market: Market) -> dict[str, Any]:
    code = code_version()  # what was measured, before anything can change the tree
    load_before = os.getloadavg()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-faults-"))
    stack = start_analysis_stack(workdir, feed_edge=market.edge)
    try:
        kube = kube_for(stack.kubeconfig)
        rows = []
        for fault in faults:
            results = []
            for index in range(runs):
                result = one_fault(stack, kube, fault, index, fault_timeout, market.shadow(), market.stable_seconds)
                progress(f"{fault} run {index + 1}/{runs}: " + (f"{result.seconds:.1f} s {result.phases} "
                                                                 f"({result.reason})"
                                                                 if result.detected else result.reason))
                results.append(result)
            times = [r.seconds for r in results if r.seconds is not None]
            rows.append({"fault": fault, "runs": runs, "detected": sum(r.detected for r in results),
                         "rollback_p50_s": round(statistics.median(times), 2) if times else None,
                         "rollback_p95_s": round(percentile(times, 0.95), 2) if times else None,
                         "reasons": sorted({r.reason for r in results}),
                         "phases_p50_s": _median_phases([r.phases for r in results])})
        soak = healthy_soak(stack, kube, healthy, soak_seconds,
                            market.shadow() if market.healthy_rollout == "shadow" else None) if healthy else \
            {"false_rollbacks": 0, "false_restarts": 0, "stable_pods_saw_new_config": 0}
        progress(f"healthy soak: {soak}")
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"code": code, "faults": rows, "healthy_runs": healthy, "soak_s": soak_seconds, **soak,
            "fault_timeout_s": fault_timeout, "feed_edge": market.edge, "shadow_horizon_s": market.horizon_seconds,
            "shadow_analysis_count": market.shadow_count, "healthy_rollout": market.healthy_rollout,
            "warmup_history_s": market.warmup_seconds, "stable_seconds_before_shadow_fault": market.stable_seconds,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per fault")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated subset of {', '.join(FAULTS)}")
    parser.add_argument("--healthy", type=int, default=2, help="healthy revisions soaked side by side")
    parser.add_argument("--soak-seconds", type=float, default=600.0, help="how long each healthy revision soaks")
    parser.add_argument("--fault-timeout", type=float, default=240.0,
                        help="seconds a faulty revision has to be rolled back before the run counts as undetected")
    parser.add_argument("--edge", type=float, default=1.0,
                        help="the synthetic market's seeded order-flow edge (0: none, where no strategy has skill)")
    parser.add_argument("--horizon", type=int, default=3,
                        help="strategy.horizonSeconds of the shadow symbols (accuracy, healthy)")
    parser.add_argument("--shadow-count", type=int, default=300,
                        help="analysisCount of the shadow symbols' runs (measurements, about one a second)")
    parser.add_argument("--healthy-rollout", choices=("shadow", "surge"), default="shadow",
                        help="how the healthy changes are rolled out: as shadow runs (the paired comparison "
                             "judges them) or by surge with the defaults (the config-leak check replaces pods)")
    parser.add_argument("--warmup-seconds", type=float, default=600.0,
                        help="warmup.historySeconds of the shadow symbols: market seconds of history their pods "
                             "replay at start (0: cold starts, as before the warm-up existed)")
    parser.add_argument("--stable-seconds", type=float, default=200.0,
                        help="wall seconds the stable revision of a shadow symbol runs before its fault is shipped "
                             "(excluded from the timing: a stable revision has been running when a change comes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown or args.runs < 1 or args.healthy < 0 or args.soak_seconds < 0:
        parser.error(f"unknown faults {unknown}" if unknown else "--runs >= 1, --healthy >= 0, --soak-seconds >= 0")
    result = run(faults, args.runs, args.healthy, args.soak_seconds, args.fault_timeout,
                 lambda line: print(line, file=sys.stderr, flush=True),
                 Market(args.edge, args.horizon, args.shadow_count, args.healthy_rollout, args.warmup_seconds,
                        args.stable_seconds))
    if args.json:
        print(json.dumps(result))
        return 0
    for row in result["faults"]:
        print(f"{row['fault']:12} detected {row['detected']}/{row['runs']}  p50 {row['rollback_p50_s']} s  "
              f"p95 {row['rollback_p95_s']} s  ({'; '.join(row['reasons'])})")
    print(f"healthy: {result['healthy_runs']} soaked {result['soak_s']:.0f} s: {result['false_rollbacks']} false "
          f"rollbacks, {result['false_restarts']} false restarts, {result['stable_pods_saw_new_config']} stable pods "
          f"saw the new config (code {result['code']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
