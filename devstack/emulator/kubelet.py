"""Kubelets: what runs the Pods bound to a node and writes their status. The emulator runs one, pluggable:

- `Kubelet` (the interface and the common part): registers its Node, gives every Pod bound to it a worker
  (an asyncio task on the server's loop), renders and writes the Pod's status from typed container states
  (`podstatus.py`), and, when the Pod is deleted, lets the worker stop its containers within the grace
  period, writes the terminal phase and deletes the Pod for good (grace 0), as a kubelet does.
- `SimulatedKubelet` (the default; no processes): containers go Running and Ready `ready_delay` seconds
  after the Pod is bound; a test sets any container state (`set_container_state`).
- `devstack.fleet.ProcessKubelet`: each Pod's container a real process (the trading runtime, or the
  training pipeline of a retraining Job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.emulator.events import EventRecorder
from devstack.emulator.objects import ApiError, Objects
from devstack.emulator.podstatus import ContainerState, ContainerStatus, Running, Terminated, pod_status
from devstack.emulator.store import Key, WatchEvent

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KUBELET_VERSION = "v1.30.0-tradeops-emulator"


@dataclass
class PodWorker:
    """One Pod as its kubelet runs it."""

    key: Key
    uid: str
    pod: Obj
    pod_ip: str
    start_time: str
    containers: dict[str, ContainerStatus] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def namespace(self) -> str:
        return self.key[2]

    @property
    def name(self) -> str:
        return self.key[3]

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    @property
    def grace_seconds(self) -> float:
        return float(self.pod["metadata"].get("deletionGracePeriodSeconds") or 0)

    def spec_containers(self) -> list[Obj]:
        return list(self.pod.get("spec", {}).get("containers") or [])

    async def wait(self, until: Callable[[], bool], within: float | None = None) -> bool:
        """Wait until `until()` holds (re-checked on every change to the Pod) or `within` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while not until():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True


def container_id() -> str:
    return f"emulator://{secrets.token_hex(32)}"


class Kubelet:
    """The common part of every kubelet; subclasses implement `run_pod` (and may override `allocate_ip`)."""

    node_name = "tradeops-node"
    host_ip = "127.0.0.1"

    def __init__(self) -> None:
        self.workers: dict[str, PodWorker] = {}
        self._objects: Objects | None = None
        self._recorder: EventRecorder | None = None

    # Wiring --------------------------------------------------------------------------------------

    def attach(self, objects: Objects, recorder: EventRecorder) -> None:
        """Connect to the API server's objects (called once by the emulator)."""
        self._objects, self._recorder = objects, recorder

    @property
    def objects(self) -> Objects:
        assert self._objects is not None, "the kubelet is not attached to an emulator"
        return self._objects

    @property
    def recorder(self) -> EventRecorder:
        assert self._recorder is not None, "the kubelet is not attached to an emulator"
        return self._recorder

    async def start(self) -> None:
        """Register the Node (on the server's loop, before serving)."""
        nodes = self.objects.resource("v1", "nodes")
        if self.objects.find(nodes, None, self.node_name) is None:
            node = self.node_object()
            created = self.objects.create(nodes, None, node)  # registration, then the status, as kubelets do
            self.objects.write_status(nodes, created, node["status"])
        for pod in list(self.objects.items(self.objects.resource("v1", "pods"))):
            self.observe(WatchEvent(self.objects.store.revision, "", "pods", "ADDED", pod))

    def node_object(self) -> Obj:
        now = self.objects.now()
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node_name, "labels": {"kubernetes.io/hostname": self.node_name,
                                                            "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                                "lastTransitionTime": now}],
                "addresses": [{"type": "InternalIP", "address": self.host_ip},
                              {"type": "Hostname", "address": self.node_name}],
                "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux",
                             "architecture": "amd64", "containerRuntimeVersion": self.runtime_version()},
            },
        }

    def runtime_version(self) -> str:
        return "emulator://simulated"

    async def stop(self) -> None:
        """Stop every worker (the emulator is shutting down)."""
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.workers.clear()

    # Pods of this node ---------------------------------------------------------------------------

    def observe(self, event: WatchEvent) -> None:
        if (event.group, event.plural) != ("", "pods"):
            return
        pod = event.object
        if pod.get("spec", {}).get("nodeName") != self.node_name:
            return
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if event.type == "DELETED":
            if worker is not None and worker.task is not None:
                worker.task.cancel()  # deleted with grace 0 behind the kubelet's back: stop at once
            return
        if worker is None:
            meta = pod["metadata"]
            key = ("", "pods", meta.get("namespace", ""), meta["name"])
            worker = PodWorker(key, uid, pod, self.allocate_ip(pod), self.objects.now())
            self.workers[uid] = worker
            worker.task = asyncio.get_running_loop().create_task(self._run(worker), name=f"pod {meta['name']}")
            return
        old = event.old or {}
        worker.pod = pod
        if old.get("spec") != pod.get("spec") or old.get("metadata", {}).get("deletionTimestamp") != \
                pod["metadata"].get("deletionTimestamp") or old.get("metadata", {}).get(
                    "deletionGracePeriodSeconds") != pod["metadata"].get("deletionGracePeriodSeconds"):
            worker.changed.set()

    async def _run(self, worker: PodWorker) -> None:
        try:
            await self.run_pod(worker)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: pod %s/%s failed", worker.namespace, worker.name)
        finally:
            self.workers.pop(worker.uid, None)
            self.release_ip(worker.pod_ip)
            await self.cleanup_pod(worker)

    async def run_pod(self, worker: PodWorker) -> None:
        raise NotImplementedError

    async def cleanup_pod(self, worker: PodWorker) -> None:
        """Release what the pod held (processes, files) — also when its worker is cancelled."""

    def allocate_ip(self, pod: Obj) -> str:
        raise NotImplementedError

    def release_ip(self, ip: str) -> None:
        """Give an address back."""

    def logs(self, namespace: str, pod: str, container: str | None, previous: bool) -> str:
        """A container's log (`GET .../pods/NAME/log`); the simulated kubelet's containers write none."""
        if not any((w.namespace, w.name) == (namespace, pod) for w in self.workers.values()):
            raise ApiError(400, "BadRequest", f'pod "{pod}" is not running on {self.node_name}')
        return ""

    # Writing status ------------------------------------------------------------------------------

    def current(self, worker: PodWorker) -> Obj | None:
        pod = self.objects.store.get(worker.key)
        return pod if pod is not None and pod["metadata"].get("uid") == worker.uid else None

    def write_status(self, worker: PodWorker, terminal: bool = False) -> None:
        pod = self.current(worker)
        if pod is None:
            return
        containers = [worker.containers[c["name"]] for c in worker.spec_containers() if c["name"] in worker.containers]
        status = pod_status(pod, containers, worker.pod_ip, self.host_ip, worker.start_time, self.objects.now(),
                            terminal)
        written = self.objects.write_status(self.objects.resource("v1", "pods"), pod, status)
        worker.pod = written

    def event(self, worker: PodWorker, type_: str, reason: str, message: str, container: str = "") -> None:
        pod = self.current(worker)
        if pod is not None:
            self.recorder.record(pod, type_, reason, message, "kubelet", self.node_name,
                                 f"spec.containers{{{container}}}" if container else "")

    def finish(self, worker: PodWorker) -> None:
        """The containers have stopped: write the terminal phase and delete the Pod for good."""
        self.write_status(worker, terminal=True)
        pod = self.current(worker)
        if pod is not None:
            with contextlib.suppress(ApiError):
                self.objects.delete(self.objects.resource("v1", "pods"), worker.namespace, worker.name,
                                    grace_seconds=0)


class SimulatedKubelet(Kubelet):
    """Containers Running and Ready `ready_delay` seconds after the Pod is bound, no processes; a test sets
    any container's state with `set_container_state`, and from then on the kubelet leaves that Pod's
    containers as the test says until it is deleted."""

    def __init__(self, ready_delay: float = 0.05) -> None:
        super().__init__()
        self.ready_delay = ready_delay
        self._addresses = 0
        self._scripted: set[str] = set()

    def allocate_ip(self, pod: Obj) -> str:
        self._addresses += 1
        return f"10.244.{self._addresses // 250 % 250}.{self._addresses % 250 + 1}"

    async def run_pod(self, worker: PodWorker) -> None:
        worker.containers = {c["name"]: ContainerStatus(c["name"], str(c.get("image", "")))
                             for c in worker.spec_containers()}
        self.write_status(worker)
        started = await worker.wait(lambda: worker.deleting or worker.uid in self._scripted, self.ready_delay)
        if not started and not worker.deleting:
            now = self.objects.now()
            for name, status in worker.containers.items():
                worker.containers[name] = status.evolve(state=Running(now), ready=True, container_id=container_id(),
                                                        image_id=f"emulator://{status.image}")
            self.write_status(worker)
        await worker.wait(lambda: worker.deleting)
        now = self.objects.now()
        for name, status in worker.containers.items():
            if isinstance(status.state, Running):
                worker.containers[name] = status.evolve(
                    state=Terminated(0, "Completed", status.state.started_at, now, container_id=status.container_id),
                    ready=False)
        self.finish(worker)

    async def cleanup_pod(self, worker: PodWorker) -> None:
        self._scripted.discard(worker.uid)

    def set_container_state(self, namespace: str, pod: str, container: str, state: ContainerState | None = None,
                            *, ready: bool | None = None, restart_count: int | None = None,
                            last_state: Terminated | None = None) -> None:
        """Set what a container reports (e.g. `Waiting("CrashLoopBackOff", ...)` with a `last_state`, or
        `Terminated(137, "OOMKilled", ...)`) and write the Pod's status."""
        worker = next((w for w in self.workers.values() if w.key == ("", "pods", namespace, pod)), None)
        if worker is None:
            raise KeyError(f"no pod {namespace}/{pod} on {self.node_name}")
        self._scripted.add(worker.uid)
        current = worker.containers[container]
        changes: dict[str, Any] = {}
        if state is not None:
            changes["state"] = state
            changes["ready"] = False if ready is None else ready
        if ready is not None:
            changes["ready"] = ready
        if restart_count is not None:
            changes["restart_count"] = restart_count
        if last_state is not None:
            changes["last_state"] = last_state
        worker.containers[container] = current.evolve(**changes)
        worker.changed.set()
        self.write_status(worker)
