"""A Pod's status as a kubelet writes it, pure: phase (`getPhase`), conditions
(`pkg/kubelet/status/generate.go`), container statuses and the QoS class. Kubelets (the emulator's
simulated one, the devstack's process one) keep typed container states and render them here."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

CONTAINER_CREATING = "ContainerCreating"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
OOM_KILLED = "OOMKilled"


@dataclass(frozen=True)
class Waiting:
    reason: str = CONTAINER_CREATING
    message: str = ""


@dataclass(frozen=True)
class Running:
    started_at: str


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str = ""
    container_id: str = ""
    signal: int = 0


ContainerState = Waiting | Running | Terminated


def exit_reason(exit_code: int, oom_killed: bool = False) -> str:
    """The reason a container runtime gives a terminated container."""
    if oom_killed:
        return OOM_KILLED
    return "Completed" if exit_code == 0 else "Error"


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    image: str
    state: ContainerState = Waiting()
    last_state: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    image_id: str = ""
    container_id: str = ""

    def evolve(self, **changes: Any) -> ContainerStatus:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> Obj:
        out: Obj = {"name": self.name, "state": _state_json(self.state),
                    "lastState": {"terminated": _state_json(self.last_state)["terminated"]} if self.last_state else {},
                    "ready": self.ready, "restartCount": self.restart_count, "image": self.image,
                    "imageID": self.image_id, "started": isinstance(self.state, Running)}
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def _state_json(state: ContainerState) -> Obj:
    if isinstance(state, Running):
        return {"running": {"startedAt": state.started_at}}
    if isinstance(state, Terminated):
        body: Obj = {"exitCode": state.exit_code, "reason": state.reason, "startedAt": state.started_at,
                     "finishedAt": state.finished_at}
        if state.message:
            body["message"] = state.message
        if state.signal:
            body["signal"] = state.signal
        if state.container_id:
            body["containerID"] = state.container_id
        return {"terminated": body}
    return {"waiting": {"reason": state.reason, **({"message": state.message} if state.message else {})}}


def pod_phase(restart_policy: str, containers: Sequence[ContainerStatus], terminal: bool = False) -> str:
    """getPhase: Pending while a container has not started; Running while one runs or all restart."""
    running = waiting = stopped = succeeded = 0
    for status in containers:
        if isinstance(status.state, Running):
            running += 1
        elif isinstance(status.state, Terminated):
            stopped += 1
            succeeded += status.state.exit_code == 0
        elif status.last_state is not None:
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if terminal:
            return "Succeeded" if succeeded == stopped else "Failed"
        if restart_policy == "Always":
            return "Running"
        if succeeded == stopped:
            return "Succeeded"
        return "Running" if restart_policy == "OnFailure" else "Failed"
    return "Pending"


def _condition(type_: str, ready: bool, unready: list[str], previous: Obj | None, now: str) -> Obj:
    status = "True" if ready else "False"
    condition: Obj = {"type": type_, "status": status, "lastProbeTime": None,
                      "lastTransitionTime": previous["lastTransitionTime"]
                      if previous is not None and previous.get("status") == status else now}
    if not ready:
        condition.update(reason="ContainersNotReady", message=f"containers with unready status: [{' '.join(unready)}]")
    return condition


def pod_conditions(containers: Sequence[ContainerStatus], phase: str, previous: Sequence[Obj], now: str) -> list[Obj]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady (GenerateContainersReadyCondition,
    GeneratePodReadyCondition), and PodScheduled as the scheduler set it."""
    before = {c["type"]: c for c in previous}
    unready = [c.name for c in containers if not c.ready]
    terminal = phase in ("Succeeded", "Failed")
    ready = not unready and not terminal
    if terminal:
        unready = []
    out = []
    for type_, value in (("PodReadyToStartContainers", not terminal), ("Initialized", True)):
        status = "True" if value else "False"
        previous_one = before.get(type_)
        out.append({"type": type_, "status": status, "lastProbeTime": None,
                    "lastTransitionTime": previous_one["lastTransitionTime"]
                    if previous_one is not None and previous_one.get("status") == status else now})
    ready_condition = _condition("Ready", ready, unready, before.get("Ready"), now)
    containers_ready = _condition("ContainersReady", ready, unready, before.get("ContainersReady"), now)
    if terminal:
        for condition in (ready_condition, containers_ready):
            condition.update(reason="PodCompleted", message="")
    out += [ready_condition, containers_ready]
    if "PodScheduled" in before:
        out.append(before["PodScheduled"])
    return out


def qos_class(spec: Obj) -> str:
    """GetPodQOS: Guaranteed when every container's requests equal its limits for cpu and memory,
    BestEffort when none sets any, Burstable otherwise."""
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, {**(r.get("limits") or {}), **(r.get("requests") or {})}
        if any(limits.get(k) is None or str(limits[k]) != str(requests.get(k)) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def pod_status(pod: Obj, containers: Sequence[ContainerStatus], pod_ip: str, host_ip: str, start_time: str,
               now: str, terminal: bool = False) -> Obj:
    """The status a kubelet writes for these container states (conditions keep their transition times)."""
    previous = pod.get("status") or {}
    phase = pod_phase(pod.get("spec", {}).get("restartPolicy", "Always"), containers, terminal)
    status: Obj = {
        "phase": phase,
        "conditions": pod_conditions(containers, phase, previous.get("conditions") or [], now),
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [c.to_json() for c in containers],
        "qosClass": qos_class(pod.get("spec", {})),
    }
    if pod_ip:
        status.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    return status
