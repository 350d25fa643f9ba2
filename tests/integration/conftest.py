"""Fixtures: the emulated API server and the operator as real processes, talking HTTP.

With TRADEOPS_E2E_KUBECONFIG set (the e2e CI job: a kind cluster with the CRD and the operator installed
from deploy/), only the tests marked `e2e` run, and against that cluster: `stack`, `kube` and `ns` use
it, the `operator` fixture starts nothing (the cluster's operator does the work), and each test namespace
(`operator_harness.new_namespace`) gets the runtime's credentials Secret pointing at the cluster's feed
(TRADEOPS_E2E_FEED_URL). Modules with a stack of their own (the rollout faults in test_never_ready.py) switch
the same way."""

from __future__ import annotations

import contextlib
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import psutil
import pytest

from devstack.processes import EmulatorProcess, OperatorProcess, install_crd, kube_for
from tests.integration.api_servers import ApiServer, Provider
from tests.integration.dr_support import fake_credentials
from tests.integration.operator_harness import E2E_KUBECONFIG, PositionsServer, new_namespace
from tests.s3_server import ThrowawayS3
from trading_operator.kube import KubeApi

LIFECYCLE_POLICIES = pathlib.Path(__file__).parent / "policies" / "lifecycle"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against a real cluster only the tests marked e2e run; the others need the emulator or local servers."""
    if not E2E_KUBECONFIG:
        return
    deselected = [item for item in items if item.get_closest_marker("e2e") is None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.get_closest_marker("e2e") is not None]


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_tests() -> Iterator[None]:
    """Every process the integration tests start (emulators, operators, pods' runtimes, Prometheus, feeds,
    servers) is gone once their fixtures are: a leftover fails the session, named, and is killed."""
    yield
    deadline = time.monotonic() + 10
    left = _live_children()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _live_children()
    for process, _ in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    assert not left, "processes outlived the tests:\n" + "\n".join(
        f"{p.pid}: {command[:200]}" for p, command in left)


RESOURCE_TRACKER = "from multiprocessing.resource_tracker import main"
"""multiprocessing's resource tracker (started by an embedded Dask cluster) belongs to this pytest process and
ends with it: not a leftover of a test."""


def _live_children() -> list[tuple[psutil.Process, str]]:
    """This session's descendants still running, with their command lines."""
    out = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            command = " ".join(process.cmdline())
            if process.status() != psutil.STATUS_ZOMBIE and RESOURCE_TRACKER not in command:
                out.append((process, command))
    return out


@dataclass
class Stack:
    kube: KubeApi
    kubeconfig: pathlib.Path
    workdir: pathlib.Path
    emulator: EmulatorProcess | None = None
    """None against a real cluster (TRADEOPS_E2E_KUBECONFIG)."""
    positions: PositionsServer | None = None
    """The harness's position reports (the operator asks it instead of the pods); None on a real cluster."""

    def operator(self, name: str, args: list[str] | None = None, env: dict[str, str] | None = None) \
            -> OperatorProcess:
        """A new (not yet started) operator process; the caller starts and stops it."""
        assert self.positions is not None, "local operators need the emulated stack"
        return OperatorProcess(
            self.kubeconfig,
            self.workdir / f"{name}.log",
            env={"TRADEOPS_POSITIONS_URL": self.positions.url_template, "TRADEOPS_DRAIN_POLL_SECONDS": "0.5",
                 "TRADEOPS_POLICIES_DIR": str(LIFECYCLE_POLICIES), **(env or {})},
            args=args,
        )


def start_stack(workdir: pathlib.Path, emulator_args: list[str] | None = None) -> Iterator[Stack]:
    if E2E_KUBECONFIG:
        kubeconfig = pathlib.Path(E2E_KUBECONFIG)
        yield Stack(kube_for(kubeconfig), kubeconfig, workdir)
        return
    emulator = EmulatorProcess(workdir, args=emulator_args).start()
    positions = PositionsServer().start()
    kube = kube_for(emulator.kubeconfig)
    install_crd(kube)
    try:
        yield Stack(kube, emulator.kubeconfig, workdir, emulator, positions)
    finally:
        positions.stop()
        emulator.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The API server shared by tests that use the shared operator."""
    yield from start_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API server of a module's own, for tests that start, kill and restart operators."""
    yield from start_stack(tmp_path_factory.mktemp("private"))


@pytest.fixture(scope="session")
def operator(stack: Stack) -> Iterator[OperatorProcess | None]:
    """One standalone operator shared by the tests that do not restart it (none on a real cluster: the
    operator installed there reconciles)."""
    if E2E_KUBECONFIG:
        yield None
        return
    process = stack.operator("operator").start()
    try:
        yield process
    finally:
        process.stop()
        # Temporary errors (a drain waiting) are expected; crashes of handlers are not.
        crashes = [line for line in process.log().splitlines()
                   if "Traceback" in line or "failed with an exception" in line or "permanently" in line]
        assert not crashes, "operator handlers crashed:\n" + "\n".join(crashes[:10])


@pytest.fixture
def kube(stack: Stack) -> KubeApi:
    return stack.kube


@pytest.fixture
def ns(stack: Stack) -> str:
    return new_namespace(stack.kube)


@pytest.fixture(scope="module")
def s3() -> Iterator[ThrowawayS3]:
    """A moto S3 server over HTTP (backups and drills), with credentials boto3 accepts."""
    fake_credentials()
    server = ThrowawayS3().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def api_servers() -> AsyncIterator[Callable[..., Awaitable[ApiServer]]]:
    """Starts local broker-API servers (tests/integration/api_servers.py) on demand; stops them after the test."""
    started: list[ApiServer] = []

    async def start(provider: Provider, mode: str = "ok", delay: float = 0.0) -> ApiServer:
        server = await ApiServer(provider, mode, delay).start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()
