"""A Deployment's status and conditions, pure: ported from kubernetes/pkg/controller/deployment
(`sync.go` calculateStatus, `progress.go` syncRolloutStatus, `util/deployment_util.go` conditions)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from devstack.emulator.rolling import ReplicaSetView, Strategy, max_unavailable
from trading_operator.timestamps import parse_time

Status = dict[str, Any]
Condition = dict[str, Any]

PROGRESSING, AVAILABLE, REPLICA_FAILURE = "Progressing", "Available", "ReplicaFailure"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


def epoch(timestamp: str) -> float:
    return parse_time(timestamp).timestamp()


def new_condition(type_: str, status: str, reason: str, message: str, now: str) -> Condition:
    """NewDeploymentCondition."""
    return {"type": type_, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def get_condition(status: Status, type_: str) -> Condition | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def remove_condition(status: Status, type_: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if not status["conditions"]:
        del status["conditions"]


def set_condition(status: Status, condition: Condition) -> None:
    """SetDeploymentCondition: same status and reason → unchanged; same status → keep lastTransitionTime;
    the condition moves to the end of the list."""
    current = get_condition(status, condition["type"])
    if current is not None and current["status"] == condition["status"] and current.get("reason") == \
            condition["reason"]:
        return
    if current is not None and current["status"] == condition["status"]:
        condition = {**condition, "lastTransitionTime": current["lastTransitionTime"]}
    status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != condition["type"]] + \
        [condition]


def calculate_status(replicas: int, generation: int, strategy: Strategy, all_rss: Sequence[ReplicaSetView],
                     new_rs: ReplicaSetView | None, old_status: Status, now: str) -> Status:
    """calculateStatus: counts from the ReplicaSets, and the Available condition."""
    available = sum(rs.available for rs in all_rss)
    total = sum(rs.replicas for rs in all_rss)
    status: Status = {
        "observedGeneration": generation,
        "replicas": sum(rs.actual for rs in all_rss),
        "updatedReplicas": new_rs.actual if new_rs is not None else 0,
        "readyReplicas": sum(rs.ready for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
    }
    if "collisionCount" in old_status:
        status["collisionCount"] = old_status["collisionCount"]
    if old_status.get("conditions"):
        status["conditions"] = copy.deepcopy(old_status["conditions"])
    if available >= replicas - max_unavailable(strategy, replicas):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.",
                                            now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return _omit_zeros(status)


def _omit_zeros(status: Status) -> Status:
    """Counts of zero are omitted on the wire (`omitempty`), except observedGeneration."""
    return {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}


def _count(status: Status, name: str) -> int:
    return int(status.get(name, 0))


def deployment_complete(replicas: int, generation: int, status: Status) -> bool:
    """DeploymentComplete."""
    return (_count(status, "updatedReplicas") == replicas and _count(status, "replicas") == replicas
            and _count(status, "availableReplicas") == replicas and _count(status, "observedGeneration") >= generation)


def deployment_progressing(old: Status, new: Status) -> bool:
    """DeploymentProgressing: more updated, ready or available pods, or fewer old ones."""
    old_old = _count(old, "replicas") - _count(old, "updatedReplicas")
    new_old = _count(new, "replicas") - _count(new, "updatedReplicas")
    return (_count(new, "updatedReplicas") > _count(old, "updatedReplicas") or new_old < old_old
            or _count(new, "readyReplicas") > _count(old, "readyReplicas")
            or _count(new, "availableReplicas") > _count(old, "availableReplicas"))


def deployment_timed_out(deadline_seconds: int | None, status: Status, now_epoch: float) -> bool:
    """DeploymentTimedOut: no progress reported for progressDeadlineSeconds since the Progressing
    condition's lastUpdateTime."""
    if deadline_seconds is None:
        return False
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    return epoch(condition["lastUpdateTime"]) + deadline_seconds < now_epoch


def rollout_status(name: str, replicas: int, generation: int, deadline_seconds: int | None, strategy: Strategy,
                   all_rss: Sequence[ReplicaSetView], new_rs: ReplicaSetView | None, old_status: Status,
                   now: str, now_epoch: float) -> Status:
    """syncRolloutStatus: the status, with the Progressing condition estimated against the deadline."""
    status = calculate_status(replicas, generation, strategy, all_rss, new_rs, old_status, now)
    if deadline_seconds is None:
        if get_condition(status, PROGRESSING) is not None:
            remove_condition(status, PROGRESSING)
        return status
    current = get_condition(old_status, PROGRESSING)
    complete_before = status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None \
        and current.get("reason") == NEW_RS_AVAILABLE
    if complete_before:
        return status
    subject = f'ReplicaSet "{new_rs.name}"' if new_rs is not None else f'Deployment "{name}"'
    if deployment_complete(replicas, generation, status):
        set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                            f"{subject} has successfully progressed.", now))
    elif deployment_progressing(old_status, status):
        condition = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
        if current is not None:
            if current["status"] == "True":
                condition["lastTransitionTime"] = current["lastTransitionTime"]
            remove_condition(status, PROGRESSING)
        set_condition(status, condition)
    elif deployment_timed_out(deadline_seconds, status, now_epoch):
        set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, f"{subject} has timed out progressing.",
                                            now))
    return status


def seconds_until_deadline(deadline_seconds: int | None, status: Status, now_epoch: float) -> float | None:
    """requeueStuckDeployment: when to look again for a rollout that may time out."""
    condition = get_condition(status, PROGRESSING)
    if deadline_seconds is None or condition is None or condition.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    if condition.get("status") != "True":
        return None
    after = epoch(condition["lastUpdateTime"]) + deadline_seconds - now_epoch
    return max(after, 0.0) + 1.0  # timestamps have second resolution: look once the deadline has surely passed
