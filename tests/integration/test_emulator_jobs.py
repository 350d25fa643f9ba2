"""Jobs in the emulator, driven as users drive a cluster (the kubernetes client, kubectl) with the simulated
kubelet telling how each container ends. Each test names the upstream behaviour it pins
(kubernetes/pkg/controller/job as of v1.30, pkg/apis/batch defaults and validation, the TTL-after-finished
controller); the same controller runs real processes in the devstack (tests/integration/test_devstack.py)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack.emulator import EmulatorThread, Running, SimulatedKubelet, Terminated, write_kubeconfig
from devstack.processes import find_kubectl, wait_for
from tests.integration.emulator_fixtures import api_client_for, unique_namespace

KUBECTL = find_kubectl()
BACKOFF = 1.0
"""The failure back-off of these tests' Job controller (10 s upstream)."""


@dataclass
class Cluster:
    emulator: EmulatorThread
    kubeconfig: pathlib.Path
    batch: client.BatchV1Api
    core: client.CoreV1Api

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], capture_output=True,
                              text=True, timeout=60)

    def namespace(self) -> str:
        name = unique_namespace("j")
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def job(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.emulator.get_object("batch/v1", "jobs", ns, name)

    def status(self, ns: str, name: str) -> dict[str, Any]:
        job = self.job(ns, name)
        assert job is not None
        return job.get("status") or {}

    def pods(self, ns: str) -> list[dict[str, Any]]:
        return sorted(self.emulator.list_objects("v1", "pods", ns), key=lambda p: p["metadata"]["creationTimestamp"])

    def live_pods(self, ns: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(ns) if not p["metadata"].get("deletionTimestamp")
                and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]

    def end(self, ns: str, pod: str, exit_code: int) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.emulator.set_container_state(ns, pod, "main", Terminated(exit_code, "Completed" if exit_code == 0
                                                                      else "Error", now, now))

    def events(self, ns: str) -> list[tuple[str, str, str]]:
        return [(e["type"], e["reason"], e["message"]) for e in self.emulator.list_objects("v1", "events", ns)
                if e["involvedObject"]["kind"] == "Job"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with EmulatorThread(kubelet=SimulatedKubelet(ready_delay=0.05), job_backoff_seconds=BACKOFF) as emulator:
        kubeconfig = write_kubeconfig(tmp_path_factory.mktemp("jobs") / "kubeconfig", emulator.url)
        with api_client_for(emulator.url) as api:
            yield Cluster(emulator, kubeconfig, client.BatchV1Api(api), client.CoreV1Api(api))


def job(name: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "restartPolicy": restart, "containers": [{"name": "main", "image": "busybox:1.36"}]}}}}


def one_live_pod(cluster: Cluster, ns: str) -> dict[str, Any]:
    return wait_for(lambda: (pods := cluster.live_pods(ns)) and len(pods) == 1 and pods[0], 5, "one live pod")


def condition(cluster: Cluster, ns: str, name: str, type_: str) -> dict[str, Any] | None:
    return next((c for c in cluster.status(ns, name).get("conditions") or [] if c["type"] == type_), None)


def test_a_job_runs_one_labelled_owned_pod_and_completes_when_it_succeeds(cluster):
    """SetDefaults_Job and generateSelector (the controller-uid selector and the job-name/controller-uid
    labels on the template); manageJob creates one Pod owned by the Job; a succeeded Pod makes the Job
    Complete with completionTime and the Completed Event; `kubectl wait --for=condition=complete` returns."""
    ns = cluster.namespace()
    cluster.batch.create_namespaced_job(ns, job("train"))
    created = cluster.job(ns, "train")
    assert created is not None
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert (created["spec"]["backoffLimit"], created["spec"]["completions"], created["spec"]["parallelism"]) == \
        (6, 1, 1)
    pod = one_live_pod(cluster, ns)
    labels = pod["metadata"]["labels"]
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "train"
    assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"] == uid
    assert labels["app"] == "train"
    assert pod["metadata"]["name"].startswith("train-")
    [owner] = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Job", "train", uid, True)
    wait_for(lambda: cluster.status(ns, "train").get("active") == 1, 5, "status.active 1")
    assert cluster.status(ns, "train")["startTime"]

    cluster.end(ns, pod["metadata"]["name"], 0)
    waited = cluster.kubectl("-n", ns, "wait", "--for=condition=complete", "job/train", "--timeout=10s")
    assert waited.returncode == 0, waited.stderr
    status = cluster.status(ns, "train")
    assert status["succeeded"] == 1
    assert "active" not in status
    assert "failed" not in status
    assert status["completionTime"] >= status["startTime"]
    assert condition(cluster, ns, "train", "Failed") is None
    assert ("Normal", "Completed", "Job completed") in cluster.events(ns)
    assert [p["status"]["phase"] for p in cluster.pods(ns)] == ["Succeeded"]
    printed = cluster.kubectl("-n", ns, "get", "jobs", "--no-headers").stdout.split()
    assert printed[:3] == ["train", "Complete", "1/1"]
    assert re.fullmatch(r"\d+s", printed[3])


def test_with_restart_policy_never_a_failed_pod_is_replaced_after_the_back_off_until_the_limit(cluster):
    """restartPolicy Never: each failed Pod is kept and a new one created after the failure back-off;
    failed > backoffLimit makes the Job Failed with BackoffLimitExceeded (no completionTime)."""
    ns = cluster.namespace()
    cluster.batch.create_namespaced_job(ns, job("train", backoffLimit=1))
    first = one_live_pod(cluster, ns)
    cluster.end(ns, first["metadata"]["name"], 1)
    failed_at = time.monotonic()
    second = wait_for(lambda: (pods := cluster.live_pods(ns)) and pods[0]["metadata"]["uid"] !=
                      first["metadata"]["uid"] and pods[0], 5, "a new pod")
    assert time.monotonic() - failed_at >= BACKOFF * 0.8
    assert cluster.status(ns, "train")["failed"] == 1
    assert condition(cluster, ns, "train", "Failed") is None

    cluster.end(ns, second["metadata"]["name"], 1)
    failed = wait_for(lambda: condition(cluster, ns, "train", "Failed"), 5, "the Failed condition")
    assert (failed["status"], failed["reason"], failed["message"]) == \
        ("True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    status = cluster.status(ns, "train")
    assert status["failed"] == 2
    assert "completionTime" not in status
    assert [p["status"]["phase"] for p in cluster.pods(ns)] == ["Failed", "Failed"]
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in cluster.events(ns)
    time.sleep(BACKOFF * 1.5)
    assert len(cluster.pods(ns)) == 2  # a failed Job creates no more pods


def test_with_restart_policy_on_failure_the_restarts_in_place_count_against_the_limit(cluster):
    """restartPolicy OnFailure: the kubelet restarts the container in the same Pod; the restarts of the
    active Pods reaching backoffLimit fail the Job (pastBackoffLimitOnFailure) and its Pod is deleted."""
    ns = cluster.namespace()
    cluster.batch.create_namespaced_job(ns, job("train", restart="OnFailure", backoffLimit=2))
    pod = one_live_pod(cluster, ns)
    name = pod["metadata"]["name"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cluster.emulator.set_container_state(ns, name, "main", Running(now), restart_count=1,
                                         last_state=Terminated(1, "Error", now, now))
    time.sleep(0.5)
    assert condition(cluster, ns, "train", "Failed") is None
    assert [p["metadata"]["name"] for p in cluster.live_pods(ns)] == [name]  # restarted in place, not replaced
    cluster.emulator.set_container_state(ns, name, "main", Running(now), restart_count=2,
                                         last_state=Terminated(1, "Error", now, now))
    failed = wait_for(lambda: condition(cluster, ns, "train", "Failed"), 5, "the Failed condition")
    assert failed["reason"] == "BackoffLimitExceeded"
    wait_for(lambda: not cluster.pods(ns), 10, "the pod deleted")
    assert cluster.status(ns, "train")["failed"] == 1


def test_active_deadline_seconds_fails_the_job_and_stops_its_pod(cluster):
    """activeDeadlineSeconds from status.startTime: the Job fails with DeadlineExceeded and its running
    Pod is deleted."""
    ns = cluster.namespace()
    cluster.batch.create_namespaced_job(ns, job("train", activeDeadlineSeconds=2))
    pod = one_live_pod(cluster, ns)
    assert condition(cluster, ns, "train", "Failed") is None
    failed = wait_for(lambda: condition(cluster, ns, "train", "Failed"), 5, "the Failed condition")
    assert (failed["reason"], failed["message"]) == ("DeadlineExceeded", "Job was active longer than specified "
                                                                         "deadline")
    wait_for(lambda: pod["metadata"]["uid"] not in {p["metadata"]["uid"] for p in cluster.pods(ns)}, 40,
             "the pod stopped and deleted")
    assert cluster.status(ns, "train")["failed"] == 1


def test_a_finished_job_is_deleted_with_its_pods_after_ttl_seconds_after_finished(cluster):
    """The TTL-after-finished controller: a finished Job goes ttlSecondsAfterFinished after its finish."""
    ns = cluster.namespace()
    cluster.batch.create_namespaced_job(ns, job("train", ttlSecondsAfterFinished=1))
    pod = one_live_pod(cluster, ns)
    cluster.end(ns, pod["metadata"]["name"], 0)
    wait_for(lambda: condition(cluster, ns, "train", "Complete"), 5, "Complete")
    assert cluster.job(ns, "train") is not None
    wait_for(lambda: cluster.job(ns, "train") is None and not cluster.pods(ns), 10, "the job and its pod gone")


@pytest.mark.parametrize(("propagation", "pods_left"), [("Background", 0), ("Orphan", 1)])
def test_deleting_a_job_stops_its_pod_unless_orphaned(cluster, propagation, pods_left):
    """Garbage collection by ownerReference: deleting a running Job deletes its Pod (the kubelet stops
    the container); with propagationPolicy Orphan the Pod keeps running."""
    ns = cluster.namespace()
    cluster.batch.create_namespaced_job(ns, job("train"))
    one_live_pod(cluster, ns)
    cluster.batch.delete_namespaced_job("train", ns, propagation_policy=propagation)
    wait_for(lambda: len(cluster.live_pods(ns)) == pods_left, 40, f"{pods_left} pods left running")
    time.sleep(0.3)
    assert len(cluster.live_pods(ns)) == pods_left


def test_a_job_whose_pods_would_restart_always_is_refused(cluster):
    """ValidateJob: the template's restartPolicy is OnFailure or Never."""
    ns = cluster.namespace()
    with pytest.raises(ApiException) as refused:
        cluster.batch.create_namespaced_job(ns, job("train", restart="Always"))
    assert refused.value.status == 422
    [cause] = json.loads(refused.value.body)["details"]["causes"]
    assert cause == {"reason": "FieldValueNotSupported", "field": "spec.template.spec.restartPolicy",
                     "message": 'Unsupported value: "Always": supported values: "OnFailure", "Never"'}
    assert cluster.job(ns, "train") is None
