"""Crash loops that pass for healthy between restarts — pure: container restarts counted in a time window.

A container that becomes Ready, crashes, restarts and is Ready again shows `CrashLoopBackOff` only while it
waits out a back-off; in between it is Running and may be Ready, and a reconcile that looks then sees nothing
wrong. So the operator keeps, in `status.restarts`, when it saw each container of the symbol's pods restart,
and calls it a crash loop when one container restarted `spec.rollout.crashLoopRestarts` times within
`spec.rollout.crashLoopWindowSeconds` — whatever its state at the moment.

A restart is dated by the container's own record when it has one (`lastState.terminated.finishedAt`: the
newest); restarts the operator did not see one by one (it was down, two happened between two looks) are dated
at the earliest moment they can have happened (the previous restart seen, or the pod's start): a count never
reads as a loop sooner than the restarts can prove."""

from __future__ import annotations

from typing import Any

from trading_operator import naming
from trading_operator.api import ContainerRestarts, RolloutSettings
from trading_operator.conditions import Reason
from trading_operator.progress import MESSAGE_LIMIT, NotReady
from trading_operator.timestamps import seconds_between

Manifest = dict[str, Any]
TIMES_KEPT = 20
"""Restart times kept per container: the largest `crashLoopRestarts` allowed."""


def _revision(pod: Manifest) -> int | None:
    value = str(pod.get("metadata", {}).get("labels", {}).get(naming.REVISION_LABEL, ""))
    return int(value) if value.isdigit() else None


def _pod_start(pod: Manifest) -> str | None:
    status = pod.get("status") or {}
    started = status.get("startTime") or pod.get("metadata", {}).get("creationTimestamp")
    return str(started) if started else None


def track(previous: list[ContainerRestarts], pods: list[Manifest], now: str,
          window_seconds: int) -> list[ContainerRestarts]:
    """The restart records after looking at `pods`: one per container of a pod that has restarted, with the
    times of its restarts within the window (newest last). Pods that are gone are forgotten."""
    known = {(r.pod, r.container): r for r in previous}
    records = []
    for pod in pods:
        name, revision = str(pod.get("metadata", {}).get("name", "")), _revision(pod)
        if not name or revision is None:
            continue
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            count = int(container.get("restartCount") or 0)
            if count == 0:
                continue
            before = known.get((name, str(container.get("name"))))
            times = list(before.times) if before is not None and before.count <= count else []
            seen = before.count if before is not None and before.count <= count else 0
            new = count - seen
            if new:
                last = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
                earliest = times[-1] if times else _pod_start(pod)
                undated = [earliest or last or now] * (new - 1)
                times = [*times, *undated, last or earliest or now]
            times = [t for t in times if seconds_between(t, now) < window_seconds][-TIMES_KEPT:]
            records.append(ContainerRestarts(pod=name, container=str(container.get("name")), revision=revision,
                                             count=count, times=times))
    return records


def crash_loop(records: list[ContainerRestarts], pods: list[Manifest], revision: int, settings: RolloutSettings,
               now: str) -> NotReady | None:
    """A container of `revision` that restarted `crashLoopRestarts` times within the window, if any, with its
    last exit and last words."""
    window = settings.crash_loop_window_seconds
    for record in records:
        recent = [t for t in record.times if seconds_between(t, now) < window]
        if record.revision != revision or len(recent) < settings.crash_loop_restarts:
            continue
        pod: Manifest = next((p for p in pods if p.get("metadata", {}).get("name") == record.pod), {})
        container: Manifest = next((c for c in (pod.get("status") or {}).get("containerStatuses") or []
                                    if c.get("name") == record.container), {})
        last = (container.get("lastState") or {}).get("terminated") or {}
        said = " ".join(str(last.get("message") or "").split())[-MESSAGE_LIMIT:]
        exit_detail = f"; last exit code {last.get('exitCode')} ({last.get('reason')})" if last else ""
        return NotReady(Reason.CRASH_LOOP_BACK_OFF,
                        f"pod {record.pod}: container {record.container} restarted {len(recent)} times within "
                        f"{window}s (limit {settings.crash_loop_restarts}), {record.count} restarts in all"
                        f"{exit_detail}{f': {said}' if said else ''}")
    return None


def recently_restarted(pod: Manifest, now: str, within_seconds: float) -> bool:
    """A container of the pod ended within `within_seconds`: worth a reconcile even when it is Ready again."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if int(container.get("restartCount") or 0) and finished and seconds_between(finished, now) < within_seconds:
            return True
    return False
