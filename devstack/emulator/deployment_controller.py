"""The Deployment controller, ported from kubernetes/pkg/controller/deployment (`deployment_controller.go`
syncDeployment, `sync.go`, `rolling.go`, `recreate.go`, `progress.go`): a ReplicaSet per pod template
(named `<deployment>-<pod-template-hash>`, owned by the Deployment, carrying the revision annotations),
rolling updates within maxSurge/maxUnavailable, Recreate, proportional scaling, pausing, history cleanup,
and the status with its Progressing and Available conditions. The arithmetic is in `rolling.py` and the
status in `deployment_status.py`; this module reads the store and writes through `Objects`."""

from __future__ import annotations

import copy
import json
from typing import Any

from devstack.emulator import deployment_status as ds
from devstack.emulator.events import NORMAL, EventRecorder
from devstack.emulator.objects import NAME_ALPHABET, ApiError, Objects
from devstack.emulator.rolling import (
    ReplicaSetView,
    Strategy,
    history_to_delete,
    max_surge,
    new_rs_new_replicas,
    old_replica_sets_targets,
    proportional_targets,
)
from devstack.emulator.store import Key, WatchEvent
from devstack.emulator.workqueue import WorkQueue

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_NOT_COPIED = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
               "deprecated.deployment.rollback.to"}
REVISION_HISTORY_CHARS = 2000
COMPONENT = "deployment-controller"


def pod_template_hash(template: Obj, collision_count: int | None) -> str:
    """controller.ComputeHash: FNV-32a of the template (and the collision count), its decimal digits mapped
    onto the safe alphabet. Upstream hashes Go's printout of the struct, so the value differs; the form,
    and that equal templates share a hash, do not."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += collision_count.to_bytes(4, "little")
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(NAME_ALPHABET[ord(char) % len(NAME_ALPHABET)] for char in str(value))


def without_hash(template: Obj) -> Obj:
    """The template without its pod-template-hash label, to compare (shares everything else with `template`:
    a deep copy per ReplicaSet per sync was a third of the emulator's CPU in a 500-symbol converge)."""
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    return {**template, "metadata": {**meta, "labels": labels}}


def revision_of(obj: Obj) -> int:
    text = (obj["metadata"].get("annotations") or {}).get(REVISION, "")
    return int(text) if text.isdigit() else 0


def controller_of(obj: Obj) -> Obj | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def controller_ref(owner: Obj) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def strategy_of(deployment: Obj) -> Strategy:
    strategy = deployment["spec"].get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    return Strategy(strategy.get("type", "RollingUpdate"), rolling.get("maxSurge"), rolling.get("maxUnavailable"))


def _annotation_int(obj: Obj, name: str) -> int | None:
    text = (obj["metadata"].get("annotations") or {}).get(name, "")
    return int(text) if text.isdigit() else None


def view(rs: Obj) -> ReplicaSetView:
    status, meta = rs.get("status") or {}, rs["metadata"]
    return ReplicaSetView(
        name=meta["name"], replicas=int(rs["spec"].get("replicas", 1)), created=meta.get("creationTimestamp", ""),
        actual=int(status.get("replicas", 0)), ready=int(status.get("readyReplicas", 0)),
        available=int(status.get("availableReplicas", 0)), revision=revision_of(rs),
        max_replicas=_annotation_int(rs, MAX_REPLICAS), desired_replicas=_annotation_int(rs, DESIRED_REPLICAS),
        terminating=bool(meta.get("deletionTimestamp")), generation=int(meta.get("generation", 1)),
        observed_generation=int(status.get("observedGeneration", 0)))


class DeploymentController:
    def __init__(self, objects: Objects, recorder: EventRecorder) -> None:
        self.objects = objects
        self.recorder = recorder
        self.deployments = objects.resource("apps/v1", "deployments")
        self.replicasets = objects.resource("apps/v1", "replicasets")
        self.queue: WorkQueue[Key] = WorkQueue("deployment-controller", self.sync)

    # What to sync --------------------------------------------------------------------------------

    def observe(self, event: WatchEvent) -> None:
        if event.group != "apps":
            if event.plural == "pods" and event.type == "DELETED":
                self._pod_gone(event.object)  # Recreate waits for the old pods to be gone
            return
        if event.plural == "deployments":
            meta = event.object["metadata"]
            self.queue.add(("apps", "deployments", meta.get("namespace", ""), meta["name"]))
        elif event.plural == "replicasets":
            for obj in (event.object, event.old or event.object):
                owner = controller_of(obj)
                if owner is not None and owner.get("kind") == "Deployment":
                    self.queue.add(("apps", "deployments", obj["metadata"].get("namespace", ""), owner["name"]))

    def _pod_gone(self, pod: Obj) -> None:
        owner = controller_of(pod)
        namespace = pod["metadata"].get("namespace", "")
        rs = self.objects.find(self.replicasets, namespace, owner["name"]) if owner else None
        deployment_ref = controller_of(rs) if rs is not None else None
        if deployment_ref is not None and deployment_ref.get("kind") == "Deployment":
            self.queue.add(("apps", "deployments", namespace, deployment_ref["name"]))

    # syncDeployment -------------------------------------------------------------------------------

    def sync(self, key: Key) -> float | None:
        deployment = self.objects.store.get(key)
        if deployment is None:
            return None
        rss = self._replica_sets(deployment)
        if deployment["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = self._new_and_old(deployment, rss, create=False)
            self._write_status(deployment, self._status(deployment, old_rss, new_rs, progress=False))
            return None
        deployment = self._check_paused_conditions(deployment)
        if deployment["spec"].get("paused") or self._is_scaling_event(deployment, rss):
            return self._scale_and_sync(self._current(deployment), self._replica_sets(deployment))
        deployment = self._current(deployment)
        rss = self._replica_sets(deployment)
        if strategy_of(deployment).type == "Recreate":
            return self._rollout_recreate(deployment, rss)
        return self._rollout_rolling(deployment, rss)

    def _current(self, deployment: Obj) -> Obj:
        meta = deployment["metadata"]
        return self.objects.find(self.deployments, meta.get("namespace"), meta["name"]) or deployment

    def _replica_sets(self, deployment: Obj) -> list[Obj]:
        uid = deployment["metadata"]["uid"]
        return [obj for key, obj in self.objects.store.owned_by(uid)
                if key[:2] == ("apps", "replicasets") and (controller_of(obj) or {}).get("uid") == uid]

    def _rollout_rolling(self, deployment: Obj, rss: list[Obj]) -> float | None:
        """rolloutRolling: scale the new ReplicaSet up if the surge allows, else old ones down if
        availability allows; clean up history once complete."""
        new_rs, old_rss = self._new_and_old(deployment, rss, create=True)
        deployment = self._current(deployment)
        if new_rs is None:
            return 0.01  # a pod-template hash collision: the next sync tries the next hash
        if self._reconcile_new(deployment, old_rss, new_rs) or self._reconcile_old(deployment, old_rss, new_rs):
            return self._sync_rollout_status(deployment)
        replicas, generation = self._size(deployment), deployment["metadata"].get("generation", 1)
        if ds.deployment_complete(replicas, generation, deployment.get("status") or {}):
            self._cleanup(deployment, old_rss)
        return self._sync_rollout_status(deployment)

    def _rollout_recreate(self, deployment: Obj, rss: list[Obj]) -> float | None:
        """rolloutRecreate: every old pod gone before the new ReplicaSet scales up."""
        new_rs, old_rss = self._new_and_old(deployment, rss, create=False)
        deployment = self._current(deployment)
        scaled = False
        for rs in old_rss:
            if int(rs["spec"].get("replicas", 1)) > 0:
                scaled = self._scale(rs, 0, deployment) or scaled
        if scaled or self._old_pods_running(new_rs, old_rss):
            return self._sync_rollout_status(deployment)
        if new_rs is None:
            new_rs, old_rss = self._new_and_old(deployment, self._replica_sets(deployment), create=True)
            deployment = self._current(deployment)
            if new_rs is None:
                return 0.01
        self._scale(new_rs, self._size(deployment), deployment)
        if ds.deployment_complete(self._size(deployment), deployment["metadata"].get("generation", 1),
                                  deployment.get("status") or {}):
            self._cleanup(deployment, old_rss)
        return self._sync_rollout_status(deployment)

    def _old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
        if sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in old_rss):
            return True
        for rs in old_rss:
            if new_rs is not None and rs["metadata"]["uid"] == new_rs["metadata"]["uid"]:
                continue
            for key, pod in self.objects.store.owned_by(rs["metadata"]["uid"]):
                if key[:2] == ("", "pods") and (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    def _scale_and_sync(self, deployment: Obj, rss: list[Obj]) -> float | None:
        """sync(): a paused Deployment or a scaling event — resize the ReplicaSets, no new rollout."""
        new_rs, old_rss = self._new_and_old(deployment, rss, create=False)
        deployment = self._current(deployment)
        targets = proportional_targets(self._size(deployment), strategy_of(deployment),
                                       int((deployment.get("status") or {}).get("replicas", 0)),
                                       view(new_rs) if new_rs else None, [view(rs) for rs in old_rss])
        by_name = {rs["metadata"]["name"]: rs for rs in [*old_rss, *([new_rs] if new_rs else [])]}
        for name, size in targets.items():
            self._scale(by_name[name], size, deployment)
        if deployment["spec"].get("paused"):
            self._cleanup(deployment, [self._fresh(rs) for rs in old_rss])
        new_rs, old_rss = (self._fresh(new_rs) if new_rs else None), [self._fresh(rs) for rs in old_rss]
        self._write_status(deployment, self._status(deployment, old_rss, new_rs, progress=False))
        return None

    def _fresh(self, rs: Obj) -> Obj:
        return self.objects.find(self.replicasets, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs

    # The new ReplicaSet ---------------------------------------------------------------------------

    def _new_and_old(self, deployment: Obj, rss: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision / getNewReplicaSet: find (or create) the ReplicaSet of the
        current template and keep the revision annotations of it and the Deployment in step."""
        template = without_hash(deployment["spec"]["template"])
        ordered = sorted(rss, key=lambda rs: (rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]))
        new_rs = next((rs for rs in ordered if without_hash(rs["spec"]["template"]) == template), None)
        old_rss = [rs for rs in ordered if new_rs is None or rs is not new_rs]
        new_revision = max((revision_of(rs) for rs in old_rss), default=0) + 1
        status = copy.deepcopy(deployment.get("status") or {})
        has_deadline = deployment["spec"].get("progressDeadlineSeconds") is not None
        if new_rs is not None:
            updated = self._sync_new_annotations(deployment, new_rs, new_revision, exists=True)
            if updated is not None:
                return updated, old_rss
            revision = (new_rs["metadata"].get("annotations") or {}).get(REVISION, "")
            if has_deadline and ds.get_condition(status, ds.PROGRESSING) is None:
                ds.set_condition(status, ds.new_condition(ds.PROGRESSING, "True", ds.FOUND_NEW_RS,
                                                          f'Found new replica set "{new_rs["metadata"]["name"]}"',
                                                          self.objects.now()))
            self._write_status(deployment, status, revision)
            return new_rs, old_rss
        if not create:
            return None, old_rss
        created = self._create_new(deployment, old_rss, new_revision)
        if created is None:
            return None, old_rss
        if has_deadline:
            ds.set_condition(status, ds.new_condition(ds.PROGRESSING, "True", ds.NEW_RS_CREATED,
                                                      f'Created new replica set "{created["metadata"]["name"]}"',
                                                      self.objects.now()))
        self._write_status(self._current(deployment), status, str(new_revision))
        return created, old_rss

    def _create_new(self, deployment: Obj, old_rss: list[Obj], revision: int) -> Obj | None:
        meta, spec = deployment["metadata"], deployment["spec"]
        collisions = (deployment.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(spec["template"])
        digest = pod_template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        body: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta['name']}-{digest}", "namespace": meta["namespace"],
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [controller_ref(deployment)]},
            "spec": {"replicas": 0, "minReadySeconds": int(spec.get("minReadySeconds", 0)), "selector": selector,
                     "template": template},
        }
        replicas = self._size(deployment)
        body["spec"]["replicas"] = new_rs_new_replicas(replicas, strategy_of(deployment),
                                                       [view(rs) for rs in old_rss],
                                                       ReplicaSetView(body["metadata"]["name"], 0))
        body["metadata"]["annotations"] = self._new_annotations(deployment, {}, str(revision), exists=False)
        try:
            created = self.objects.create(self.replicasets, meta["namespace"], body)
        except ApiError as error:
            if error.code != 409:
                raise
            existing = self.objects.find(self.replicasets, meta["namespace"], body["metadata"]["name"])
            if existing is not None and (controller_of(existing) or {}).get("uid") == meta["uid"] and \
                    without_hash(existing["spec"]["template"]) == without_hash(spec["template"]):
                return existing  # created by an earlier sync
            status = copy.deepcopy(deployment.get("status") or {})  # a hash collision: try the next hash
            status["collisionCount"] = int(status.get("collisionCount", 0)) + 1
            self._write_status(deployment, status)
            return None
        if body["spec"]["replicas"] > 0:
            self.recorder.record(deployment, NORMAL, "ScalingReplicaSet",
                                 f"Scaled up replica set {created['metadata']['name']} from 0 to "
                                 f"{body['spec']['replicas']}", COMPONENT)
        return created

    def _new_annotations(self, deployment: Obj, current: dict[str, str], new_revision: str, exists: bool) \
            -> dict[str, str]:
        """SetNewReplicaSetAnnotations: the Deployment's own annotations, the revision (a reused old
        ReplicaSet — a rollback — keeps its former revisions in revision-history), and the replica counts."""
        out = dict(current)
        for name, value in (deployment["metadata"].get("annotations") or {}).items():
            if name not in _NOT_COPIED:
                out[name] = value
        old_text = out.get(REVISION, "")
        old = int(old_text) if old_text.isdigit() else 0
        if old < int(new_revision):
            out[REVISION] = new_revision
            if old_text:
                history = [r for r in out.get(REVISION_HISTORY, "").split(",") if r] + [old_text]
                while len(",".join(history)) > REVISION_HISTORY_CHARS:
                    history.pop(0)
                out[REVISION_HISTORY] = ",".join(history)
        if not exists:
            replicas = self._size(deployment)
            out[DESIRED_REPLICAS] = str(replicas)
            out[MAX_REPLICAS] = str(replicas + max_surge(strategy_of(deployment), replicas))
        return out

    def _sync_new_annotations(self, deployment: Obj, rs: Obj, new_revision: int, exists: bool) -> Obj | None:
        current = rs["metadata"].get("annotations") or {}
        wanted = self._new_annotations(deployment, current, str(new_revision), exists)
        min_ready = int(deployment["spec"].get("minReadySeconds", 0))
        if wanted == current and int(rs["spec"].get("minReadySeconds", 0)) == min_ready:
            return None
        updated = copy.deepcopy(rs)
        updated["metadata"]["annotations"] = wanted
        updated["spec"]["minReadySeconds"] = min_ready
        return self._update_rs(updated)

    def _update_rs(self, rs: Obj) -> Obj:
        key = self.objects.key(self.replicasets, rs["metadata"]["namespace"], rs["metadata"]["name"])
        old = self.objects.store.get(key)
        assert old is not None
        return self.objects.update(self.replicasets, key, old, rs, None)

    # Scaling -------------------------------------------------------------------------------------

    @staticmethod
    def _size(deployment: Obj) -> int:
        return int(deployment["spec"].get("replicas", 1))

    def _scale(self, rs: Obj, size: int, deployment: Obj) -> bool:
        """scaleReplicaSetAndRecordEvent: the new size and the replica annotations; True when the size moved."""
        rs = self._fresh(rs)
        replicas = self._size(deployment)
        annotations = {**(rs["metadata"].get("annotations") or {}), DESIRED_REPLICAS: str(replicas),
                       MAX_REPLICAS: str(replicas + max_surge(strategy_of(deployment), replicas))}
        before = int(rs["spec"].get("replicas", 1))
        if before == size and annotations == (rs["metadata"].get("annotations") or {}):
            return False
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = size
        updated["metadata"]["annotations"] = annotations
        self._update_rs(updated)
        if before != size:
            direction = "up" if size > before else "down"
            self.recorder.record(deployment, NORMAL, "ScalingReplicaSet",
                                 f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {size}",
                                 COMPONENT)
        return before != size

    def _reconcile_new(self, deployment: Obj, old_rss: list[Obj], new_rs: Obj) -> bool:
        replicas, current = self._size(deployment), int(new_rs["spec"].get("replicas", 1))
        if current == replicas:
            return False
        if current > replicas:
            return self._scale(new_rs, replicas, deployment)
        size = new_rs_new_replicas(replicas, strategy_of(deployment), [view(rs) for rs in [*old_rss, new_rs]],
                                   view(new_rs))
        return self._scale(new_rs, size, deployment)

    def _reconcile_old(self, deployment: Obj, old_rss: list[Obj], new_rs: Obj) -> bool:
        targets = old_replica_sets_targets(self._size(deployment), strategy_of(deployment),
                                           [view(rs) for rs in old_rss], view(self._fresh(new_rs)))
        by_name = {rs["metadata"]["name"]: rs for rs in old_rss}
        scaled = False
        for name, size in targets.items():
            scaled = self._scale(by_name[name], size, deployment) or scaled
        return scaled

    def _is_scaling_event(self, deployment: Obj, rss: list[Obj]) -> bool:
        """isScalingEvent: an active ReplicaSet was sized for a different replica count."""
        new_rs, old_rss = self._new_and_old(deployment, rss, create=False)
        replicas = self._size(self._current(deployment))
        for rs in [*old_rss, *([new_rs] if new_rs else [])]:
            rs = self._fresh(rs)
            desired = _annotation_int(rs, DESIRED_REPLICAS)
            if int(rs["spec"].get("replicas", 1)) > 0 and desired is not None and desired != replicas:
                return True
        return False

    def _cleanup(self, deployment: Obj, old_rss: list[Obj]) -> None:
        """cleanupDeployment: keep revisionHistoryLimit old ReplicaSets."""
        limit = deployment["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        for name in history_to_delete([view(self._fresh(rs)) for rs in old_rss], int(limit)):
            try:
                self.objects.delete(self.replicasets, deployment["metadata"]["namespace"], name)
            except ApiError as error:
                if error.code != 404:
                    raise

    # Status --------------------------------------------------------------------------------------

    def _check_paused_conditions(self, deployment: Obj) -> Obj:
        """checkPausedConditions: Progressing Unknown with DeploymentPaused / DeploymentResumed."""
        if deployment["spec"].get("progressDeadlineSeconds") is None:
            return deployment
        status = copy.deepcopy(deployment.get("status") or {})
        condition = ds.get_condition(status, ds.PROGRESSING)
        if condition is not None and condition.get("reason") == ds.TIMED_OUT:
            return deployment
        paused_before = condition is not None and condition.get("reason") == ds.PAUSED
        paused = bool(deployment["spec"].get("paused"))
        if paused and not paused_before:
            ds.set_condition(status, ds.new_condition(ds.PROGRESSING, "Unknown", ds.PAUSED, "Deployment is paused",
                                                      self.objects.now()))
        elif not paused and paused_before:
            ds.set_condition(status, ds.new_condition(ds.PROGRESSING, "Unknown", ds.RESUMED,
                                                      "Deployment is resumed", self.objects.now()))
        else:
            return deployment
        return self._write_status(deployment, status)

    def _status(self, deployment: Obj, old_rss: list[Obj], new_rs: Obj | None, progress: bool) -> Obj:
        all_views = [view(rs) for rs in [*old_rss, *([new_rs] if new_rs else [])]]
        new_view = view(new_rs) if new_rs else None
        old_status = deployment.get("status") or {}
        replicas, generation = self._size(deployment), deployment["metadata"].get("generation", 1)
        if not progress:
            return ds.calculate_status(replicas, generation, strategy_of(deployment), all_views, new_view,
                                       old_status, self.objects.now())
        return ds.rollout_status(deployment["metadata"]["name"], replicas, generation,
                                 deployment["spec"].get("progressDeadlineSeconds"), strategy_of(deployment),
                                 all_views, new_view, old_status, self.objects.now(), self.objects.clock())

    def _sync_rollout_status(self, deployment: Obj) -> float | None:
        """syncRolloutStatus, and requeueStuckDeployment's wake-up for the progress deadline."""
        deployment = self._current(deployment)
        new_rs, old_rss = self._new_and_old(deployment, self._replica_sets(deployment), create=False)
        deployment = self._current(deployment)
        status = self._status(deployment, old_rss, new_rs, progress=True)
        failure = next((c for rs in [*old_rss, *([new_rs] if new_rs else [])]
                        for c in (rs.get("status") or {}).get("conditions") or []
                        if c.get("type") == ds.REPLICA_FAILURE and c.get("status") == "True"), None)
        if failure is not None:
            ds.set_condition(status, {**failure, "type": ds.REPLICA_FAILURE})
        elif ds.get_condition(status, ds.REPLICA_FAILURE) is not None:
            ds.remove_condition(status, ds.REPLICA_FAILURE)
        written = self._write_status(deployment, status)
        return ds.seconds_until_deadline(deployment["spec"].get("progressDeadlineSeconds"), written.get("status") or {},
                                         self.objects.clock())

    def _write_status(self, deployment: Obj, status: Obj, revision: str | None = None) -> Obj:
        deployment = self._current(deployment)
        annotations = {REVISION: revision} if revision else None
        return self.objects.write_status(self.deployments, deployment, status, annotations)
