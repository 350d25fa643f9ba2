"""The Job controller, ported from kubernetes/pkg/controller/job (`job_controller.go` syncJob/manageJob,
`backoff_utils.go`) as of v1.30, for NonIndexed Jobs: Pods from the template (`<job>-<5 characters>`, owned
by the Job), a new Pod for each failed one (restartPolicy Never) after the failure back-off, the kubelet
restarting in place (OnFailure), `backoffLimit` (BackoffLimitExceeded), `activeDeadlineSeconds`
(DeadlineExceeded), the Complete and Failed conditions, and `ttlSecondsAfterFinished` (the TTL-after-finished
controller). A Pod is counted once, when it ends, as the Pod-tracking finalizers make upstream count it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from devstack.emulator.deployment_controller import controller_of, controller_ref
from devstack.emulator.deployment_status import epoch
from devstack.emulator.events import NORMAL, WARNING, EventRecorder
from devstack.emulator.objects import ApiError, Objects
from devstack.emulator.replicaset_controller import is_active, is_ready
from devstack.emulator.store import Key, WatchEvent
from devstack.emulator.workqueue import WorkQueue

Obj = dict[str, Any]
COMPONENT = "job-controller"
BACKOFF_SECONDS = 10.0
"""DefaultJobPodFailureBackOff: a failed Pod is replaced after 10 s, doubling per failure..."""
MAX_BACKOFF_SECONDS = 360.0
"""...up to MaxJobPodFailureBackOff, 6 minutes."""
BACKOFF_LIMIT = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE = ("DeadlineExceeded", "Job was active longer than specified deadline")


@dataclass
class Tally:
    """The Pods of one Job the controller has counted as ended (by Pod uid), and when the last one failed."""

    ended: dict[str, bool] = field(default_factory=dict)
    """Pod uid → succeeded."""
    last_failure: float = 0.0
    failures_in_a_row: int = 0

    @property
    def succeeded(self) -> int:
        return sum(self.ended.values())

    @property
    def failed(self) -> int:
        return len(self.ended) - self.succeeded


def finished(job: Obj) -> str | None:
    """IsJobFinished: "Complete" or "Failed" once that condition is True."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    return sum(int(c.get("restartCount", 0))
               for c in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])])


def past_backoff_limit_on_failure(spec: Obj, active: list[Obj]) -> bool:
    """pastBackoffLimitOnFailure: with OnFailure the kubelet's restarts of the active Pods count."""
    if spec["template"].get("spec", {}).get("restartPolicy") != "OnFailure":
        return False
    limit, total = int(spec.get("backoffLimit", 6)), sum(restarts(p) for p in active)
    return total > 0 if limit == 0 else total >= limit


def backoff_delay(base: float, failures_in_a_row: int) -> float:
    """The failure back-off before the next Pod: base·2^(n-1), capped."""
    return 0.0 if failures_in_a_row == 0 else min(base * 2 ** (failures_in_a_row - 1), MAX_BACKOFF_SECONDS)


class JobController:
    def __init__(self, objects: Objects, recorder: EventRecorder, backoff_seconds: float = BACKOFF_SECONDS) -> None:
        self.objects = objects
        self.recorder = recorder
        self.backoff_seconds = backoff_seconds
        self.jobs = objects.resource("batch/v1", "jobs")
        self.pods = objects.resource("v1", "pods")
        self.tallies: dict[str, Tally] = {}
        self.queue: WorkQueue[Key] = WorkQueue("job-controller", self.sync)

    def observe(self, event: WatchEvent) -> None:
        if (event.group, event.plural) == ("batch", "jobs"):
            meta = event.object["metadata"]
            if event.type == "DELETED":
                self.tallies.pop(meta.get("uid", ""), None)
            else:
                self.queue.add(("batch", "jobs", meta.get("namespace", ""), meta["name"]))
        elif (event.group, event.plural) == ("", "pods"):
            for obj in (event.object, event.old or event.object):
                owner = controller_of(obj)
                if owner is not None and owner.get("kind") == "Job":
                    self.queue.add(("batch", "jobs", obj["metadata"].get("namespace", ""), owner["name"]))

    def _pods(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        return [pod for key, pod in self.objects.store.owned_by(uid)
                if key[:2] == ("", "pods") and (controller_of(pod) or {}).get("uid") == uid]

    def sync(self, key: Key) -> float | None:
        job = self.objects.store.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        ended = finished(job)
        if ended is not None:
            return self._expire(job, ended)
        spec, now = job["spec"], self.objects.clock()
        tally = self.tallies.setdefault(job["metadata"]["uid"], Tally())
        pods = self._pods(job)
        new_failure = self._count(tally, pods, now)
        active = [p for p in pods if is_active(p)]
        status = copy.deepcopy(job.get("status") or {})
        status.setdefault("startTime", self.objects.now())
        started = epoch(status["startTime"])
        deadline = spec.get("activeDeadlineSeconds")
        failure: tuple[str, str] | None = None
        if (new_failure and tally.failed > int(spec.get("backoffLimit", 6))) or \
                past_backoff_limit_on_failure(spec, active):
            failure = BACKOFF_LIMIT
        elif deadline is not None and now >= started + int(deadline):
            failure = DEADLINE
        again: float | None = None
        completions = int(spec.get("completions") or 1)
        if failure is not None:
            self._delete(job, active, tally)
            active = []
            self._finish(job, status, "Failed", *failure)
        elif tally.succeeded >= completions:
            self._delete(job, active, tally)
            active = []
            status["completionTime"] = self.objects.now()
            self._finish(job, status, "Complete", "", "")
        else:
            wanted = min(int(spec.get("parallelism") or 1), completions - tally.succeeded)
            wait = tally.last_failure + backoff_delay(self.backoff_seconds, tally.failures_in_a_row) - now
            if len(active) < wanted and wait > 0:
                again = wait
            elif len(active) < wanted:
                active += self._create(job, wanted - len(active))
            elif len(active) > wanted:
                self._delete(job, active[wanted:], tally)
                active = active[:wanted]
            if deadline is not None:
                left = started + int(deadline) - now
                again = left if again is None else min(again, left)
        status.update(active=len(active), ready=sum(is_ready(p) for p in active), succeeded=tally.succeeded,
                      failed=tally.failed, uncountedTerminatedPods={})
        status = {k: v for k, v in status.items() if v != 0 or k == "ready"}
        self.objects.write_status(self.jobs, self.objects.store.get(key) or job, status)
        return again

    @staticmethod
    def _count(tally: Tally, pods: list[Obj], now: float) -> bool:
        """Count the Pods that have ended since the last sync; True if one of them failed."""
        new_failure = False
        for pod in pods:
            uid, phase = pod["metadata"]["uid"], (pod.get("status") or {}).get("phase")
            if uid in tally.ended or phase not in ("Succeeded", "Failed"):
                continue
            tally.ended[uid] = phase == "Succeeded"
            if phase == "Failed":
                new_failure = True
                tally.last_failure, tally.failures_in_a_row = now, tally.failures_in_a_row + 1
        if not new_failure and any(p.get("status", {}).get("phase") == "Succeeded" for p in pods):
            tally.failures_in_a_row = 0
        return new_failure

    def _create(self, job: Obj, count: int) -> list[Obj]:
        created = []
        for _ in range(count):
            try:
                pod = self.objects.create(self.pods, job["metadata"]["namespace"], self._pod_from_template(job))
            except ApiError as error:
                self.recorder.record(job, WARNING, "FailedCreate", f"Error creating: {error.message}", COMPONENT)
                break
            self.recorder.record(job, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                 COMPONENT)
            created.append(pod)
        return created

    def _delete(self, job: Obj, pods: list[Obj], tally: Tally) -> None:
        """Delete Pods the Job no longer wants; a Pod stopped before it ended counts as failed."""
        for pod in pods:
            try:
                self.objects.delete(self.pods, job["metadata"]["namespace"], pod["metadata"]["name"])
            except ApiError:
                continue
            tally.ended.setdefault(pod["metadata"]["uid"], False)
            self.recorder.record(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                                 COMPONENT)

    def _finish(self, job: Obj, status: Obj, type_: str, reason: str, message: str) -> None:
        now = self.objects.now()
        condition: Obj = {"type": type_, "status": "True", "lastProbeTime": now, "lastTransitionTime": now}
        if reason:
            condition.update(reason=reason, message=message)
        status["conditions"] = [*(status.get("conditions") or []), condition]
        if type_ == "Complete":
            self.recorder.record(job, NORMAL, "Completed", "Job completed", COMPONENT)
        else:
            self.recorder.record(job, WARNING, reason, message, COMPONENT)

    def _expire(self, job: Obj, ended: str) -> float | None:
        """The TTL-after-finished controller: delete a finished Job `ttlSecondsAfterFinished` after it ended
        (its Pods go with it)."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        condition = next(c for c in job["status"]["conditions"] if c.get("type") == ended)
        left = epoch(condition["lastTransitionTime"]) + int(ttl) - self.objects.clock()
        if left > 0:
            return left
        meta = job["metadata"]
        try:
            self.objects.delete(self.jobs, meta["namespace"], meta["name"])
        except ApiError:
            return None
        return None

    @staticmethod
    def _pod_from_template(job: Obj) -> Obj:
        """GetPodFromTemplate, with the Job's labels the API server put on the template."""
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.get("metadata") or {}
        pod_meta: Obj = {"generateName": f"{job['metadata']['name']}-", "namespace": job["metadata"]["namespace"],
                         "labels": meta.get("labels") or {}, "ownerReferences": [controller_ref(job)]}
        if meta.get("annotations"):
            pod_meta["annotations"] = meta["annotations"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}
