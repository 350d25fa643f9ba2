"""The scheduler, reduced to what one node needs: every new Pod without a node is bound to the kubelet's
node (`spec.nodeName`, the PodScheduled condition, a Scheduled Event), as kube-scheduler's binding does."""

from __future__ import annotations

from typing import Any

from devstack.emulator.events import NORMAL, EventRecorder
from devstack.emulator.objects import Objects
from devstack.emulator.store import Key, WatchEvent
from devstack.emulator.workqueue import WorkQueue

Obj = dict[str, Any]


class Scheduler:
    def __init__(self, objects: Objects, recorder: EventRecorder, node_name: str) -> None:
        self.objects = objects
        self.recorder = recorder
        self.node_name = node_name
        self.pods = objects.resource("v1", "pods")
        self.queue: WorkQueue[Key] = WorkQueue("scheduler", self.sync)

    def observe(self, event: WatchEvent) -> None:
        if (event.group, event.plural) == ("", "pods") and event.type != "DELETED" \
                and not event.object.get("spec", {}).get("nodeName"):
            meta = event.object["metadata"]
            self.queue.add(("", "pods", meta.get("namespace", ""), meta["name"]))

    def sync(self, key: Key) -> None:
        pod = self.objects.store.get(key)
        if pod is None or pod.get("spec", {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        now = self.objects.now()
        status = dict(pod.get("status") or {})
        status.setdefault("phase", "Pending")
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}]
        bound = {**pod, "metadata": dict(pod["metadata"]), "spec": {**pod["spec"], "nodeName": self.node_name},
                 "status": status}
        self.objects.store.put(key, bound, created=False)
        self.recorder.record(bound, NORMAL, "Scheduled",
                             f"Successfully assigned {key[2]}/{key[3]} to {self.node_name}", "default-scheduler")
