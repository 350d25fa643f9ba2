"""Fixtures for tests that want an emulated Kubernetes API. Import them into a conftest or a test module:

    from tests.integration.emulator_fixtures import emulator, emulator_thread, k8s_client  # noqa: F401

- `emulator` (async, per test): a RunningEmulator on the test's event loop; `.url`, `.get_object(...)`,
  `.list_objects(...)`, `.set_container_state(ns, pod, container, state, ...)`, `.handler` (EmulatedKubernetes).
  Call the synchronous `kubernetes` client through `asyncio.to_thread` (it would block the loop that serves it).
- `emulator_thread` (sync, per test): an EmulatorThread serving from its own thread and loop — for plain
  synchronous tests and for code that runs its own loop; same shortcuts, all synchronous.
- `k8s_client`: a `kubernetes.client.ApiClient` for `emulator` if the test uses it, else for `emulator_thread`.
- `api_client_for(url)`: build such an ApiClient yourself (close it when done, or use it as a context manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from kubernetes import client

from devstack.emulator import EmulatorThread, RunningEmulator, SimulatedKubelet, serve_emulator

# Fast enough for tests, slow enough that a watcher sees a Pod Pending before it runs.
TEST_POD_READY_DELAY = 0.02
_namespaces = itertools.count(1)


def api_client_for(url: str) -> client.ApiClient:
    """An ApiClient for an emulator URL (the emulator accepts any token)."""
    configuration = client.Configuration(host=url)
    configuration.api_key = {"authorization": "emulator"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def unique_namespace(prefix: str = "t") -> str:
    return f"{prefix}-{next(_namespaces)}"


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with serve_emulator(kubelet=SimulatedKubelet(ready_delay=TEST_POD_READY_DELAY)) as running:
        yield running


@pytest.fixture
def emulator_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread(kubelet=SimulatedKubelet(ready_delay=TEST_POD_READY_DELAY)) as running:
        yield running


@pytest.fixture
def k8s_client(request: pytest.FixtureRequest) -> Iterator[client.ApiClient]:
    name = "emulator" if "emulator" in request.fixturenames else "emulator_thread"
    running = request.getfixturevalue(name)
    with contextlib.closing(api_client_for(running.url)) as api:
        yield api


async def eventually(predicate: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Polls `predicate` every 10 ms until it holds; fails naming `what` after `seconds`."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")
