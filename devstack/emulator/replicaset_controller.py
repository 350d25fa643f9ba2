"""The ReplicaSet controller, ported from kubernetes/pkg/controller/replicaset (`replica_set.go`
syncReplicaSet/manageReplicas, `replica_set_utils.go` calculateStatus) and the deletion ranking of
`pkg/controller/controller_utils.go` (ActivePodsWithRanks): Pods from the template (`<replicaset>-<5
characters>`, owned by the ReplicaSet), surplus ones deleted least valuable first, and the status counts."""

from __future__ import annotations

import copy
from typing import Any

from devstack.emulator.deployment_controller import controller_of, controller_ref
from devstack.emulator.deployment_status import epoch
from devstack.emulator.events import NORMAL, WARNING, EventRecorder
from devstack.emulator.objects import ApiError, Objects
from devstack.emulator.store import Key, WatchEvent
from devstack.emulator.workqueue import WorkQueue

Obj = dict[str, Any]
COMPONENT = "replicaset-controller"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def is_active(pod: Obj) -> bool:
    """FilterActivePods: not being deleted, not finished."""
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def ready_condition(pod: Obj) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def is_ready(pod: Obj) -> bool:
    return (ready_condition(pod) or {}).get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """IsPodAvailable: ready for at least minReadySeconds."""
    condition = ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return False
    return min_ready_seconds == 0 or epoch(condition["lastTransitionTime"]) + min_ready_seconds < now


def deletion_rank(pod: Obj) -> tuple[int, int, int, int, float, int, float]:
    """ActivePodsWithRanks.Less, as a sort key (smallest is deleted first): unassigned before assigned,
    Pending before Unknown before Running, not ready before ready, lower deletion cost first, ready for less
    time first, more restarts first, newer first. (Upstream also ranks pods doubled up on a node and,
    with LogarithmicScaleDown, compares times on a log scale; one node and exact times here.)"""
    status = pod.get("status") or {}
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", "Pending"), 0)
    ready = ready_condition(pod)
    is_up = ready is not None and ready.get("status") == "True"
    cost = (pod["metadata"].get("annotations") or {}).get(DELETION_COST, "0")
    ready_since = epoch(ready["lastTransitionTime"]) if ready is not None and is_up else 0.0
    restarts = max((int(c.get("restartCount", 0)) for c in status.get("containerStatuses") or []), default=0)
    created = pod["metadata"].get("creationTimestamp")
    return (1 if pod.get("spec", {}).get("nodeName") else 0, phase, int(is_up),
            int(cost) if cost.lstrip("-").isdigit() else 0, -ready_since, -restarts,
            -epoch(created) if created else 0.0)


class ReplicaSetController:
    def __init__(self, objects: Objects, recorder: EventRecorder) -> None:
        self.objects = objects
        self.recorder = recorder
        self.replicasets = objects.resource("apps/v1", "replicasets")
        self.pods = objects.resource("v1", "pods")
        self.queue: WorkQueue[Key] = WorkQueue("replicaset-controller", self.sync)

    def observe(self, event: WatchEvent) -> None:
        if (event.group, event.plural) == ("apps", "replicasets"):
            meta = event.object["metadata"]
            self.queue.add(("apps", "replicasets", meta.get("namespace", ""), meta["name"]))
        elif (event.group, event.plural) == ("", "pods"):
            for obj in (event.object, event.old or event.object):
                owner = controller_of(obj)
                if owner is not None and owner.get("kind") == "ReplicaSet":
                    self.queue.add(("apps", "replicasets", obj["metadata"].get("namespace", ""), owner["name"]))

    def _pods(self, rs: Obj) -> list[Obj]:
        uid = rs["metadata"]["uid"]
        return [pod for key, pod in self.objects.store.owned_by(uid)
                if key[:2] == ("", "pods") and (controller_of(pod) or {}).get("uid") == uid]

    def sync(self, key: Key) -> float | None:
        rs = self.objects.store.get(key)
        if rs is None:
            return None
        active = [pod for pod in self._pods(rs) if is_active(pod)]
        failure = None if rs["metadata"].get("deletionTimestamp") else self._manage(rs, active)
        rs = self.objects.store.get(key) or rs
        status = self._status(rs, active, failure)
        self.objects.write_status(self.replicasets, rs, status)
        min_ready = int(rs["spec"].get("minReadySeconds", 0))
        replicas = int(rs["spec"].get("replicas", 1))
        if failure is None and min_ready > 0 and status.get("readyReplicas", 0) == replicas \
                and status.get("availableReplicas", 0) != replicas:
            return float(min_ready)
        return None

    def _manage(self, rs: Obj, active: list[Obj]) -> tuple[str, str] | None:
        """manageReplicas: create the missing pods, delete the surplus. A failure is (reason, message)."""
        diff = len(active) - int(rs["spec"].get("replicas", 1))
        try:
            if diff < 0:
                for _ in range(-diff):
                    pod = self.objects.create(self.pods, rs["metadata"]["namespace"], self._pod_from_template(rs))
                    self.recorder.record(rs, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                         COMPONENT)
            elif diff > 0:
                for pod in sorted(active, key=deletion_rank)[:diff]:
                    self.objects.delete(self.pods, rs["metadata"]["namespace"], pod["metadata"]["name"])
                    self.recorder.record(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                                         COMPONENT)
        except ApiError as error:
            reason = "FailedCreate" if diff < 0 else "FailedDelete"
            self.recorder.record(rs, WARNING, reason, error.message, COMPONENT)
            return reason, error.message
        return None

    @staticmethod
    def _pod_from_template(rs: Obj) -> Obj:
        """GetPodFromTemplate."""
        template = copy.deepcopy(rs["spec"]["template"])
        meta = template.get("metadata") or {}
        pod_meta: Obj = {"generateName": f"{rs['metadata']['name']}-", "namespace": rs["metadata"]["namespace"],
                         "labels": meta.get("labels") or {}, "ownerReferences": [controller_ref(rs)]}
        if meta.get("annotations"):
            pod_meta["annotations"] = meta["annotations"]
        if meta.get("finalizers"):
            pod_meta["finalizers"] = meta["finalizers"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}

    def _status(self, rs: Obj, active: list[Obj], failure: tuple[str, str] | None) -> Obj:
        """calculateStatus, from the pods seen before this sync's creations and deletions."""
        template_labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
        min_ready, now = int(rs["spec"].get("minReadySeconds", 0)), self.objects.clock()
        status: Obj = {"replicas": len(active)}
        counts = {
            "fullyLabeledReplicas": sum(all((p["metadata"].get("labels") or {}).get(k) == v
                                            for k, v in template_labels.items()) for p in active),
            "readyReplicas": sum(is_ready(p) for p in active),
            "availableReplicas": sum(is_available(p, min_ready, now) for p in active),
            "observedGeneration": int(rs["metadata"].get("generation", 1)),
        }
        status.update({k: v for k, v in counts.items() if v})
        conditions = list((rs.get("status") or {}).get("conditions") or [])
        has_failure = any(c.get("type") == "ReplicaFailure" for c in conditions)
        if failure is not None and not has_failure:
            conditions.append({"type": "ReplicaFailure", "status": "True", "reason": failure[0],
                               "message": failure[1], "lastTransitionTime": self.objects.now()})
        elif failure is None and has_failure:
            conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
        if conditions:
            status["conditions"] = conditions
        return status
