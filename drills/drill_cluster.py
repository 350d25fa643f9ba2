"""Drills against the running system rather than its backups.

pod-kill: delete a symbol's trading pods through the Kubernetes API; RTO is the time until replacement
pods are Ready and their metrics show market data flowing again (Prometheus).

prometheus-loss: take Prometheus away (the scenario's stop command) for a while, and check that the
operator neither rolls back nor "heals" anything because metrics are missing; RTO is the time from
Prometheus's return until the operator's background analysis gets answers again: the drill asks for an
analysis (the annotation a firing SLO alert sets) and the operator removes it once Prometheus answered one
(a healthy measurement writes no status to watch).

Both use the cluster the kubeconfig names (or the in-cluster service account); in tests, the emulated API
with the harness that runs a runtime process per pod."""

from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from drills.context import DrillContext, Outcome
from drills.errors import DrillsError, Exit
from drills.report import Check

GROUP, VERSION, PLURAL = "trading.tradeops.io", "v1alpha1", "tradingsymbols"
ANALYSIS_REQUESTED = f"{GROUP}/analysis-requested"
"""The operator's request for a background analysis now (trading_operator.naming.ANALYSIS_REQUESTED_ANNOTATION)."""
RUNTIME_SELECTOR = "app.kubernetes.io/name=trading-runtime"
T = TypeVar("T")


def _api(kubeconfig: str | None) -> k8s.ApiClient:
    try:
        if kubeconfig:
            api: k8s.ApiClient = k8s_config.new_client_from_config(config_file=kubeconfig)
            return api
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except (k8s_config.ConfigException, OSError) as error:
        raise DrillsError(Exit.USAGE, f"no cluster to drill against (KUBECONFIG or in-cluster): {error}") from None


def _wait(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise DrillsError(Exit.DRILL_FAILED, f"timed out after {timeout:.0f}s waiting for {what}")


def _prometheus(url: str | None, promql: str) -> list[dict[str, Any]]:
    if not url:
        raise DrillsError(Exit.USAGE, "no Prometheus: set TRADEOPS_PROMETHEUS_URL")
    query = urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query?{query}", timeout=5) as response:
            result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
            return result
    except OSError:
        return []


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _items(api: k8s.ApiClient, listed: object) -> list[dict[str, Any]]:
    """A typed-client list as plain API dicts (camelCase, as kubectl shows them)."""
    data: dict[str, Any] = api.sanitize_for_serialization(listed)
    return list(data.get("items") or [])


def pod_kill(ctx: DrillContext) -> Outcome:
    namespace = str(ctx.params.get("namespace") or "")
    if not namespace:
        raise DrillsError(Exit.USAGE, "pod-kill needs --param namespace=NS (and optionally selector=...)")
    selector = str(ctx.params.get("selector", RUNTIME_SELECTOR))
    timeout = float(ctx.params.get("timeoutSeconds", 120))
    with _api(ctx.settings.kubeconfig) as api:
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)

        def pods() -> list[dict[str, Any]]:
            return _items(api, core.list_namespaced_pod(namespace, label_selector=selector))

        def deployments() -> list[dict[str, Any]]:
            return _items(api, apps.list_namespaced_deployment(namespace, label_selector=selector))

        victims: list[str] = [p["metadata"]["name"] for p in pods()]
        if not victims:
            raise DrillsError(Exit.NOT_FOUND, f"no pods match {selector} in namespace {namespace}")
        wanted = {d["metadata"]["name"]: int(d["spec"].get("replicas") or 0) for d in deployments()}
        started = time.monotonic()
        for name in victims:
            try:
                core.delete_namespaced_pod(name, namespace)
            except ApiException as error:
                if error.status != 404:
                    raise
        killed = set(victims)

        def replaced() -> list[str] | None:
            deployments_ready = all(int((d.get("status") or {}).get("readyReplicas") or 0)
                                    >= wanted.get(d["metadata"]["name"], 0) for d in deployments())
            fresh = [str(p["metadata"]["name"]) for p in pods() if p["metadata"]["name"] not in killed and _ready(p)]
            return fresh if deployments_ready and len(fresh) >= sum(wanted.values()) else None

        fresh = _wait(replaced, timeout, f"replacement pods Ready in {namespace}")
        ready_s = time.monotonic() - started
        names = "|".join(fresh)
        promql = f'sum by (pod) (increase(tradeops_ticks_total{{namespace="{namespace}", pod=~"{names}"}}[15s]))'

        def flowing() -> bool:
            rows = _prometheus(ctx.settings.prometheus_url, promql)
            moving = {r["metric"].get("pod") for r in rows if float(r["value"][1]) > 0}
            return set(fresh) <= moving

        _wait(flowing, max(timeout - ready_s, 1), "market data from every replacement pod in Prometheus", 0.5)
        rto = time.monotonic() - started
    checks = [
        Check(name="pods deleted", ok=True, detail=f"{len(victims)}: {', '.join(sorted(victims))}"),
        Check(name="replacements Ready", ok=True, detail=f"{', '.join(sorted(fresh))} after {ready_s:.1f}s"),
        Check(name="data flowing", ok=True, detail=f"ticks increasing for every replacement after {rto:.1f}s"),
    ]
    return Outcome(rto_seconds=rto, checks=checks,
                   facts={"namespace": namespace, "pods_killed": len(victims), "ready_seconds": round(ready_s, 2)})


def _run(command: str, what: str) -> None:
    argv = shlex.split(command)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise DrillsError(Exit.USAGE, f"{what} command not found: {argv[0]!r} (install it, or give a full path)") \
            from None
    if result.returncode != 0:
        raise DrillsError(Exit.DRILL_FAILED, f"{what} command failed ({result.returncode}): {result.stderr.strip()}")


def _status(custom: k8s.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)  # type: ignore[assignment]
    return dict(obj.get("status") or {})


def interventions(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What the operator did between two statuses that a loss of metrics must not cause (pure)."""
    found = []
    if after.get("currentRevision") != before.get("currentRevision"):
        found.append(f"running revision changed {before.get('currentRevision')} -> {after.get('currentRevision')}")
    if after.get("lastRollback") != before.get("lastRollback"):
        found.append(f"rolled back: {(after.get('lastRollback') or {}).get('reason')}")
    if after.get("abortedRevision") and after.get("abortedRevision") != before.get("abortedRevision"):
        found.append(f"revision {after['abortedRevision']} aborted")
    actions_before = len((before.get("background") or {}).get("actions") or [])
    actions_after = len((after.get("background") or {}).get("actions") or [])
    if actions_after > actions_before:
        found.append("a self-healing restart")
    return found


def prometheus_loss(ctx: DrillContext) -> Outcome:
    namespace, name = str(ctx.params.get("namespace") or ""), str(ctx.params.get("name") or "")
    stop, start = str(ctx.params.get("stopCommand") or ""), str(ctx.params.get("startCommand") or "")
    if not (namespace and name and stop and start):
        raise DrillsError(Exit.USAGE, "prometheus-loss needs --param namespace=NS name=SYMBOL stopCommand=... "
                                      "startCommand=... (e.g. kubectl scale of the Prometheus StatefulSet)")
    outage = float(ctx.params.get("outageSeconds", 30))
    timeout = float(ctx.params.get("timeoutSeconds", 120))
    with _api(ctx.settings.kubeconfig) as api:
        custom = k8s.CustomObjectsApi(api)
        before = _status(custom, namespace, name)
        _run(stop, "stop")
        seen: list[str] = []
        try:
            deadline = time.monotonic() + outage
            while time.monotonic() < deadline:
                seen += [s for s in interventions(before, _status(custom, namespace, name)) if s not in seen]
                time.sleep(1.0)
        finally:
            _run(start, "start")
        back = time.monotonic()
        requested = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                              {"metadata": {"annotations": {ANALYSIS_REQUESTED: requested}}})

        def answered() -> bool:
            obj: dict[str, Any] = custom.get_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, namespace, PLURAL, name)
            return ANALYSIS_REQUESTED not in ((obj.get("metadata") or {}).get("annotations") or {})

        _wait(answered, timeout, f"{namespace}/{name}'s background analysis answered by Prometheus again", 0.5)
        rto = time.monotonic() - back
        after = _status(custom, namespace, name)
    seen += [s for s in interventions(before, after) if s not in seen]
    checks = [
        Check(name="no rollback or self-healing on missing metrics", ok=not seen,
              detail="; ".join(seen) or f"revision {after.get('currentRevision')} kept through {outage:g}s"),
        Check(name="analysis resumed", ok=True, detail=f"answered {rto:.1f}s after Prometheus returned"),
    ]
    return Outcome(rto_seconds=rto, checks=checks,
                   facts={"namespace": namespace, "name": name, "outage_seconds": outage,
                          "revision": after.get("currentRevision")})
