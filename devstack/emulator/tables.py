"""Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks for: printer columns of CRDs,
NAME and AGE for everything else."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from devstack.emulator.registry import ResourceType
from devstack.emulator.selectors import selector_string
from trading_operator.timestamps import FORMAT, age

_FILTER = re.compile(r'^\[\?\(@\.(\w+)==["\']?([^"\')]+)["\']?\)\]$')


def json_path(obj: Any, path: str) -> Any:
    """Evaluate the simple JSONPaths printer columns use: `.a.b`, `.a[0].b`, `.a[?(@.type=="Ready")].b`."""
    tokens = re.findall(r"\.[A-Za-z0-9_-]+|\[[^\]]*\]", path)
    value = obj
    for token in tokens:
        if value is None:
            return None
        if token.startswith("."):
            value = value.get(token[1:]) if isinstance(value, dict) else None
        elif (match := _FILTER.match(token)) is not None and isinstance(value, list):
            key, wanted = match.groups()
            value = next((item for item in value if isinstance(item, dict) and str(item.get(key)) == wanted), None)
        elif token[1:-1].isdigit() and isinstance(value, list):
            index = int(token[1:-1])
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def _deployment_ready(obj: dict[str, Any]) -> str:
    return f"{obj.get('status', {}).get('readyReplicas', 0)}/{obj.get('spec', {}).get('replicas', 1)}"


def _containers(obj: dict[str, Any]) -> str:
    return ",".join(c.get("name", "") for c in obj.get("spec", {}).get("template", {}).get("spec", {})
                    .get("containers") or [])


def _images(obj: dict[str, Any]) -> str:
    return ",".join(c.get("image", "") for c in obj.get("spec", {}).get("template", {}).get("spec", {})
                    .get("containers") or [])


def _selector(obj: dict[str, Any]) -> str:
    return selector_string(obj.get("spec", {}).get("selector") or {})


def pod_ready(pod: dict[str, Any]) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready") and "running" in (c.get("state") or {}))
    return f"{ready}/{len(pod.get('spec', {}).get('containers') or [])}"


def pod_status_reason(pod: dict[str, Any]) -> str:
    """printPod's STATUS: the phase, overridden by a container's waiting or terminated reason, and
    Terminating while a deletion is pending."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase", "Pending")
    has_running = False
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            terminated = state["terminated"]
            reason = terminated.get("reason") or (f"Signal:{terminated['signal']}" if terminated.get("signal")
                                                  else f"ExitCode:{terminated.get('exitCode', 0)}")
        elif container.get("ready") and "running" in state:
            has_running = True
    if reason == "Completed" and has_running:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        reason = "Running" if ready else "NotReady"
    if pod.get("metadata", {}).get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return str(reason)


def pod_restarts(pod: dict[str, Any]) -> str:
    """printPod's RESTARTS: the count, and how long ago the last one finished."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    finished = [c["lastState"]["terminated"]["finishedAt"] for c in statuses
                if (c.get("lastState") or {}).get("terminated", {}).get("finishedAt")]
    return f"{restarts} ({age(max(finished))} ago)" if restarts and finished else str(restarts)


def job_status(job: dict[str, Any]) -> str:
    """printJob's STATUS (1.30): Complete or Failed once finished, Terminating while being deleted, else
    Running."""
    if job.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return "Running"


def job_completions(job: dict[str, Any]) -> str:
    return f"{job.get('status', {}).get('succeeded', 0)}/{job.get('spec', {}).get('completions', 1)}"


def job_duration(job: dict[str, Any]) -> str:
    """printJob's DURATION: start to completion, or to now while it runs; empty before it starts."""
    status = job.get("status", {})
    if not status.get("startTime"):
        return ""
    end = status.get("completionTime")
    now = datetime.datetime.strptime(end, FORMAT).replace(tzinfo=datetime.UTC) if end else None
    return age(status["startTime"], now)


def _node_status(node: dict[str, Any]) -> str:
    conditions: list[dict[str, Any]] = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return "Ready" if ready else "NotReady"


Column = tuple[str, str, Callable[[dict[str, Any]], Any], int]
# What `kubectl get` shows for the built-ins the controllers run (computed cells, as the API server's
# printers in pkg/printers/internalversion do); the last item is the priority (1: only with -o wide).
_BUILTIN: dict[tuple[str, str], list[Column]] = {
    ("apps", "deployments"): [
        ("Ready", "string", _deployment_ready, 0),
        ("Up-to-date", "integer", lambda o: o.get("status", {}).get("updatedReplicas", 0), 0),
        ("Available", "integer", lambda o: o.get("status", {}).get("availableReplicas", 0), 0),
    ],
    ("apps", "replicasets"): [
        ("Desired", "integer", lambda o: o.get("spec", {}).get("replicas", 1), 0),
        ("Current", "integer", lambda o: o.get("status", {}).get("replicas", 0), 0),
        ("Ready", "integer", lambda o: o.get("status", {}).get("readyReplicas", 0), 0),
    ],
    ("batch", "jobs"): [
        ("Status", "string", job_status, 0),
        ("Completions", "string", job_completions, 0),
        ("Duration", "string", job_duration, 0),
    ],
    ("", "pods"): [
        ("Ready", "string", pod_ready, 0),
        ("Status", "string", pod_status_reason, 0),
        ("Restarts", "string", pod_restarts, 0),
    ],
    ("", "nodes"): [
        ("Status", "string", _node_status, 0),
        ("Version", "string", lambda o: o.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""), 0),
    ],
    ("", "namespaces"): [("Status", "string", lambda o: o.get("status", {}).get("phase", "Active"), 0)],
    ("", "events"): [
        ("Last Seen", "string", lambda o: age(o.get("lastTimestamp") or o.get("eventTime")), 0),
        ("Type", "string", lambda o: o.get("type", ""), 0),
        ("Reason", "string", lambda o: o.get("reason", ""), 0),
        ("Object", "string", lambda o: f"{str(o.get('involvedObject', {}).get('kind', '')).lower()}/"
                                       f"{o.get('involvedObject', {}).get('name', '')}", 0),
        ("Message", "string", lambda o: o.get("message", ""), 0),
    ],
}
_WIDE: dict[tuple[str, str], list[Column]] = {
    ("apps", "deployments"): [("Containers", "string", _containers, 1), ("Images", "string", _images, 1),
                              ("Selector", "string", _selector, 1)],
    ("apps", "replicasets"): [("Containers", "string", _containers, 1), ("Images", "string", _images, 1),
                              ("Selector", "string", _selector, 1)],
    ("batch", "jobs"): [("Containers", "string", _containers, 1), ("Images", "string", _images, 1),
                        ("Selector", "string", _selector, 1)],
    ("", "pods"): [("IP", "string", lambda o: o.get("status", {}).get("podIP") or "<none>", 1),
                   ("Node", "string", lambda o: o.get("spec", {}).get("nodeName") or "<none>", 1)],
}


def _builtin_columns(rt: ResourceType) -> list[dict[str, Any]]:
    key = (rt.group, rt.plural)
    columns = [{"name": name, "type": kind, "compute": compute, "priority": priority}
               for name, kind, compute, priority in _BUILTIN.get(key, [])]
    if key != ("", "events"):  # an Event's age is its Last Seen
        columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    columns += [{"name": name, "type": kind, "compute": compute, "priority": priority}
                for name, kind, compute, priority in _WIDE.get(key, [])]
    return columns


def table(rt: ResourceType, items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    name_priority = 1 if (rt.group, rt.plural) == ("", "events") else 0  # kubectl get events shows no NAME
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": name_priority}]
    paths: list[tuple[str | Callable[[dict[str, Any]], Any], str]] = []
    printer = rt.printer_columns or tuple(_builtin_columns(rt))
    for column in printer:
        columns.append({"name": column["name"], "type": "string" if column["type"] == "date" else column["type"],
                        "format": "", "description": column.get("description", ""),
                        "priority": column.get("priority", 0)})
        paths.append((column.get("compute") or column["jsonPath"], column["type"]))
    rows = []
    for obj in items:
        cells: list[Any] = [obj["metadata"]["name"]]
        for path, kind in paths:
            value = json_path(obj, path) if isinstance(path, str) else path(obj)
            cells.append((age(value) if isinstance(value, str) else "<unknown>") if kind == "date"
                         else ("<none>" if value is None else value))
        metadata = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append({"cells": cells, "object": metadata})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}
