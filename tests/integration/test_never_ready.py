"""Revisions that never become Ready, and each revision's own config, on the local stack: the real operator
against the emulated API, whose kubelet runs every Pod as a real trading-runtime process (an exit is a
container restart with back-off, an image it cannot map is ErrImagePull), Prometheus scraping them.

The rollout faults (a config the runtime rejects, an unpullable image, failing readiness, a first revision that
never becomes ready) are marked `e2e`: with TRADEOPS_E2E_KUBECONFIG set they run against that cluster and its
operator instead (a real kubelet's back-off and pulls; no Prometheus is needed, pod-level failures fail a
revision whatever the analysis policy). The config test reads each pod's metrics at its pod IP, which a CI
runner cannot reach in kind: it stays on the local stack."""

from __future__ import annotations

import pathlib
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import kube_for, wait_for
from devstack.stack import start_analysis_stack
from trading_operator import naming
from trading_operator.builders import config_digest
from trading_operator.kube import CONFIGMAPS, KubeApi, Resource
from trading_operator.user_requests import RequestPayload, encode

from .operator_harness import (
    E2E_KUBECONFIG,
    PATIENCE,
    UNPULLABLE_IMAGE,
    condition,
    create_ts,
    events,
    new_namespace,
    patch_spec,
    runtime_config,
    status,
    wait_event,
    wait_status,
)

POLICIES = pathlib.Path(__file__).parent / "policies" / "analysis"
PODS = Resource("v1", "pods")
FAST = {"analysisCount": 3, "progressDeadlineSeconds": 30}
SLOW_DEADLINE = {"analysisCount": 3, "progressDeadlineSeconds": 300}
"""For the crash loops: the deadline must not end them first (a loaded machine starts the runtime slowly)."""
CRASHING = {"parameters": {"batchSize": 512, "queueCapacity": 100}}
"""Accepted by the schema, refused by the runtime at start ("no batch could ever be queued whole")."""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    """The local stack with its own operator (a fast kubelet back-off), or the e2e cluster and its operator."""
    if E2E_KUBECONFIG:
        yield kube_for(pathlib.Path(E2E_KUBECONFIG))
        return
    running = start_analysis_stack(tmp_path_factory.mktemp("never-ready"), POLICIES, time_scale=0.2)
    try:
        yield kube_for(running.kubeconfig)
    finally:
        running.stop()


def _stable(kube: KubeApi, name: str, symbol: str, **spec: object) -> str:
    namespace = new_namespace(kube)
    create_ts(kube, namespace, name, symbol=symbol, rollout=FAST, **spec)
    wait_status(kube, namespace, name, timeout=60, phase="Ready", currentRevision=1, stableRevision=1)
    return namespace


def _ready_revisions(kube: KubeApi, namespace: str) -> set[str]:
    return {p["metadata"]["labels"][naming.REVISION_LABEL] for p in kube.list_objects(PODS, namespace)
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))}


def _rolled_back(kube: KubeApi, namespace: str, name: str, timeout: float) -> dict[str, object]:
    final = wait_status(kube, namespace, name, timeout=timeout, phase="Degraded", currentRevision=1,
                        stableRevision=1, abortedRevision=2)
    assert final["analysis"]["revision"] == 2
    assert final["analysis"]["phase"] == "Failed"
    wait_for(lambda: _ready_revisions(kube, namespace) == {"1"}, 60 * PATIENCE, "only revision 1's pods ready")
    return final


@pytest.mark.e2e
def test_a_config_the_runtime_rejects_crash_loops_and_is_rolled_back(kube: KubeApi) -> None:
    namespace = new_namespace(kube)
    create_ts(kube, namespace, "spy", symbol="SPY", rollout=SLOW_DEADLINE)
    wait_status(kube, namespace, "spy", timeout=60, phase="Ready", currentRevision=1, stableRevision=1)
    patch_spec(kube, namespace, "spy", {"config": CRASHING})
    final = _rolled_back(kube, namespace, "spy", timeout=180)
    reason = str(final["lastRollback"]["reason"])  # type: ignore[index]
    assert reason.startswith("CrashLoopBackOff: pod spy-trading-")
    assert "no batch could ever be queued whole" in reason
    assert "no batch could ever be queued whole" in final["analysis"]["message"]  # type: ignore[index]
    assert "no batch could ever be queued whole" in condition(kube, namespace, "spy", "Degraded")["message"]
    rolled_back = [e for e in events(kube, namespace, "spy") if e["reason"] == "RolledBack"]
    assert len(rolled_back) == 1
    assert "never ready: " in rolled_back[0]["message"]


@pytest.mark.e2e
def test_an_image_the_stack_cannot_pull_is_rolled_back_at_the_progress_deadline(kube: KubeApi) -> None:
    namespace = _stable(kube, "qqq", "QQQ")
    patch_spec(kube, namespace, "qqq", {"image": UNPULLABLE_IMAGE})
    wait_for(lambda: any(e["reason"] in ("Failed", "BackOff") for e in kube.list_objects(
        Resource("v1", "events"), namespace) if e.get("involvedObject", {}).get("kind") == "Pod"), 30 * PATIENCE,
        "the kubelet failing to pull")
    assert status(kube, namespace, "qqq")["currentRevision"] == 2  # a pull may still succeed: not yet
    final = _rolled_back(kube, namespace, "qqq", timeout=90)
    reason = str(final["lastRollback"]["reason"])  # type: ignore[index]
    assert reason.split(":")[0] in ("ErrImagePull", "ImagePullBackOff")
    assert "progress deadline exceeded" in reason


@pytest.mark.e2e
def test_failing_readiness_is_rolled_back_at_the_progress_deadline(kube: KubeApi) -> None:
    namespace = _stable(kube, "es", "ES", market="futures-options")
    patch_spec(kube, namespace, "es", {"config": {"faultInjection": {"neverReady": True}}})
    final = _rolled_back(kube, namespace, "es", timeout=90)
    reason = str(final["lastRollback"]["reason"])  # type: ignore[index]
    assert reason.startswith("ProgressDeadlineExceeded: ")
    assert "(running, readiness probe failing)" in reason


@pytest.mark.e2e
def test_a_first_revision_that_never_becomes_ready_is_degraded_once(kube: KubeApi) -> None:
    namespace = new_namespace(kube)
    create_ts(kube, namespace, "spy", rollout=SLOW_DEADLINE, config=CRASHING)
    wait_status(kube, namespace, "spy", timeout=180, phase="Degraded", currentRevision=1, stableRevision=0)
    degraded = condition(kube, namespace, "spy", "Degraded")
    assert degraded["reason"] == "CrashLoopBackOff"
    assert "no stable revision to return to" in degraded["message"]
    assert "no batch could ever be queued whole" in degraded["message"]
    wait_event(kube, namespace, "spy", degraded["reason"])
    before = status(kube, namespace, "spy")
    wait_for(lambda: int(next((c["restartCount"] for p in kube.list_objects(PODS, namespace)
                               for c in p["status"].get("containerStatuses", [])), 0)) >= 2, 90 * PATIENCE,
             "more restarts")
    assert [e["reason"] for e in events(kube, namespace, "spy")].count(degraded["reason"]) == 1
    assert status(kube, namespace, "spy")["phase"] == "Degraded"
    assert status(kube, namespace, "spy")["currentRevision"] == before["currentRevision"] == 1
    patch_spec(kube, namespace, "spy", {"config": {"parameters": {"queueCapacity": 4096}}})  # the fix
    wait_status(kube, namespace, "spy", timeout=60, phase="Ready", currentRevision=2, stableRevision=2)


def _pod_config_hashes(kube: KubeApi, namespace: str) -> list[tuple[str, str, str]]:
    """(pod, revision label, config hash the runtime reports) for every pod serving its metrics."""
    seen = []
    for pod in kube.list_objects(PODS, namespace):
        address = pod.get("status", {}).get("podIP")
        if not address or pod["metadata"].get("deletionTimestamp"):
            continue
        try:
            text = urllib.request.urlopen(f"http://{address}:{naming.METRICS_PORT}/metrics", timeout=2).read()
        except OSError:
            continue
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                if sample.name == "tradeops_runtime_config_info":
                    seen.append((pod["metadata"]["name"], pod["metadata"]["labels"][naming.REVISION_LABEL],
                                 sample.labels["hash"]))
    return seen


def test_stable_pods_keep_their_config_through_a_surge_rollout_and_a_rollback_restores_its_bytes(
        kube: KubeApi) -> None:
    namespace = new_namespace(kube)
    create_ts(kube, namespace, "spy", replicas=2, rollout={"analysisCount": 20})
    wait_status(kube, namespace, "spy", timeout=60, phase="Ready", currentRevision=1, stableRevision=1)
    old = runtime_config(kube, namespace, "spy")
    assert old is not None
    old_bytes = old["data"][naming.CONFIG_KEY]
    old_hash = config_digest(old_bytes)
    patch_spec(kube, namespace, "spy", {"config": {"parameters": {"batchSize": 1024}}})
    observed: list[tuple[str, str, str]] = []

    def new_pods_report() -> bool:
        observed.extend(_pod_config_hashes(kube, namespace))
        return any(revision == "2" for _, revision, _ in observed)

    wait_for(new_pods_report, 60, "a revision-2 pod reporting its config", interval=0.2)
    wait_status(kube, namespace, "spy", timeout=60, currentRevision=2)
    observed.extend(_pod_config_hashes(kube, namespace))
    new = runtime_config(kube, namespace, "spy")
    assert new is not None
    new_hash = config_digest(new["data"][naming.CONFIG_KEY])
    assert new_hash != old_hash
    assert {(revision, digest) for _, revision, digest in observed} <= {("1", old_hash), ("2", new_hash)}
    assert ("1", old_hash) in {(revision, digest) for _, revision, digest in observed}
    symbols = Resource("trading.tradeops.io/v1alpha1", "tradingsymbols")
    request = RequestPayload(id="back-to-1", revision=2, generation=kube.get(symbols, namespace, "spy")["metadata"][
        "generation"], to_revision=1)
    kube.merge_patch(symbols, namespace, "spy",
                     {"metadata": {"annotations": {naming.ROLLBACK_ANNOTATION: encode(request)}}})
    wait_status(kube, namespace, "spy", timeout=60, currentRevision=1)
    restored = runtime_config(kube, namespace, "spy")
    assert restored is not None
    assert restored["metadata"]["name"] == old["metadata"]["name"]
    assert restored["data"][naming.CONFIG_KEY] == old_bytes
    wait_for(lambda: {d for _, r, d in _pod_config_hashes(kube, namespace) if r == "1"} == {old_hash}
             and len(_pod_config_hashes(kube, namespace)) == 2, 60, "both pods on revision 1's exact config")
    assert kube.get(CONFIGMAPS, namespace, old["metadata"]["name"])["immutable"] is True


def test_a_stable_revision_that_crashes_after_becoming_ready_stays_a_crash_loop_between_its_restarts(
        kube: KubeApi) -> None:
    """Ready, crash, restart, Ready again, ...: its restarts are counted in the window (2 in 600 s by default),
    so the symbol reads as crash looping while the container is Ready between two crashes, not only in the
    moments it waits out a back-off."""
    namespace = new_namespace(kube)
    create_ts(kube, namespace, "spy", rollout=SLOW_DEADLINE, config={"faultInjection": {"crashAfterSeconds": 4}})
    wait_status(kube, namespace, "spy", timeout=120, stableRevision=1, currentRevision=1)
    seen: list[tuple[bool, str, str]] = []

    def ready_while_degraded() -> bool:
        pods = kube.list_objects(PODS, namespace)
        ready = any(c.get("ready") and c.get("restartCount", 0) >= 3 for p in pods
                    for c in p["status"].get("containerStatuses", []))
        degraded = condition(kube, namespace, "spy", "Degraded")
        seen.append((ready, degraded.get("status", ""), degraded.get("message", "")))
        return ready and degraded.get("status") == "True" and "times within 600s" in degraded.get("message", "")

    wait_for(ready_while_degraded, 240, "the container Ready again after 3 restarts, the symbol still Degraded",
             interval=0.2)
    degraded = condition(kube, namespace, "spy", "Degraded")
    assert degraded["reason"] == "CrashLoopBackOff"
    assert "faultInjection.crashAfterSeconds" in degraded["message"]
    final = status(kube, namespace, "spy")
    assert final["stableRevision"] == final["currentRevision"] == 1  # nothing to roll back to: reported, not looped
    assert final["restarts"]
    assert final["restarts"][0]["revision"] == 1
    reported = [e["message"] for e in events(kube, namespace, "spy") if e["reason"] == "CrashLoopBackOff"]
    assert len(reported) == 1, reported  # one Event when the loop began, not one per flap
