"""Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks for: printer columns of CRDs,
NAME and AGE for everything else."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from devstack.emulator.registry import ResourceType
from trading_operator.timestamps import age

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


# What `kubectl get` shows for a few built-ins (computed cells, as the API server's printers do).
_BUILTIN: dict[tuple[str, str], list[tuple[str, str, Callable[[dict[str, Any]], Any]]]] = {
    ("apps", "deployments"): [
        ("Ready", "string", _deployment_ready),
        ("Up-to-date", "integer", lambda o: o.get("status", {}).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o: o.get("status", {}).get("availableReplicas", 0)),
    ],
    ("", "namespaces"): [("Status", "string", lambda o: o.get("status", {}).get("phase", "Active"))],
}


def _builtin_columns(rt: ResourceType) -> list[dict[str, Any]]:
    return [{"name": name, "type": kind, "compute": compute} for name, kind, compute in
            _BUILTIN.get((rt.group, rt.plural), [])]


def table(rt: ResourceType, items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    paths: list[tuple[str | Callable[[dict[str, Any]], Any], str]] = []
    printer = rt.printer_columns or (*_builtin_columns(rt),
                                     {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
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
