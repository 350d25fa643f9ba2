"""Deployments, ReplicaSets and Pods in the emulator, driven as users drive a cluster: kubectl (apply, get,
rollout status/history/undo/pause/resume, scale, set image) and the kubernetes client. Each test names the
upstream behaviour it pins (kubernetes/pkg/controller/deployment, pkg/controller/replicaset,
pkg/registry/core/pod graceful deletion, kubectl's rollout status viewer and pod printer)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client, watch

from devstack.emulator import EmulatorThread, SimulatedKubelet, Terminated, Waiting, write_kubeconfig
from devstack.processes import find_kubectl, wait_for
from tests.integration.emulator_fixtures import api_client_for, unique_namespace

KUBECTL = find_kubectl()
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"


@dataclass
class Cluster:
    emulator: EmulatorThread
    kubeconfig: pathlib.Path
    apps: client.AppsV1Api
    core: client.CoreV1Api

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], input=stdin,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def namespace(self) -> str:
        name = unique_namespace("w")
        self.kubectl("create", "namespace", name)
        return name

    def deployment(self, ns: str, name: str) -> dict[str, Any]:
        found = self.emulator.get_object("apps/v1", "deployments", ns, name)
        assert found is not None
        return found

    def replicasets(self, ns: str) -> list[dict[str, Any]]:
        return sorted(self.emulator.list_objects("apps/v1", "replicasets", ns),
                      key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))

    def pods(self, ns: str) -> list[dict[str, Any]]:
        return self.emulator.list_objects("v1", "pods", ns)


def start_cluster(tmp: pathlib.Path, ready_delay: float) -> Iterator[Cluster]:
    with EmulatorThread(kubelet=SimulatedKubelet(ready_delay=ready_delay)) as emulator:
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", emulator.url)
        with api_client_for(emulator.url) as api:
            yield Cluster(emulator, kubeconfig, client.AppsV1Api(api), client.CoreV1Api(api))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from start_cluster(tmp_path_factory.mktemp("workloads"), ready_delay=0.1)


@pytest.fixture(scope="module")
def stuck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster whose pods never become ready (their containers stay ContainerCreating)."""
    yield from start_cluster(tmp_path_factory.mktemp("stuck"), ready_delay=3600)


def manifest(name: str, replicas: int = 3, image: str = "nginx:1.25", strategy: str = "", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          {strategy or "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"}
          {extra}
          template:
            metadata: {{labels: {{app: {name}}}, annotations: {{team: trading}}}}
            spec:
              containers: [{{name: web, image: "{image}", ports: [{{containerPort: 9102}}]}}]
        """)


def apply(cluster: Cluster, ns: str, text: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("-n", ns, "apply", "--validate=false", "-f", "-", stdin=text, check=check)


def rollout_status(cluster: Cluster, ns: str, name: str, timeout: str = "30s") -> None:
    cluster.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", f"--timeout={timeout}")


State = dict[str, tuple[str, int, bool]]


def pod_state(pod: dict[str, Any]) -> tuple[str, int, bool]:
    """(pod-template-hash, 1 if active (not being deleted) else 0, ready)."""
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
    return pod["metadata"]["labels"]["pod-template-hash"], int(not pod["metadata"].get("deletionTimestamp")), ready


def rs_state(rs: dict[str, Any]) -> tuple[str, int, bool]:
    """(pod-template-hash, spec.replicas, -)."""
    return rs["metadata"]["labels"]["pod-template-hash"], int(rs["spec"]["replicas"]), False


@dataclass
class Timeline:
    """Every state of a namespace's pods and ReplicaSets after a moment, event by event."""

    pods: list[State]
    replicasets: list[State]

    def max_pods(self) -> int:
        return max(sum(active for _, active, _ in state.values()) for state in self.pods)

    def min_ready(self) -> int:
        return min(sum(active and ready for _, active, ready in state.values()) for state in self.pods)

    def max_replica_set_total(self) -> int:
        return max(sum(size for _, size, _ in state.values()) for state in self.replicasets)


def snapshot(cluster: Cluster, ns: str) -> dict[str, tuple[str, State]]:
    out = {}
    for kind, lister, state in (("pods", cluster.core.list_namespaced_pod, pod_state),
                                ("replicasets", cluster.apps.list_namespaced_replica_set, rs_state)):
        body = json.loads(lister(ns, _preload_content=False).data)
        out[kind] = (body["metadata"]["resourceVersion"], {i["metadata"]["name"]: state(i) for i in body["items"]})
    return out


def timeline(cluster: Cluster, ns: str, since: dict[str, tuple[str, State]], seconds: int = 2) -> Timeline:
    """Replay the watch events after `since` (a `snapshot`)."""
    result = {}
    for kind, lister, state in (("pods", cluster.core.list_namespaced_pod, pod_state),
                                ("replicasets", cluster.apps.list_namespaced_replica_set, rs_state)):
        version, items = since[kind][0], dict(since[kind][1])
        states = [dict(items)]
        for event in watch.Watch().stream(lister, ns, resource_version=version, timeout_seconds=seconds,
                                          _preload_content=False):
            obj = event["raw_object"]
            if event["type"] == "DELETED":
                items.pop(obj["metadata"]["name"], None)
            else:
                items[obj["metadata"]["name"]] = state(obj)
            states.append(dict(items))
        result[kind] = states
    return Timeline(result["pods"], result["replicasets"])


def roll_out(cluster: Cluster, ns: str, text: str) -> Timeline:
    """Apply a Deployment, wait for it, change its image, wait again: every state in between."""
    apply(cluster, ns, text)
    rollout_status(cluster, ns, "web")
    since = snapshot(cluster, ns)
    cluster.kubectl("-n", ns, "set", "image", "deployment/web", "web=nginx:1.26")
    rollout_status(cluster, ns, "web")
    return timeline(cluster, ns, since)


def test_a_replica_set_per_template_owns_its_pods(cluster):
    """getNewReplicaSet / GetPodFromTemplate: ReplicaSet `<deployment>-<pod-template-hash>` owned by the
    Deployment (controller, uid) with revision 1; pods `<replicaset>-<5 characters>` owned by it, with the
    template's labels and annotations plus the hash, bound to the node, with a pod IP."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web"))
    rollout_status(cluster, ns, "web")
    deployment = cluster.deployment(ns, "web")
    [rs] = cluster.replicasets(ns)
    digest = rs["metadata"]["labels"]["pod-template-hash"]
    assert re.fullmatch(f"{SAFE}{{1,10}}", digest)
    assert rs["metadata"]["name"] == f"web-{digest}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": digest}
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                  "uid": deployment["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]
    assert rs["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1",
                                             "deployment.kubernetes.io/desired-replicas": "3",
                                             "deployment.kubernetes.io/max-replicas": "4"}
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pods = cluster.pods(ns)
    assert len(pods) == 3
    for pod in pods:
        assert re.fullmatch(f"web-{digest}-{SAFE}{{5}}", pod["metadata"]["name"])
        assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": digest}
        assert pod["metadata"]["annotations"] == {"team": "trading"}
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert pod["spec"]["nodeName"] == "tradeops-node"
        assert re.fullmatch(r"10\.244\.\d+\.\d+", pod["status"]["podIP"])
        assert pod["status"]["phase"] == "Running"
        assert [c["type"] for c in pod["status"]["conditions"]] == [
            "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert len({p["status"]["podIP"] for p in pods}) == 3
    status = deployment["status"]
    assert {k: status[k] for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                   "availableReplicas")} == {"observedGeneration": 1, "replicas": 3,
                                                             "updatedReplicas": 3, "readyReplicas": 3,
                                                             "availableReplicas": 3}
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Available"]["reason"], conditions["Available"]["message"]) == \
        ("MinimumReplicasAvailable", "Deployment has minimum availability.")
    assert (conditions["Progressing"]["reason"], conditions["Progressing"]["message"]) == \
        ("NewReplicaSetAvailable", f'ReplicaSet "web-{digest}" has successfully progressed.')
    assert all(c["lastUpdateTime"] and c["lastTransitionTime"] for c in conditions.values())


def test_a_rolling_update_stays_within_surge_and_availability(cluster):
    """rolloutRolling with maxSurge 1 / maxUnavailable 0: the ReplicaSets never add up to more than 4 pods
    of 3 (the guarantee is on ReplicaSet sizes: a pod being deleted no longer counts), never fewer than 3
    ready; the old ReplicaSet ends at 0 with revision 1, the new one has revision 2, and
    `kubectl rollout history` lists both."""
    ns = cluster.namespace()
    seen = roll_out(cluster, ns, manifest("web"))
    assert seen.max_replica_set_total() == 4
    assert seen.min_ready() == 3
    old, new = cluster.replicasets(ns)
    assert (old["spec"]["replicas"], old["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) == (0, "1")
    assert (new["spec"]["replicas"], new["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) == (3, "2")
    history = cluster.kubectl("-n", ns, "rollout", "history", "deployment/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    reasons = [e.message for e in cluster.core.list_namespaced_event(ns).items if e.reason == "ScalingReplicaSet"]
    assert f"Scaled up replica set {new['metadata']['name']} from 0 to 1" in reasons
    assert f"Scaled down replica set {old['metadata']['name']} from 1 to 0" in reasons


def test_max_unavailable_without_surge_never_adds_a_pod(cluster):
    """rolloutRolling with maxSurge 0 / maxUnavailable 1: the old ReplicaSet shrinks first; the ReplicaSets
    never add up to more than 3, and 2 stay ready."""
    ns = cluster.namespace()
    strategy = "strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}"
    seen = roll_out(cluster, ns, manifest("web", strategy=strategy))
    assert seen.max_replica_set_total() == 3
    assert seen.min_ready() == 2


def test_percentages_resolve_with_the_real_rounding(cluster):
    """SetDefaults_Deployment (25 %/25 %) and ResolveFenceposts: for 10 replicas, surge rounds up to 3 and
    unavailability down to 2 — the new ReplicaSet starts at 3 + 2 = 5 once 2 old pods go."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=10, strategy="strategy: {type: RollingUpdate}"))
    rollout_status(cluster, ns, "web")
    deployment = cluster.deployment(ns, "web")
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert (deployment["spec"]["revisionHistoryLimit"], deployment["spec"]["progressDeadlineSeconds"]) == (10, 600)
    [rs] = cluster.replicasets(ns)
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "13"
    since = snapshot(cluster, ns)
    cluster.kubectl("-n", ns, "set", "image", "deployment/web", "web=nginx:1.26")
    rollout_status(cluster, ns, "web")
    seen = timeline(cluster, ns, since)
    assert seen.max_replica_set_total() == 13
    assert seen.min_ready() == 8


def test_rollout_undo_brings_back_the_old_replica_set_with_a_new_revision(cluster):
    """SetNewReplicaSetAnnotations on a reused ReplicaSet: revision 3, revision-history "1"; no new
    ReplicaSet."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=1))
    rollout_status(cluster, ns, "web")
    cluster.kubectl("-n", ns, "set", "image", "deployment/web", "web=nginx:1.26")
    rollout_status(cluster, ns, "web")
    cluster.kubectl("-n", ns, "rollout", "undo", "deployment/web")
    rollout_status(cluster, ns, "web")
    replicasets = cluster.replicasets(ns)
    assert len(replicasets) == 2
    reused = replicasets[-1]
    assert reused["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert cluster.deployment(ns, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_revision_history_limit_prunes_old_replica_sets(cluster):
    """cleanupDeployment: with revisionHistoryLimit 1, one old ReplicaSet is kept (the newest)."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=1, extra="revisionHistoryLimit: 1"))
    for version in ("1.26", "1.27", "1.28"):
        cluster.kubectl("-n", ns, "set", "image", "deployment/web", f"web=nginx:{version}")
        rollout_status(cluster, ns, "web")
    wait_for(lambda: len(cluster.replicasets(ns)) == 2, 5, "history pruned to one old ReplicaSet")
    revisions = [rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in cluster.replicasets(ns)]
    assert revisions == ["3", "4"]


def test_pausing_holds_template_changes_and_resuming_rolls_them_out(cluster):
    """checkPausedConditions and sync(): paused → Progressing Unknown/DeploymentPaused and no new ReplicaSet;
    resumed → DeploymentResumed, then the rollout."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=2))
    rollout_status(cluster, ns, "web")
    cluster.kubectl("-n", ns, "rollout", "pause", "deployment/web")
    cluster.kubectl("-n", ns, "set", "image", "deployment/web", "web=nginx:1.26")

    def progressing() -> dict[str, Any]:
        return next(c for c in cluster.deployment(ns, "web")["status"]["conditions"] if c["type"] == "Progressing")

    paused = wait_for(lambda: (c := progressing())["reason"] == "DeploymentPaused" and c, 5, "DeploymentPaused")
    assert (paused["status"], paused["message"]) == ("Unknown", "Deployment is paused")
    assert len(cluster.replicasets(ns)) == 1
    cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=3")  # scaling works while paused
    wait_for(lambda: cluster.replicasets(ns)[0]["spec"]["replicas"] == 3, 5, "scaled while paused")
    cluster.kubectl("-n", ns, "rollout", "resume", "deployment/web")
    rollout_status(cluster, ns, "web")
    assert len(cluster.replicasets(ns)) == 2
    assert progressing()["reason"] == "NewReplicaSetAvailable"


def test_scaling_resizes_the_replica_set_without_a_new_revision(cluster):
    """isScalingEvent / scale(): a replica change is not a rollout."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=2))
    rollout_status(cluster, ns, "web")
    cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=5")
    rollout_status(cluster, ns, "web")
    [rs] = cluster.replicasets(ns)
    assert rs["spec"]["replicas"] == 5
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    assert len(cluster.pods(ns)) == 5
    cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=0")
    wait_for(lambda: not cluster.pods(ns), 5, "no pods at 0 replicas")
    assert {k for k in cluster.deployment(ns, "web")["status"] if k != "conditions"} == {"observedGeneration"}


def test_recreate_stops_every_old_pod_before_starting_new_ones(cluster):
    """rolloutRecreate / oldPodsRunning: no moment with pods of both templates."""
    ns = cluster.namespace()
    for state in roll_out(cluster, ns, manifest("web", strategy="strategy: {type: Recreate}")).pods:
        assert len({digest for digest, _, _ in state.values()}) <= 1


def test_a_stuck_rollout_exceeds_its_progress_deadline(stuck):
    """DeploymentTimedOut: no progress for progressDeadlineSeconds → Progressing False
    ProgressDeadlineExceeded; `kubectl rollout status` fails on it (DeploymentStatusViewer)."""
    ns = stuck.namespace()
    apply(stuck, ns, manifest("slow", replicas=1, extra="progressDeadlineSeconds: 2"))
    result = stuck.kubectl("-n", ns, "rollout", "status", "deployment/slow", "--timeout=20s", check=False)
    assert result.returncode == 1
    assert 'deployment "slow" exceeded its progress deadline' in result.stderr
    conditions = {c["type"]: c for c in stuck.deployment(ns, "slow")["status"]["conditions"]}
    [rs] = stuck.replicasets(ns)
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"],
            conditions["Progressing"]["message"]) == \
        ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.')
    assert (conditions["Available"]["status"], conditions["Available"]["reason"]) == \
        ("False", "MinimumReplicasUnavailable")
    [pod] = stuck.pods(ns)
    container = pod["status"]["containerStatuses"][0]
    assert container["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert pod["status"]["phase"] == "Pending"


@pytest.mark.parametrize(("strategy", "message"), [
    ("strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}",
     "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"),
    ("strategy: {rollingUpdate: {maxSurge: 120%}}",
     "spec.strategy.rollingUpdate.maxSurge: Invalid value: 120%: must not be greater than 100%"),
], ids=["both-zero", "over-100-percent"])
def test_invalid_strategies_are_refused(cluster, strategy, message):
    """ValidateRollingUpdateDeployment."""
    ns = cluster.namespace()
    result = apply(cluster, ns, manifest("web", strategy=strategy), check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_selector_that_misses_the_template_is_refused(cluster):
    """ValidateDeploymentSpec: `selector` does not match template `labels`."""
    ns = cluster.namespace()
    text = manifest("web").replace("selector: {matchLabels: {app: web}}", "selector: {matchLabels: {app: other}}")
    result = apply(cluster, ns, text, check=False)
    assert result.returncode != 0
    assert "spec.template.metadata.labels: Invalid value" in result.stderr
    assert "`selector` does not match template `labels`" in result.stderr


def test_a_deleted_pod_terminates_gracefully_and_is_replaced(cluster):
    """Graceful deletion (pkg/registry/core/pod): DELETE answers the pod with deletionTimestamp and its
    grace period; the kubelet removes it; the ReplicaSet has created a replacement meanwhile."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=1))
    rollout_status(cluster, ns, "web")
    [pod] = cluster.pods(ns)
    name = pod["metadata"]["name"]
    answered = cluster.core.delete_namespaced_pod(name, ns, _preload_content=False)
    body = json.loads(answered.data)
    assert body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["deletionGracePeriodSeconds"] == 30
    wait_for(lambda: [p["metadata"]["name"] for p in cluster.pods(ns)] not in ([name], []), 5, "a replacement")
    wait_for(lambda: name not in {p["metadata"]["name"] for p in cluster.pods(ns)}, 5, "the old pod gone")
    rollout_status(cluster, ns, "web")


def test_deleting_the_deployment_collects_its_replica_sets_and_pods(cluster):
    """Garbage collection by ownerReference, Deployment → ReplicaSet → Pod."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=2))
    rollout_status(cluster, ns, "web")
    cluster.kubectl("-n", ns, "delete", "deployment", "web")
    wait_for(lambda: not cluster.pods(ns) and not cluster.replicasets(ns), 5, "replicasets and pods collected")


def test_kubectl_get_prints_pods_replica_sets_and_container_states(cluster):
    """printPod (READY, STATUS from a waiting reason, RESTARTS with the last restart's age) and the
    ReplicaSet printer (DESIRED CURRENT READY)."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=2))
    rollout_status(cluster, ns, "web")
    crashing, pulling = sorted(p["metadata"]["name"] for p in cluster.pods(ns))
    crashed = Terminated(1, "Error", "2025-01-01T00:00:00Z", cluster.emulator.handler.apiserver.now())
    cluster.emulator.set_container_state(ns, crashing, "web", Waiting("CrashLoopBackOff", "back-off 20s"),
                                         restart_count=3, last_state=crashed)
    cluster.emulator.set_container_state(ns, pulling, "web", Waiting("ImagePullBackOff", 'Back-off pulling image'))
    rows = {line.split()[0]: line.split() for line in cluster.kubectl("-n", ns, "get", "pods").stdout.splitlines()}
    assert rows["NAME"] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[crashing][1:5] == ["0/1", "CrashLoopBackOff", "3", "(0s"] or rows[crashing][1:4] == \
        ["0/1", "CrashLoopBackOff", "3"]
    assert rows[pulling][1:4] == ["0/1", "ImagePullBackOff", "0"]
    phases = {p["metadata"]["name"]: p["status"]["phase"] for p in cluster.pods(ns)}
    assert phases == {crashing: "Running", pulling: "Pending"}
    wide = cluster.kubectl("-n", ns, "get", "rs", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[1:4] == ["2", "2", "0"]
    deployment = cluster.kubectl("-n", ns, "get", "deploy", "web", "--no-headers").stdout.split()
    assert deployment[:4] == ["web", "0/2", "2", "0"]


def test_an_immutable_config_map_keeps_its_data(cluster):
    """ValidateConfigMapUpdate: with `immutable: true` the data and the flag itself cannot change (422);
    its labels can."""
    ns = cluster.namespace()
    cluster.core.create_namespaced_config_map(ns, {"metadata": {"name": "rev-1"}, "immutable": True,
                                                   "data": {"runtime.yaml": "a"}})
    for patch, field in (({"data": {"runtime.yaml": "b"}}, "data"), ({"immutable": False}, "immutable")):
        with pytest.raises(client.ApiException) as error:
            cluster.core.patch_namespaced_config_map("rev-1", ns, patch)
        assert error.value.status == 422
        assert f"{field}: Forbidden: field is immutable when `immutable` is set" in error.value.body
    cluster.core.patch_namespaced_config_map("rev-1", ns, {"metadata": {"labels": {"kept": "yes"}}})
    assert cluster.core.read_namespaced_config_map("rev-1", ns).data == {"runtime.yaml": "a"}


def test_kubectl_get_nodes_and_events(cluster):
    """The kubelet registers a Ready Node; `kubectl get events` prints LAST SEEN TYPE REASON OBJECT MESSAGE
    (the Event printer) for the controllers' events."""
    ns = cluster.namespace()
    apply(cluster, ns, manifest("web", replicas=1))
    rollout_status(cluster, ns, "web")
    node = cluster.kubectl("get", "nodes", "--no-headers").stdout.split()
    assert node[:2] == ["tradeops-node", "Ready"]
    lines = cluster.kubectl("-n", ns, "get", "events").stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any(line.split()[2:4] == ["ScalingReplicaSet", "deployment/web"] for line in lines[1:])
