"""Events the emulated controllers and kubelets record, as client-go's recorder writes them: a core/v1
Event named `<object>.<hex nanoseconds>`, and a repeat of the same (source, object, type, reason, message)
counted on the existing Event instead of a new one (the EventCorrelator's aggregation of identical
events)."""

from __future__ import annotations

import time
from typing import Any

from devstack.emulator.objects import ApiError, Objects

Obj = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"
SEEN_LIMIT = 4096
"""Distinct recent events remembered for aggregation (client-go's cache holds 4096 too)."""


class EventRecorder:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self.events = objects.resource("v1", "events")
        self._seen: dict[tuple[str, str, str, str, str], str] = {}

    def record(self, involved: Obj, type_: str, reason: str, message: str, component: str, host: str = "",
               field_path: str = "") -> None:
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (component, meta.get("uid", ""), type_, reason, message)
        now = self.objects.now()
        existing = self._seen.get(key)
        found = self.objects.find(self.events, namespace, existing) if existing else None
        if found is not None:
            repeated = {**found, "metadata": dict(found["metadata"]), "count": int(found.get("count", 1)) + 1,
                        "lastTimestamp": now}
            self.objects.store.put(self.objects.key(self.events, namespace, existing or ""), repeated, created=False)
            return
        name = f"{meta['name']}.{time.time_ns():x}"
        reference = {"kind": involved.get("kind"), "namespace": namespace, "name": meta["name"],
                     "uid": meta.get("uid"), "apiVersion": involved.get("apiVersion"),
                     "resourceVersion": meta.get("resourceVersion")}
        if field_path:
            reference["fieldPath"] = field_path
        event = {"metadata": {"name": name, "namespace": namespace}, "involvedObject": reference,
                 "reason": reason, "message": message, "type": type_, "count": 1,
                 "source": {"component": component, **({"host": host} if host else {})},
                 "firstTimestamp": now, "lastTimestamp": now, "reportingComponent": component,
                 "reportingInstance": host}
        try:
            self.objects.create(self.events, namespace, event)
        except ApiError:  # the namespace is going away: the event has nowhere to live
            return
        self._seen[key] = name
        if len(self._seen) > SEEN_LIMIT:
            del self._seen[next(iter(self._seen))]
