"""Operator restarts, crashes and high availability (kopf peering), each against an API of its own."""

from __future__ import annotations

import time

import pytest

from devstack.processes import EmulatorProcess, OperatorProcess, install_crd, kube_for, wait_for
from tests.integration.operator_harness import create_ts, new_namespace, patch_spec, running_revision, wait_status
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import Resource

CLUSTER_PEERINGS = Resource("kopf.dev/v1", "clusterkopfpeerings", namespaced=False)


@pytest.fixture
def lifecycle(private_stack):
    started = []

    def start(name, args=None, env=None):
        process = private_stack.operator(name, args=args, env=env).start()
        started.append(process)
        return process

    yield private_stack, start
    for process in started:
        process.stop()


def test_operator_killed_mid_change_converges_after_restart(lifecycle):
    stack, start = lifecycle
    kube, ns = stack.kube, new_namespace(stack.kube)
    first = start("restart-1", args=["--standalone"])
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    first.kill()
    # Changes made while no operator runs, including one to a symbol it never saw.
    patch_spec(kube, ns, "spy", {"image": "ghcr.io/tradeops/trading-runtime:9.0.0"})
    create_ts(kube, ns, "qqq", symbol="QQQ")
    start("restart-2", args=["--standalone"])
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=2, stableRevision=2)
    wait_status(kube, ns, "qqq", phase="Ready")
    assert running_revision(kube, ns, "spy") == 2


def test_operator_killed_while_draining_finishes_the_drain(lifecycle):
    stack, start = lifecycle
    kube, ns = stack.kube, new_namespace(stack.kube)
    first = start("drain-1", args=["--standalone"])
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    stack.positions.open[(ns, "spy")] = 2
    kube.delete(TRADING_SYMBOLS, ns, "spy")
    wait_status(kube, ns, "spy", phase="Terminating")
    first.kill()
    stack.positions.open[(ns, "spy")] = 0
    start("drain-2", args=["--standalone"])
    wait_for(lambda: kube.get_or_none(TRADING_SYMBOLS, ns, "spy") is None, 30, "the drained symbol gone")


def test_peered_replicas_fail_over(lifecycle):
    stack, start = lifecycle
    kube, ns = stack.kube, new_namespace(stack.kube)
    kube.create(CLUSTER_PEERINGS, None, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                         "metadata": {"name": "tradeops-ha"}})
    peering = ["--peering", "tradeops-ha"]
    env = {"TRADEOPS_PEERING_LIFETIME": "5"}
    older = start("ha-older", args=[*peering, "--priority", "100"], env=env)
    newer = start("ha-newer", args=[*peering, "--priority", "200"], env=env)

    def both_peers_seen() -> bool:
        peers = (kube.get(CLUSTER_PEERINGS, None, "tradeops-ha").get("status") or {})
        return len(peers) == 2

    # Start-up is the one moment two replicas may both act (kopf peering is eventually consistent).
    wait_for(both_peers_seen, 15, "both replicas in the peering record")
    time.sleep(1.0)
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    assert ns not in older.log()  # the standby replica did not act while the leader lived
    newer.kill()  # the leader crashes without cleaning up its peering record
    time.sleep(0.5)
    patch_spec(kube, ns, "spy", {"image": "ghcr.io/tradeops/trading-runtime:2.0.0"})
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=2, timeout=45)
    assert older.process is not None
    assert older.process.poll() is None


def test_converges_through_api_errors_with_backoff(tmp_path):
    """A quarter of all writes fail with 503: handlers retry with backoff and the resync catches up."""
    emulator = EmulatorProcess(tmp_path, args=["--write-failure-rate", "0.25"]).start()
    operator = OperatorProcess(emulator.kubeconfig, tmp_path / "operator.log",
                               env={"TRADEOPS_RESYNC_SECONDS": "2"})
    try:
        kube = kube_for(emulator.kubeconfig)
        wait_for(lambda: install_crd(kube) or True, 20, "the CRD installed despite failures")
        operator.start()
        names = [f"s{i}" for i in range(5)]
        for name in names:
            wait_for(lambda name=name: create_ts(kube, "default", name, symbol=name.upper()), 20, f"{name} created")
        for name in names:
            wait_status(kube, "default", name, phase="Ready", timeout=60)
        assert "503" in operator.log() or "injected failure" in operator.log()
    finally:
        operator.stop()
        emulator.stop()


def test_rolling_restart_hands_over_to_the_new_replica(lifecycle):
    """A rolling update starts the new pod before the old one stops. Priorities come from start times,
    so the new replica takes over at once instead of both freezing on equal priorities."""
    stack, start = lifecycle
    kube, ns = stack.kube, new_namespace(stack.kube)
    kube.create(CLUSTER_PEERINGS, None, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                         "metadata": {"name": "tradeops-rolling"}})
    peering = ["--peering", "tradeops-rolling"]
    old = start("rolling-old", args=peering, env={"TRADEOPS_PEERING_LIFETIME": "5"})
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    time.sleep(1.1)  # the next second: a higher default priority
    new = start("rolling-new", args=peering, env={"TRADEOPS_PEERING_LIFETIME": "5"})
    wait_for(lambda: "Pausing operations in favour of" in old.log(), 15, "the old replica to yield")
    patch_spec(kube, ns, "spy", {"image": "ghcr.io/tradeops/trading-runtime:2.0.0"})
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=2)
    old.stop()  # the old pod terminates after the hand-over
    patch_spec(kube, ns, "spy", {"image": "ghcr.io/tradeops/trading-runtime:3.0.0"})
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=3)
    assert new.process is not None
    assert new.process.poll() is None
