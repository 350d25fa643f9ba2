"""The emulated Kubernetes API server shared by the tests, the demo and the benchmarks.

In the caller's event loop::

    async with serve_emulator(host="127.0.0.1", port=0, kubelet=SimulatedKubelet(ready_delay=0.05)) as emulator:
        emulator.url                                    # http://127.0.0.1:PORT
        emulator.get_object("apps/v1", "deployments", "default", "web")   # a copy, or None
        emulator.list_objects("v1", "pods", "default")
        emulator.set_container_state("default", "web-5d9f7c6b4-x2x4q", "web", Waiting("CrashLoopBackOff"))
        emulator.handler                                # the EmulatedKubernetes itself

In a background thread with its own loop (for synchronous code, or to keep kopf and the server apart)::

    with EmulatorThread(kubelet=SimulatedKubelet(ready_delay=0.01)) as emulator:
        emulator.url; emulator.get_object(...); emulator.set_container_state(...)

`python -m devstack.emulator --kubeconfig PATH` runs it as a process (see `__main__`).
What the emulator does and lacks compared with a real cluster: see `server.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from kmock import Server

from devstack.emulator.kubelet import Kubelet, SimulatedKubelet
from devstack.emulator.objects import ApiError
from devstack.emulator.podstatus import ContainerState, Running, Terminated, Waiting
from devstack.emulator.server import EmulatedKubernetes

T = TypeVar("T")
CONTEXT = "tradeops-emulator"


@dataclass
class RunningEmulator:
    """A served EmulatedKubernetes: its URL and shortcuts to its store (use them on the server's loop)."""

    handler: EmulatedKubernetes
    url: str

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.handler.get_object(api_version, plural, namespace, name)

    def list_objects(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.handler.list_objects(api_version, plural, namespace)

    def set_container_state(self, namespace: str, pod: str, container: str, state: ContainerState | None = None,
                            **changes: Any) -> None:
        """What a container reports (the SimulatedKubelet only): see SimulatedKubelet.set_container_state."""
        kubelet = self.handler.kubelet
        if not isinstance(kubelet, SimulatedKubelet):
            raise TypeError(f"{type(kubelet).__name__} runs real containers; their states are not set by hand")
        kubelet.set_container_state(namespace, pod, container, state, **changes)


@contextlib.asynccontextmanager
async def serve_emulator(host: str = "127.0.0.1", port: int = 0, **options: Any) -> AsyncIterator[RunningEmulator]:
    """Serve an EmulatedKubernetes over HTTP for the duration of the block.

    `options` go to EmulatedKubernetes: kubelet, request_log_limit, history_limit, write_failure_rate, clock,
    job_backoff_seconds."""
    handler = EmulatedKubernetes(**options)
    async with handler, Server(handler, host=host, port=port or None, user_agent="") as server:
        await handler.start()
        try:
            yield RunningEmulator(handler=handler, url=str(server.url).rstrip("/"))
        finally:
            await handler.shutdown()


class EmulatorThread:
    """The emulator served from a daemon thread with its own event loop; every method is thread-safe
    (reads and writes run on the emulator's loop)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self._args = (host, port, options)
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running: RunningEmulator | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> EmulatorThread:
        self._thread = threading.Thread(target=self._run, name="emulated-kubernetes", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout) or self._running is None:
            raise RuntimeError(f"the emulator did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() or stop()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        host, port, options = self._args
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with serve_emulator(host, port, **options) as running:
            self._running = running
            self._started.set()
            await self._stop.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just finished
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def running(self) -> RunningEmulator:
        if self._running is None:
            raise RuntimeError("the emulator is not running")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def handler(self) -> EmulatedKubernetes:
        return self.running.handler

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the emulator's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        async def get() -> dict[str, Any] | None:
            return self.running.get_object(api_version, plural, namespace, name)
        return self.call(get())

    def list_objects(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        async def list_() -> list[dict[str, Any]]:
            return self.running.list_objects(api_version, plural, namespace)
        return self.call(list_())

    def set_container_state(self, namespace: str, pod: str, container: str, state: ContainerState | None = None,
                            **changes: Any) -> None:
        async def set_() -> None:
            self.running.set_container_state(namespace, pod, container, state, **changes)
        self.call(set_())


def kubeconfig_for(url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig pointing at an emulator (any token is accepted)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": "tradeops", "user": {"token": "emulator"}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "tradeops", "namespace": namespace}}],
        "current-context": CONTEXT,
    }


def write_kubeconfig(path: pathlib.Path, url: str, namespace: str = "default") -> pathlib.Path:
    """Write `kubeconfig_for(url)` atomically (readers never see a half-written file)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(yaml.safe_dump(kubeconfig_for(url, namespace)))
    temporary.replace(path)
    return path


__all__ = ["ApiError", "ContainerState", "EmulatedKubernetes", "EmulatorThread", "Kubelet", "Running",
           "RunningEmulator", "SimulatedKubelet", "Terminated", "Waiting", "kubeconfig_for", "serve_emulator",
           "write_kubeconfig"]
