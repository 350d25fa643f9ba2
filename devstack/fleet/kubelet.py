"""ProcessKubelet: the emulator's kubelet in the devstack, each Pod's container a real process.

For every Pod bound to its node it does what a kubelet does, with processes for containers:
- a pod IP on the loopback network (`addresses.py`); the container listens on its declared port there;
- the pod's configMap, secret, projected and emptyDir volumes on disk (`volumes.py`); a missing
  non-optional ConfigMap leaves the pod ContainerCreating with FailedMount Events, retried with back-off;
  ConfigMap changes reach the files at the next pod sync (every `config_sync_seconds`, as kubelet's
  syncFrequency), by the atomic symlink swap;
- the image: the trading-runtime image runs the working tree's `python -m trading_runtime`, the
  tradeops-modelops image its `python -m modelops`; any other is ErrImagePull, then ImagePullBackOff
  (`images.py`);
- env and envFrom (values, fieldRefs, ConfigMap and Secret keys): a missing non-optional one is
  CreateContainerConfigError;
- the container's arguments with mount paths mapped to the volumes' host directories, plus what stands
  in for the pod's own network and filesystem: `--metrics-host <pod IP>` and `--spill-path` in the pod's
  /tmp volume (the runtime's only host paths);
- the readiness probe (`probes.py`) → the container's `ready`;
- the memory limit enforced like the cgroup: resident memory over it → SIGKILL, OOMKilled, exit 137;
- an exit → lastState.terminated (exit code, reason Error/Completed/OOMKilled, the log's tail as the
  message under FallbackToLogsOnError) and a restart with the kubelet's back-off (`backoff.py`), shown
  as CrashLoopBackOff while it waits;
- deletion: SIGTERM, SIGKILL after the grace period, the terminal phase, then the Pod is deleted;
- each ready pod published to Prometheus as a scrape target (`scrape_not_ready`: from its start);
- `kubectl logs` (current and `--previous`) from the containers' log files.

`time_scale` shrinks the back-off, the probe periods and the config sync for tests; 1.0 is the real
timing. The processes run on the emulator's loop thread and die with it (parent-death signal)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import pathlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from devstack.emulator.events import NORMAL, WARNING
from devstack.emulator.kubelet import Kubelet, PodWorker
from devstack.emulator.objects import ApiError
from devstack.emulator.podstatus import (
    CRASH_LOOP_BACK_OFF,
    CREATE_CONTAINER_CONFIG_ERROR,
    ERR_IMAGE_PULL,
    IMAGE_PULL_BACK_OFF,
    ContainerStatus,
    Running,
    Terminated,
    Waiting,
    exit_reason,
)
from devstack.fleet.addresses import LoopbackAddresses
from devstack.fleet.backoff import POD_WORKER_RETRY_SECONDS, BackOff, go_duration
from devstack.fleet.images import RUNTIME_IMAGES, Image, image_for, pull_error
from devstack.fleet.probes import ReadinessProber, probe_port
from devstack.fleet.process import ContainerProcess, memory_bytes, start, tail
from devstack.fleet.volumes import MountError, volume_files, write_atomically

Obj = dict[str, Any]
MOUNT_RETRY_MAX = 122.0
"""The volume manager's exponential back-off for a failed mount: 0.5 s doubling to 2 min 2 s."""
HOST_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH")
"""The host environment a container process keeps (so the virtualenv's Python runs); the rest is the pod's."""


class ConfigError(Exception):
    """A reference the container's environment needs is missing (CreateContainerConfigError)."""


class VolumeError(Exception):
    """A volume that cannot be set up yet (FailedMount; the volume manager retries)."""

    def __init__(self, volume: str, reason: str) -> None:
        super().__init__(f"{volume}: {reason}")
        self.volume, self.reason = volume, reason


class ScrapeTargets(Protocol):
    """Where running containers are published for scraping (PrometheusProcess does this with file SD)."""

    def publish(self, name: str, address: str, labels: dict[str, str]) -> None: ...

    def unpublish(self, name: str) -> None: ...


ScrapeLabels = Callable[[Obj], dict[str, str]]


def default_scrape_labels(pod: Obj) -> dict[str, str]:
    meta = pod["metadata"]
    return {"namespace": meta.get("namespace", ""), "pod": meta["name"]}


@dataclass
class ContainerRun:
    """What the kubelet holds for one container of a pod."""

    spec: Obj
    process: ContainerProcess | None = None
    prober: asyncio.Task[None] | None = None
    starts: int = 0
    last_finished: float = 0.0
    last_terminated: Terminated | None = None


@dataclass
class History:
    """When pods' containers started, became ready and exited (wall clock), for benchmarks and tests."""

    records: list[tuple[float, str, str, dict[str, str], str]] = field(default_factory=list)
    """(time, namespace, pod, pod labels, event): event is started, ready, unready, exited or stopped."""

    def add(self, worker: PodWorker, event: str) -> None:
        labels = dict(worker.pod["metadata"].get("labels") or {})
        self.records.append((time.time(), worker.namespace, worker.name, labels, event))


class ProcessKubelet(Kubelet):
    node_name = "tradeops-devstack"

    def __init__(self, workdir: pathlib.Path, extra_env: dict[str, str] | None = None,
                 image_pattern: str = RUNTIME_IMAGES, time_scale: float = 1.0, config_sync_seconds: float = 60.0,
                 memory_poll_seconds: float = 0.5, scrape: ScrapeTargets | None = None,
                 scrape_labels: ScrapeLabels = default_scrape_labels, scrape_not_ready: bool = False) -> None:
        super().__init__()
        self.workdir = workdir
        self.extra_env = dict(extra_env or {})
        """Node-level environment every container gets (the devstack's feed URL)."""
        self.image_pattern = image_pattern
        self.time_scale = time_scale
        self.config_sync_seconds = config_sync_seconds
        self.memory_poll_seconds = memory_poll_seconds
        self.scrape = scrape
        self.scrape_labels = scrape_labels
        self.scrape_not_ready = scrape_not_ready
        """False: a pod is a scrape target while it is Ready (a ServiceMonitor keeping only ready endpoints);
        True: from its container's start (Prometheus' pod role, or a ServiceMonitor keeping not-ready
        endpoints): its start-up then shows as `up == 0`."""
        self.addresses = LoopbackAddresses()
        self.backoff = BackOff(initial=10.0 * time_scale, maximum=300.0 * time_scale)
        self.history = History()
        self.runs: dict[str, dict[str, ContainerRun]] = {}
        self.stopping = False

    def runtime_version(self) -> str:
        return "devstack://processes"

    # Addresses and files -------------------------------------------------------------------------

    def allocate_ip(self, pod: Obj) -> str:
        ports = [int(p["containerPort"]) for c in pod.get("spec", {}).get("containers") or []
                 for p in c.get("ports") or [] if "containerPort" in p]
        return self.addresses.allocate(ports)

    def release_ip(self, ip: str) -> None:
        self.addresses.release(ip)

    def pod_dir(self, worker: PodWorker) -> pathlib.Path:
        return self.workdir / "pods" / f"{worker.namespace}_{worker.name}_{worker.uid}"

    def _lookup(self, namespace: str) -> Callable[[str, str], Obj | None]:
        def lookup(plural: str, name: str) -> Obj | None:
            return self.objects.find(self.objects.resource("v1", plural), namespace, name)
        return lookup

    def _mount_all(self, worker: PodWorker) -> None:
        """Set up (or refresh) every volume; raises VolumeError for the first that cannot be."""
        root = self.pod_dir(worker) / "volumes"
        for volume in worker.pod.get("spec", {}).get("volumes") or []:
            try:
                files = volume_files(volume, self._lookup(worker.namespace))
                target = root / volume["name"]
                if files is None:
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    write_atomically(target, files)
            except (MountError, OSError) as error:
                raise VolumeError(volume["name"], str(error)) from error

    def _mounts(self, worker: PodWorker, spec: Obj) -> list[tuple[str, pathlib.Path]]:
        """(mount path in the container, host path), longest mount path first."""
        root = self.pod_dir(worker) / "volumes"
        mounts = [(m["mountPath"].rstrip("/"), root / m["name"] / m.get("subPath", ""))
                  for m in spec.get("volumeMounts") or []]
        return sorted(mounts, key=lambda m: -len(m[0]))

    # Pods ----------------------------------------------------------------------------------------

    async def run_pod(self, worker: PodWorker) -> None:
        specs = worker.spec_containers()
        worker.containers = {c["name"]: ContainerStatus(c["name"], str(c.get("image", ""))) for c in specs}
        self.runs[worker.uid] = {c["name"]: ContainerRun(c) for c in specs}
        self.write_status(worker)
        if await self._mount_with_retries(worker):
            tasks = [asyncio.create_task(self._run_container(worker, run), name=f"{worker.name}/{name}")
                     for name, run in self.runs[worker.uid].items()]
            sync = asyncio.create_task(self._sync_volumes(worker))
            try:
                await worker.wait(lambda: worker.deleting or all(t.done() for t in tasks))
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:  # cancelled (the kubelet stops, the pod is force-deleted): no container may go on
                for task in [*tasks, sync]:
                    task.cancel()
                await asyncio.gather(*tasks, sync, return_exceptions=True)
        await worker.wait(lambda: worker.deleting)
        self.finish(worker)

    async def _mount_with_retries(self, worker: PodWorker) -> bool:
        """The volume manager's retries; False when the pod is deleted first."""
        delay = 0.5 * self.time_scale
        while not worker.deleting:
            try:
                self._mount_all(worker)
                return True
            except VolumeError as error:
                self.event(worker, WARNING, "FailedMount",
                           f'MountVolume.SetUp failed for volume "{error.volume}" : {error.reason}')
            await worker.wait(lambda: worker.deleting, delay)
            delay = min(delay * 2, MOUNT_RETRY_MAX * self.time_scale)
        return False

    async def _sync_volumes(self, worker: PodWorker) -> None:
        """ConfigMap and Secret changes reach the volumes at the next pod sync."""
        while True:
            await asyncio.sleep(self.config_sync_seconds * self.time_scale)
            with contextlib.suppress(VolumeError):
                self._mount_all(worker)

    async def cleanup_pod(self, worker: PodWorker) -> None:
        for run in self.runs.pop(worker.uid, {}).values():
            if run.prober is not None:
                run.prober.cancel()
            if run.process is not None:
                run.process.kill_now()
        self._unpublish(worker)
        self.backoff.forget(f"{worker.uid}/")

    async def stop(self) -> None:
        """Stop every pod's processes at once (SIGTERM, a short grace, SIGKILL; nothing restarts them): the
        stack is going away."""
        self.stopping = True
        stops = [run.process.stop(5.0) for runs in self.runs.values() for run in runs.values()
                 if run.process is not None]
        await asyncio.gather(*stops, return_exceptions=True)
        await super().stop()

    # Containers ----------------------------------------------------------------------------------

    def _set(self, worker: PodWorker, name: str, **changes: Any) -> None:
        worker.containers[name] = worker.containers[name].evolve(**changes)
        self.write_status(worker)

    async def _retry(self, worker: PodWorker) -> None:
        await worker.wait(lambda: worker.deleting, POD_WORKER_RETRY_SECONDS * self.time_scale)

    async def _run_container(self, worker: PodWorker, run: ContainerRun) -> None:
        spec, name = run.spec, run.spec["name"]
        image = str(spec.get("image", ""))
        restart_key = f"{worker.uid}/{name}"
        while not worker.deleting and not self.stopping:
            runnable = image_for(image, self.image_pattern)
            if runnable is None:
                self._image_pull_failed(worker, name, image)
                await self._retry(worker)
                continue
            try:
                env = self._env(worker, spec)
            except ConfigError as error:
                self._set(worker, name, state=Waiting(CREATE_CONTAINER_CONFIG_ERROR, str(error)), ready=False)
                self.event(worker, WARNING, "Failed", f"Error: {error}", name)
                await self._retry(worker)
                continue
            now = time.time()
            if run.starts and self.backoff.in_backoff_since(restart_key, run.last_finished, now):
                message = (f"back-off {go_duration(self.backoff.get(restart_key))} restarting failed "
                           f"container={name} pod={worker.name}_{worker.namespace}({worker.uid})")
                self._set(worker, name, state=Waiting(CRASH_LOOP_BACK_OFF, message), ready=False,
                          last_state=run.last_terminated)
                self.event(worker, WARNING, "BackOff", f"Back-off restarting failed container {name} in pod "
                                                       f"{worker.name}_{worker.namespace}({worker.uid})", name)
                await self._retry(worker)
                continue
            if run.starts:
                self.backoff.next(restart_key, run.last_finished, now)
            terminated = await self._run_once(worker, run, runnable, env)
            if terminated is None:  # the pod is being deleted
                return
            policy = worker.pod.get("spec", {}).get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and terminated.exit_code == 0):
                await worker.wait(lambda: worker.deleting)
                return

    def _image_pull_failed(self, worker: PodWorker, name: str, image: str) -> None:
        """EnsureImageExists: ErrImagePull on a failed pull, ImagePullBackOff while its back-off lasts."""
        key, now = f"{worker.uid}/image/{image}", time.time()
        if self.backoff.in_backoff_since_update(key, now):
            message = f'Back-off pulling image "{image}"'
            self._set(worker, name, state=Waiting(IMAGE_PULL_BACK_OFF, message), ready=False)
            self.event(worker, NORMAL, "BackOff", message, name)
            self.event(worker, WARNING, "Failed", f"Error: {IMAGE_PULL_BACK_OFF}", name)
            return
        error = pull_error(image)
        self.event(worker, NORMAL, "Pulling", f'Pulling image "{image}"', name)
        self.event(worker, WARNING, "Failed", f'Failed to pull image "{image}": {error}', name)
        self.event(worker, WARNING, "Failed", f"Error: {ERR_IMAGE_PULL}", name)
        self.backoff.next(key, now, now)
        self._set(worker, name, state=Waiting(ERR_IMAGE_PULL, error), ready=False)

    async def _run_once(self, worker: PodWorker, run: ContainerRun, image: Image, env: dict[str, str]) \
            -> Terminated | None:
        """Start the container and watch it until it exits (its Terminated state) or the pod is deleted
        (None, once it has stopped)."""
        spec, name = run.spec, run.spec["name"]
        folder = self.pod_dir(worker) / "containers" / name
        log = folder / f"{run.starts}.log"
        if self.stopping:
            return None
        process = start(self._command(worker, spec, image), env, log, self.workdir)
        restarts = run.starts
        run.process, run.starts = process, run.starts + 1
        started = self.objects.now()
        self._set(worker, name, state=Running(started), ready="readinessProbe" not in spec,
                  restart_count=restarts, last_state=run.last_terminated,
                  container_id=f"devstack://{worker.uid}/{name}/{process.pid}",
                  image_id=f"devstack://{' '.join(image.entrypoint)}")
        self.event(worker, NORMAL, "Pulled", f'Container image "{spec.get("image", "")}" already present on machine',
                   name)
        self.event(worker, NORMAL, "Created", f"Created container: {name}", name)
        self.event(worker, NORMAL, "Started", f"Started container {name}", name)
        self.history.add(worker, "started")
        if self.scrape_not_ready:
            self._publish(worker, spec)
        if "readinessProbe" in spec:
            run.prober = asyncio.create_task(self._probe(worker, name, spec))
        else:
            self.history.add(worker, "ready")
            self._publish(worker, spec)
        limit = memory_bytes((spec.get("resources") or {}).get("limits", {}).get("memory"))
        next_memory_check = 0.0
        while process.exit_code() is None and not worker.deleting:
            if limit is not None and time.monotonic() >= next_memory_check:
                next_memory_check = time.monotonic() + self.memory_poll_seconds
                if process.rss() > limit:
                    process.oom_kill()
            await worker.wait(lambda: worker.deleting or process.exit_code() is not None, 0.1)
        if run.prober is not None:
            run.prober.cancel()
            run.prober = None
        if worker.deleting and process.exit_code() is None:
            if not self.scrape_not_ready:
                self._unpublish(worker)  # a terminating pod leaves the ready endpoints before it stops
            self.event(worker, NORMAL, "Killing", f"Stopping container {name}", name)
            await process.stop(worker.grace_seconds)
        code = process.exit_code()
        assert code is not None
        self._unpublish(worker)
        run.last_finished = time.time()
        self.history.add(worker, "stopped" if worker.deleting else "exited")
        message = tail(log) if code != 0 and spec.get("terminationMessagePolicy") == "FallbackToLogsOnError" else ""
        terminated = Terminated(code, exit_reason(code, process.oom_killed), started, self.objects.now(), message,
                                worker.containers[name].container_id)
        run.last_terminated = terminated
        self._set(worker, name, state=terminated, ready=False)
        return None if worker.deleting else terminated

    def _probe(self, worker: PodWorker, name: str, spec: Obj) -> Coroutine[Any, Any, None]:
        probe = spec["readinessProbe"]
        path = probe.get("httpGet", {}).get("path", "/")
        url = f"http://{worker.pod_ip}:{probe_port(probe, spec)}{path}"

        def flipped(ready: bool) -> None:
            if isinstance(worker.containers[name].state, Running):
                self._set(worker, name, ready=ready)
                self.history.add(worker, "ready" if ready else "unready")
                if ready:
                    self._publish(worker, spec)
                elif not self.scrape_not_ready:
                    self._unpublish(worker)

        def failed(why: str) -> None:
            self.event(worker, WARNING, "Unhealthy", f"Readiness probe failed: {why}", name)

        return ReadinessProber(probe, url, self.time_scale, flipped, failed).run()

    def _publish(self, worker: PodWorker, spec: Obj) -> None:
        ports = [p["containerPort"] for p in spec.get("ports") or [] if "containerPort" in p]
        if self.scrape is not None and ports:
            self.scrape.publish(self._target_name(worker), f"{worker.pod_ip}:{ports[0]}",
                                self.scrape_labels(worker.pod))

    def _unpublish(self, worker: PodWorker) -> None:
        if self.scrape is not None:
            self.scrape.unpublish(self._target_name(worker))

    @staticmethod
    def _target_name(worker: PodWorker) -> str:
        return f"{worker.namespace}_{worker.name}"

    # The command line and the environment --------------------------------------------------------

    def _command(self, worker: PodWorker, spec: Obj, image: Image) -> list[str]:
        """The image's entrypoint (or the container's command) and args (or the image's CMD when the
        container gives neither), with mount paths mapped to the volumes on disk; then, for the trading
        runtime, the pod's network and /tmp."""
        mounts = self._mounts(worker, spec)

        def host(arg: str) -> str:
            for inside, outside in mounts:
                if arg == inside or arg.startswith(inside + "/"):
                    return str(outside) + arg[len(inside):]
            return arg

        entry = list(image.entrypoint)
        command = [host(str(a)) for a in spec.get("command") or []] or entry
        command = [entry[0] if c in ("python", "python3") else c for c in command]
        args = spec.get("args") or ([] if spec.get("command") else list(image.cmd))
        command += [host(str(a)) for a in args]
        if not image.runtime:
            return command
        tmp = next((outside for inside, outside in mounts if inside == "/tmp"), self.pod_dir(worker) / "tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        return [*command, "--metrics-host", worker.pod_ip, "--spill-path", str(tmp / "tradeops-spill.jsonl")]

    def _env(self, worker: PodWorker, spec: Obj) -> dict[str, str]:
        """The container's environment (makeEnvironmentVariables); ConfigError for a missing reference."""
        lookup = self._lookup(worker.namespace)
        env = {k: os.environ[k] for k in HOST_ENV if k in os.environ} | self.extra_env
        for source in spec.get("envFrom") or []:
            for key, plural, kind in (("configMapRef", "configmaps", "configmap"), ("secretRef", "secrets", "secret")):
                if key not in source:
                    continue
                ref = source[key]
                obj = lookup(plural, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
                env |= {source.get("prefix", "") + k: v for k, v in _string_data(plural, obj).items()}
        for item in spec.get("env") or []:
            if "value" in item or "valueFrom" not in item:
                env[item["name"]] = str(item.get("value", ""))
                continue
            value = self._value_from(worker, item["valueFrom"], lookup)
            if value is not None:
                env[item["name"]] = value
        return env

    def _value_from(self, worker: PodWorker, source: Obj, lookup: Callable[[str, str], Obj | None]) -> str | None:
        if "fieldRef" in source:
            path = source["fieldRef"].get("fieldPath", "")
            meta = worker.pod["metadata"]
            fields = {"metadata.name": meta["name"], "metadata.namespace": meta.get("namespace", ""),
                      "metadata.uid": meta.get("uid", ""), "spec.nodeName": self.node_name,
                      "status.podIP": worker.pod_ip, "status.hostIP": self.host_ip}
            return str(fields.get(path, ""))
        for key, plural, kind in (("configMapKeyRef", "configmaps", "configmap"),
                                  ("secretKeyRef", "secrets", "secret")):
            if key in source:
                ref = source[key]
                obj = lookup(plural, ref.get("name", ""))
                data = _string_data(plural, obj) if obj is not None else None
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        return None
                    if data is None:
                        raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
                    owner = "ConfigMap" if kind == "configmap" else "Secret"
                    raise ConfigError(f"couldn't find key {ref.get('key')} in {owner} "
                                      f"{worker.namespace}/{ref.get('name', '')}")
                return str(data[ref["key"]])
        return None

    # Logs ----------------------------------------------------------------------------------------

    def logs(self, namespace: str, pod: str, container: str | None, previous: bool) -> str:
        worker = next((w for w in self.workers.values() if (w.namespace, w.name) == (namespace, pod)), None)
        if worker is None:
            raise ApiError(400, "BadRequest", f'pod "{pod}" is not running on {self.node_name}')
        runs = self.runs.get(worker.uid, {})
        name = container or next(iter(runs), "")
        run = runs.get(name)
        if run is None:
            raise ApiError(400, "BadRequest", f"container {name} is not valid for pod {pod}")
        index = run.starts - (2 if previous else 1)
        if index < 0:
            raise ApiError(400, "BadRequest", f'previous terminated container "{name}" in pod "{pod}" not found'
                           if previous else f'container "{name}" in pod "{pod}" is waiting to start')
        log = self.pod_dir(worker) / "containers" / name / f"{index}.log"
        return log.read_text(errors="replace") if log.exists() else ""


def _string_data(plural: str, obj: Obj) -> dict[str, str]:
    if plural == "configmaps":
        return dict(obj.get("data") or {})
    decoded = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    return decoded | dict(obj.get("stringData") or {})
