"""Whether a revision's pods can still become ready (`progress.not_ready`), table-driven over pod states
as the kubelet reports them."""

from __future__ import annotations

from typing import Any

import pytest

from trading_operator import naming
from trading_operator.conditions import Reason
from trading_operator.progress import not_ready


def deployment(revision: int = 2, deadline_exceeded: bool = False, observed: int = 3) -> dict[str, Any]:
    conditions = [{"type": "Progressing", "status": "False" if deadline_exceeded else "True",
                   "reason": "ProgressDeadlineExceeded" if deadline_exceeded else "ReplicaSetUpdated",
                   "message": 'ReplicaSet "spy-trading-x" has timed out progressing.'}]
    return {"metadata": {"generation": 3},
            "spec": {"template": {"metadata": {"labels": {naming.REVISION_LABEL: str(revision)}}}},
            "status": {"observedGeneration": observed, "conditions": conditions}}


def pod(revision: int = 2, waiting: str | None = None, restarts: int = 0, last: dict[str, Any] | None = None,
        ready: bool = False) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "detail"}} if waiting else {"running": {}}
    return {"metadata": {"name": f"spy-trading-{revision}-a", "labels": {naming.REVISION_LABEL: str(revision)}},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"name": "trading", "restartCount": restarts, "state": state,
                                              "ready": ready, "lastState": {"terminated": last} if last else {}}]}}


OOM = {"exitCode": 137, "reason": "OOMKilled"}


@pytest.mark.parametrize(("dep", "pods", "reason"), [
    (deployment(), [pod(waiting="ContainerCreating")], None),
    (deployment(), [pod(waiting="CrashLoopBackOff", restarts=2)], Reason.CRASH_LOOP_BACK_OFF),
    (deployment(), [pod(restarts=1, last=OOM)], Reason.OOM_KILLED),
    (deployment(), [pod(restarts=1, last=OOM, ready=True)], None),
    (deployment(), [pod(restarts=2, last={"exitCode": 2, "reason": "Error"})], Reason.CRASH_LOOP_BACK_OFF),
    (deployment(), [pod(restarts=1, last={"exitCode": 2, "reason": "Error"})], None),
    (deployment(), [pod(restarts=4, last={"exitCode": 2, "reason": "Error"}, ready=True)], None),
    (deployment(), [pod(waiting="ImagePullBackOff")], None),
    (deployment(deadline_exceeded=True), [pod(waiting="ImagePullBackOff")], Reason.IMAGE_PULL_BACK_OFF),
    (deployment(deadline_exceeded=True), [pod(waiting="CreateContainerConfigError")],
     Reason.CREATE_CONTAINER_CONFIG_ERROR),
    (deployment(deadline_exceeded=True), [pod()], Reason.PROGRESS_DEADLINE_EXCEEDED),
    (deployment(deadline_exceeded=True, observed=2), [pod()], None),
    (deployment(), [pod(revision=1, waiting="CrashLoopBackOff", restarts=5)], None),
    (None, [pod(waiting="CrashLoopBackOff")], None),
], ids=["starting", "crash-loop", "oom-restarted", "oom-recovered", "crash-loop-between-back-offs", "one-restart",
        "recovered", "pull-before-deadline", "pull-at-deadline",
        "config-error-at-deadline", "readiness-at-deadline", "stale-condition", "other-revision", "no-deployment"])
def test_not_ready(dep: dict[str, Any] | None, pods: list[dict[str, Any]], reason: Reason | None) -> None:
    found = not_ready(dep, pods)
    assert (found.reason if found else None) == reason


def test_the_message_names_the_pod_and_the_containers_last_words() -> None:
    last = {"exitCode": 2, "reason": "Error", "message": "cannot start: queueCapacity (100) < batchSize (512)"}
    found = not_ready(deployment(), [pod(waiting="CrashLoopBackOff", restarts=3, last=last)])
    assert found is not None
    assert found.message.startswith("pod spy-trading-2-a: container trading CrashLoopBackOff (detail), 3 restarts")
    assert "last exit code 2 (Error): cannot start: queueCapacity (100) < batchSize (512)" in found.message


def test_failing_readiness_names_the_pods_that_never_became_ready() -> None:
    found = not_ready(deployment(deadline_exceeded=True), [pod(), pod(revision=1, ready=True)])
    assert found is not None
    assert "pods never ready: spy-trading-2-a (running, readiness probe failing)" in found.message
