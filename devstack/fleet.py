"""Trading-runtime processes standing in for the pods of the Deployments the operator writes to the emulated
API.

`RuntimeFleet.hook` is the emulator's Deployment readiness hook: when a Deployment's template changes it
stops the old process, writes the Deployment's ConfigMap to files, starts `python -m trading_runtime`
on a free port, waits for `/readyz`, publishes the process to Prometheus (file service discovery, with
the labels a PodMonitor would give a pod: namespace, symbol, revision, track) and reports it ready.
Used by the integration tests, the rollback benchmark and the demo; nothing here is a mock of the
runtime or of Prometheus — they are the real programs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.processes import PrometheusProcess, free_port, http_ok, stop_process
from trading_operator import naming

Obj = dict[str, Any]


@dataclass
class RuntimePod:
    """One runtime process standing in for the pods of a Deployment's template."""

    key: tuple[str, str, str, str]
    process: subprocess.Popen[bytes]
    port: int
    revision: str
    name: str
    ready_at: float = 0.0


@dataclass
class RuntimeFleet:
    """Runtime processes for the Deployments of the emulated API (see the module docstring).

    With `put_object`/`remove_object`/`report_ready` it also plays kubelet and ReplicaSet: each process
    has a Pod object (Ready, labelled like the template, owned by the Deployment), and a Pod deleted
    through the API is replaced by a new process and Pod, the Deployment reporting 0 ready meanwhile."""

    workdir: pathlib.Path
    feed_url: str
    prometheus: PrometheusProcess
    get_object: Callable[[str, str, str, str], Obj | None]
    """The emulator's store lookup (api_version, plural, namespace, name)."""
    put_object: Callable[[str, str, Obj], Obj] | None = None
    remove_object: Callable[[str, str, str, str], None] | None = None
    report_ready: Callable[[str, str, int], Awaitable[None]] | None = None
    ready_timeout: float = 60.0
    pods: dict[tuple[str, str], RuntimePod] = field(default_factory=dict)
    locks: defaultdict[tuple[str, str], asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    history: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(wall-clock time, namespace/name, revision, event) — when each revision's process became ready."""
    stopping: list[subprocess.Popen[bytes]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    watcher: asyncio.Task[None] | None = None

    async def hook(self, deployment: Obj) -> int | None:
        meta = deployment["metadata"]
        namespace, name = meta.get("namespace", "default"), meta["name"]
        if self.watcher is None and self.put_object is not None:
            self.watcher = asyncio.get_running_loop().create_task(self._watch_pods())
        async with self.locks[(namespace, name)]:
            return await self._reconcile(namespace, name, deployment)

    @staticmethod
    def _key_of(deployment: Obj) -> tuple[str, str, str, str]:
        template = deployment["spec"]["template"]
        labels = template["metadata"].get("labels", {})
        annotations = template["metadata"].get("annotations", {})
        return (labels.get(naming.REVISION_LABEL, ""), annotations.get(naming.CONFIG_HASH_ANNOTATION, ""),
                annotations.get(naming.RESTARTED_AT_ANNOTATION, ""),
                str(int(deployment.get("spec", {}).get("replicas", 1))))

    async def _reconcile(self, namespace: str, name: str, deployment: Obj) -> int:
        replicas = int(deployment.get("spec", {}).get("replicas", 1))
        key = self._key_of(deployment)
        current = self.pods.get((namespace, name))
        if current is not None and current.key == key and current.process.poll() is None:
            return replicas
        if replicas == 0:
            if current is not None:
                self._retire(namespace, current)
                await asyncio.to_thread(stop_process, current.process)
                del self.pods[(namespace, name)]
            return 0
        # A rolling update with surge, as the Deployment asks (maxSurge 1, maxUnavailable 0): the new
        # process serves before the old one is told to stop, and the old one stops in the background.
        self.pods[(namespace, name)] = await self._launch(namespace, name, deployment, key)
        if current is not None:
            self._retire(namespace, current)
            self.stopping.append(current.process)
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(stop_process, current.process))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return replicas

    async def _launch(self, namespace: str, name: str, deployment: Obj, key: tuple[str, str, str, str]) -> RuntimePod:
        template = deployment["spec"]["template"]
        labels = template["metadata"].get("labels", {})
        volumes = template["spec"].get("volumes", [])
        configmap_name = next(v["configMap"]["name"] for v in volumes if "configMap" in v)
        configmap = self.get_object("v1", "configmaps", namespace, configmap_name) or {}
        pod_name = f"{name}-{key[0]}-{uuid.uuid4().hex[:5]}"
        pod = await asyncio.to_thread(self._start, namespace, pod_name, key, configmap.get("data") or {})
        if not await self._wait_ready(pod):
            await asyncio.to_thread(stop_process, pod.process)
            raise RuntimeError(f"runtime for {namespace}/{name} did not become ready")
        if self.put_object is not None:
            self.put_object("v1", "pods", _pod_object(namespace, pod_name, deployment))
        self.prometheus.publish(f"{namespace}-{name}", f"127.0.0.1:{pod.port}", {
            "namespace": namespace, "symbol": labels.get(naming.SYMBOL_LABEL, ""), "revision": key[0],
            "track": labels.get(naming.TRACK_LABEL, "stable"), "pod": pod_name})
        self.history.append((time.time(), f"{namespace}/{name}", key[0], "ready"))
        return pod

    def _retire(self, namespace: str, pod: RuntimePod) -> None:
        if self.remove_object is not None:
            self.remove_object("v1", "pods", namespace, pod.name)

    async def _watch_pods(self) -> None:
        """Replace the process of a Pod deleted through the API (what a ReplicaSet and kubelet do)."""
        while True:
            await asyncio.sleep(0.2)
            for (namespace, name), pod in list(self.pods.items()):
                if self.get_object("v1", "pods", namespace, pod.name) is not None:
                    continue
                async with self.locks[(namespace, name)]:
                    if self.pods.get((namespace, name)) is not pod:
                        continue
                    deployment = self.get_object("apps/v1", "deployments", namespace, name)
                    if deployment is None:
                        continue
                    if self.report_ready is not None:
                        await self.report_ready(namespace, name, 0)
                    self.history.append((time.time(), f"{namespace}/{name}", pod.revision, "deleted"))
                    await asyncio.to_thread(stop_process, pod.process)
                    self.pods[(namespace, name)] = await self._launch(namespace, name, deployment,
                                                                      self._key_of(deployment))
                    if self.report_ready is not None:
                        await self.report_ready(namespace, name, int(deployment["spec"].get("replicas", 1)))

    def _start(self, namespace: str, name: str, key: tuple[str, str, str, str], data: dict[str, str]) -> RuntimePod:
        folder = self.workdir / "pods" / f"{namespace}-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / naming.CONFIG_KEY).write_text(data.get(naming.CONFIG_KEY, ""))
        (folder / naming.SWITCHES_KEY).write_text(data.get(naming.SWITCHES_KEY, "tradingEnabled: true\n"))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEOPS_")}
        with (folder / "runtime.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "trading_runtime", "--config", str(folder / naming.CONFIG_KEY),
                 "--switches", str(folder / naming.SWITCHES_KEY), "--feed-url", self.feed_url,
                 "--metrics-host", "127.0.0.1", "--metrics-port", str(port),
                 "--spill-path", str(folder / "spill.jsonl")],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        return RuntimePod(key=key, process=process, port=port, revision=key[0], name=name)

    async def _wait_ready(self, pod: RuntimePod) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if pod.process.poll() is not None:
                return False
            if await asyncio.to_thread(http_ok, f"http://127.0.0.1:{pod.port}/readyz", 0.5):
                pod.ready_at = time.monotonic()
                return True
            await asyncio.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.watcher is not None:  # it runs on the emulator's loop, in another thread
            with contextlib.suppress(RuntimeError):
                self.watcher.get_loop().call_soon_threadsafe(self.watcher.cancel)
        for process in [*(pod.process for pod in self.pods.values()), *self.stopping]:
            stop_process(process)
        self.pods.clear()


def _pod_object(namespace: str, name: str, deployment: Obj) -> Obj:
    """A running, Ready Pod of a Deployment's template, owned by it (so GC takes it with the Deployment)."""
    template = deployment["spec"]["template"]
    meta = deployment["metadata"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(template["metadata"].get("labels", {})),
                     "annotations": dict(template["metadata"].get("annotations", {})),
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                          "uid": meta.get("uid", ""), "controller": True}]},
        "spec": template["spec"],
        "status": {"phase": "Running", "podIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
                   "startTime": now,
                   "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                          "ready": True, "started": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": now}}}
                                         for c in template["spec"].get("containers", [])]},
    }
