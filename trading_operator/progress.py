"""Whether a revision's pods can ever become ready, and if not why — pure, from the Deployment and its Pods.

Two verdicts end a revision whatever its analysis says: a crash loop (a container in `CrashLoopBackOff`, or
OOM-killed, restarted and not ready) fails it at once, since every further restart only backs off longer; anything
else that keeps its pods unready (`ErrImagePull`/`ImagePullBackOff`, `CreateContainerConfigError`, a
readiness probe that never passes) fails it when the Deployment controller reports
`ProgressDeadlineExceeded` (`spec.rollout.progressDeadlineSeconds` without progress). The verdict names the
pod-level reason and the container's own last words, which is what a person would look up first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trading_operator import naming
from trading_operator.conditions import Reason

Manifest = dict[str, Any]

WAITING_PROBLEMS = {r.value: r for r in (
    Reason.CRASH_LOOP_BACK_OFF, Reason.ERR_IMAGE_PULL, Reason.IMAGE_PULL_BACK_OFF, Reason.INVALID_IMAGE_NAME,
    Reason.CREATE_CONTAINER_CONFIG_ERROR, Reason.CREATE_CONTAINER_ERROR, Reason.RUN_CONTAINER_ERROR)}
"""Waiting reasons that mean the container is failing, not merely starting (`ContainerCreating`)."""
MESSAGE_LIMIT = 300
CRASH_RESTARTS = 2
"""A container restarted this often after failing exits, and not ready, is crash looping even in the moments
it is starting again between two back-offs."""


@dataclass(frozen=True)
class NotReady:
    """Why a revision's pods will not become ready: a pod-level reason and the detail behind it."""

    reason: Reason
    """CrashLoopBackOff, OOMKilled, ErrImagePull, ..., or ProgressDeadlineExceeded (no pod-level reason)."""
    message: str

    def describe(self) -> str:
        return f"{self.reason}: {self.message}"


def _revision_of(obj: Manifest) -> str:
    return str(obj.get("metadata", {}).get("labels", {}).get(naming.REVISION_LABEL, ""))


def problem_of(pod: Manifest) -> NotReady | None:
    """The worst thing one pod's containers report, if anything."""
    name = pod.get("metadata", {}).get("name", "?")
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        restarts = int(container.get("restartCount") or 0)
        waiting = (container.get("state") or {}).get("waiting") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        said = " ".join(str(last.get("message") or "").split())[-MESSAGE_LIMIT:]
        exit_detail = f"; last exit code {last.get('exitCode')} ({last.get('reason')})" if last else ""
        words = f": {said}" if said else ""
        if last.get("reason") == Reason.OOM_KILLED.value and restarts and not container.get("ready"):
            return NotReady(Reason.OOM_KILLED, f"pod {name}: container {container.get('name')} was OOM-killed, "
                                        f"{restarts} restarts{words}")
        reason = waiting.get("reason")
        if reason is None and restarts >= CRASH_RESTARTS and last.get("exitCode") not in (None, 0) \
                and not container.get("ready"):
            reason = Reason.CRASH_LOOP_BACK_OFF.value  # between two back-offs: starting again, about to fail
        if reason in WAITING_PROBLEMS:
            detail = " ".join(str(waiting.get("message") or "").split())[:MESSAGE_LIMIT]
            return NotReady(WAITING_PROBLEMS[reason], f"pod {name}: container {container.get('name')} {reason}"
                                         f"{f' ({detail})' if detail else ''}, {restarts} restarts{exit_detail}{words}")
    return None


def not_ready(deployment: Manifest | None, pods: list[Manifest], restart_loop: NotReady | None = None) \
        -> NotReady | None:
    """Why the revision the Deployment runs cannot become ready, or None while it may still. `restart_loop`:
    the revision's containers restarting too often in a window (`restarts.crash_loop`), Ready or not."""
    if deployment is None:
        return None
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    revision = str(labels.get(naming.REVISION_LABEL, ""))
    problems = [p for p in (problem_of(pod) for pod in pods if _revision_of(pod) == revision) if p is not None]
    crash = next((p for p in problems if p.reason in (Reason.CRASH_LOOP_BACK_OFF, Reason.OOM_KILLED)), None)
    if crash is not None:
        return crash
    if restart_loop is not None:
        return restart_loop
    state = deployment.get("status") or {}
    current = int(state.get("observedGeneration") or 0) >= int(deployment.get("metadata", {}).get("generation", 0))
    progressing = next((c for c in state.get("conditions") or [] if c.get("type") == "Progressing"), None)
    if not current or progressing is None or progressing.get("reason") != Reason.PROGRESS_DEADLINE_EXCEEDED.value:
        return None
    if problems:
        return NotReady(problems[0].reason, f"{problems[0].message} (progress deadline exceeded)")
    unready = sorted(_unready_detail(p) for p in pods if _revision_of(p) == revision and not _ready(p))
    detail = f"; pods never ready: {', '.join(unready)}" if unready else ""
    return NotReady(Reason.PROGRESS_DEADLINE_EXCEEDED,
                    f"{progressing.get('message') or 'no progress within the deadline'}{detail}")


def _unready_detail(pod: Manifest) -> str:
    """A pod that never became ready: failing its readiness probe, or exiting (a crash loop still slower
    than the deadline), with the container's last words."""
    name = str(pod.get("metadata", {}).get("name", "?"))
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        last = (container.get("lastState") or {}).get("terminated") or {}
        if last.get("exitCode") not in (None, 0):
            said = " ".join(str(last.get("message") or "").split())[-MESSAGE_LIMIT:]
            return (f"{name} ({container.get('restartCount', 0)} restarts, last exit code {last['exitCode']}"
                    f"{f': {said}' if said else ''})")
    return f"{name} (running, readiness probe failing)"


def _ready(pod: Manifest) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
