"""Fixtures: the emulated API server and the operator as real processes, talking HTTP."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.processes import EmulatorProcess, OperatorProcess, install_crd, kube_for
from tests.integration.dr_support import fake_credentials
from tests.integration.operator_harness import PositionsServer, new_namespace
from tests.s3_server import ThrowawayS3
from trading_operator.kube import KubeApi

LIFECYCLE_POLICIES = pathlib.Path(__file__).parent / "policies" / "lifecycle"


@dataclass
class Stack:
    emulator: EmulatorProcess
    kube: KubeApi
    positions: PositionsServer
    workdir: pathlib.Path

    def operator(self, name: str, args: list[str] | None = None, env: dict[str, str] | None = None) \
            -> OperatorProcess:
        """A new (not yet started) operator process; the caller starts and stops it."""
        return OperatorProcess(
            self.emulator.kubeconfig,
            self.workdir / f"{name}.log",
            env={"TRADEOPS_POSITIONS_URL": self.positions.url_template, "TRADEOPS_DRAIN_POLL_SECONDS": "0.5",
                 "TRADEOPS_POLICIES_DIR": str(LIFECYCLE_POLICIES), **(env or {})},
            args=args,
        )


def start_stack(workdir: pathlib.Path) -> Iterator[Stack]:
    emulator = EmulatorProcess(workdir).start()
    positions = PositionsServer().start()
    kube = kube_for(emulator.kubeconfig)
    install_crd(kube)
    try:
        yield Stack(emulator, kube, positions, workdir)
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
def operator(stack: Stack) -> Iterator[OperatorProcess]:
    """One standalone operator shared by the tests that do not restart it."""
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
        server.stop()
