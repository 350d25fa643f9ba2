"""The audit recorder against the emulated Kubernetes API over HTTP and a real PostgreSQL: TradingSymbol
changes with who and the diff (opsctl's stamp, or unknown), the switches they flip, the operator's Events
and revisions; a restart records what changed while it was away, once, and the chain verifies."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from audit.recorder import Recorder
from audit.store import entries, verify_log
from audit.watching import ApiStream
from opsctl.main import app
from tests.integration.conftest import Stack
from tests.integration.operator_harness import create_ts
from tests.servers import audit_database
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import CONTROLLER_REVISIONS, EVENTS

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with audit_database() as dsn:
        yield dsn


class Running:
    def __init__(self, stack: Stack, dsn: str, namespace: str) -> None:
        self.stop = threading.Event()
        ready = threading.Event()
        self.recorder = Recorder(ApiStream(stack.kube.api_client), dsn, namespace, watch_seconds=2)
        self.thread = threading.Thread(target=self.recorder.run, args=(self.stop, ready), daemon=True)
        self.thread.start()
        assert ready.wait(20)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def recorded(dsn: str, namespace: str) -> list[tuple[str, str, dict]]:
    """(kind, actor, detail) of the entries about this test's namespace."""
    found = []
    for entry in entries(dsn):
        detail = json.loads(entry.detail_text)
        if detail.get("namespace") == namespace:
            found.append((entry.kind, entry.actor, detail))
    return found


def wait_recorded(dsn: str, namespace: str, kind: str, count: int = 1, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in recorded(dsn, namespace) if e[0] == kind]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{count} {kind} entries not recorded: {recorded(dsn, namespace)}"
        time.sleep(0.1)


def event(namespace: str, name: str, reason: str, message: str) -> dict:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {"apiVersion": TRADING_SYMBOLS.api_version, "kind": "TradingSymbol", "name": name,
                               "namespace": namespace},
            "type": "Warning", "reason": reason, "message": message, "source": {"component": "tradeops-operator"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1}


def test_changes_who_made_them_and_what_the_operator_did(stack, ns, database):
    running = Running(stack, database, ns)
    try:
        create_ts(stack.kube, ns, "spy")
        created = wait_recorded(database, ns, "symbol-created")
        assert created[0][1] == "unknown"
        assert created[0][2]["state"]["spec"]["symbol"] == "SPY"

        halted = runner.invoke(app, ["--kubeconfig", str(stack.emulator.kubeconfig), "-n", ns, "halt", "spy",
                                     "--reason", "kill-switch test"])
        assert halted.exit_code == 0, halted.output
        (_, actor, detail), = wait_recorded(database, ns, "halt")
        assert "via opsctl" in actor
        assert detail["reason"] == "kill-switch test"
        assert detail["change"] == {"path": "spec.tradingEnabled", "before": True, "after": False}

        stack.kube.merge_patch(TRADING_SYMBOLS, ns, "spy", {"spec": {"replicas": 2}})
        changes = wait_recorded(database, ns, "symbol-changed", 2)
        assert changes[-1][1] == "unknown", "an unstamped change must not inherit opsctl's earlier stamp"
        assert changes[-1][2]["diff"] == [{"path": "spec.replicas", "before": 1, "after": 2}]

        stack.kube.create(EVENTS, ns, event(ns, "spy", "RolledBack", "Rolled back from 2 to 1: latency 0.24 s"))
        (_, actor, detail), = wait_recorded(database, ns, "rollback")
        assert (actor, detail["message"]) == ("tradeops-operator", "Rolled back from 2 to 1: latency 0.24 s")
        # A revision of its own (an operator that shares this worker's stack may record spy's real ones too).
        stack.kube.create(CONTROLLER_REVISIONS, ns, {
            "apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 7,
            "metadata": {"name": "spy-audit-7", "labels": {"trading.tradeops.io/trading-symbol": "spy",
                                                           "trading.tradeops.io/symbol": "SPY"}},
            "data": {"image": "ghcr.io/tradeops/trading-runtime:1.0.0", "specHash": "abc"}})
        deadline = time.monotonic() + 20
        while not [d for _, _, d in wait_recorded(database, ns, "revision") if d["specHash"] == "abc"]:
            assert time.monotonic() < deadline, f"revision 7 not recorded: {recorded(database, ns)}"
            time.sleep(0.1)
        (detail,) = [d for _, _, d in wait_recorded(database, ns, "revision") if d["specHash"] == "abc"]
        assert detail["revision"] == 7
    finally:
        running.close()

    # Away: a change and nothing else. Back: the change is recorded as a diff, the rest not again.
    stack.kube.merge_patch(TRADING_SYMBOLS, ns, "spy", {"spec": {"replicas": 3}})
    running = Running(stack, database, ns)
    try:
        changes = wait_recorded(database, ns, "symbol-changed", 3)
        assert changes[-1][2]["diff"] == [{"path": "spec.replicas", "before": 2, "after": 3}]
        stack.kube.delete(TRADING_SYMBOLS, ns, "spy")
        # An operator sharing this worker's stack drains first (up to the spec's 30 s): its progress is not a change.
        wait_recorded(database, ns, "symbol-deleted", timeout=60)
        assert not [d for kind, _, d in recorded(database, ns) if kind == "symbol-changed" and any(
            "touch-dummy" in c["path"] or c["path"].endswith("/drain") for c in d["diff"])]
    finally:
        running.close()
    kinds = [kind for kind, _, _ in recorded(database, ns)]
    assert kinds.count("rollback") == 1
    # Revision 7 once; spy's own revisions, if an operator shared the stack, are recorded once each.
    revisions = [(d["revision"], d["specHash"]) for kind, _, d in recorded(database, ns) if kind == "revision"]
    assert revisions.count((7, "abc")) == 1, revisions
    assert len(revisions) == len(set(revisions)), revisions
    assert kinds.count("symbol-created") == 1
    assert verify_log(database).ok
