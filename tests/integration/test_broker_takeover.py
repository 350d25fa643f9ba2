"""The book against the broker at takeover, real processes: two replicas of SPY send their orders to the
devstack's paper broker over HTTP (`config.broker`). The leader flushes its rows rarely, and is killed with
SIGKILL at a moment its fills reached the broker and not PostgreSQL: the new leader must book every one of them
(the same ids, prices and fees as the broker's), end with the broker's positions without adopting any, and send
no order twice (counted at the broker). An order held on the wire past the leader's renew deadline must be
refused as expired, booked by nobody, and the new leader must read the broker only after it expired. A runtime
alone whose broker does not answer at start trades nothing, halted, until it does. Real PostgreSQL, the
synthetic feed over WebSocket, the Lease on the emulated API server over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import signal
import threading
import time
import urllib.request
from typing import Any

import psycopg
import pytest
from aiohttp import web

from devstack.paper_broker import KeyLimit, PaperBroker
from devstack.processes import EmulatorProcess, FeedProcess
from tests.integration.runtime_process import RuntimeProcess, wait_until
from tests.servers import ThrowawayPostgres, free_port
from trading_runtime.feeds.client import FeedClient

LEASE = ("--lease-name", "tradeops-spy", "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5")
SECRET = "secret-alpha"
STRATEGY = {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}


class BrokerThread:
    """The devstack's paper broker on a loop of its own (the test's waits block): it follows the feed and
    listens on `port`."""

    def __init__(self, feed_url: str, port: int) -> None:
        self.broker = PaperBroker({SECRET: KeyLimit("alpha", 200.0, 50)})
        self.feed_url, self.port = feed_url, port
        self.url = f"http://127.0.0.1:{port}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def start(self) -> BrokerThread:
        self._thread.start()
        assert self._ready.wait(30), "the paper broker did not start"
        wait_until(lambda: "SPY" in self.broker.book.snapshots, 60, "the broker's book of SPY")
        return self

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        following = asyncio.create_task(FeedClient(self.feed_url, ["SPY"], self.broker.book.on_message).run(self._stop))
        runner = web.AppRunner(self.broker.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        with contextlib.suppress(Exception):
            await following
        await runner.cleanup()

    def stop(self) -> None:
        if self._ready.is_set():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {SECRET}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    def positions(self) -> dict[str, float]:
        return {p["instrument"]: float(p["quantity"]) for p in self.get("/v1/positions")}


def broker_section(url: str) -> dict[str, Any]:
    return {
        "endpoints": [url],
        "openSeconds": 1,
        "deadlineSeconds": 5,
        "orderTimeoutSeconds": 10,
        "keys": [
            {
                "name": "alpha",
                "secretKeyRef": {"name": "broker-keys", "key": "alpha"},
                "ratePerSecond": 100,
                "burst": 20,
            }
        ],
    }


def replica(
    workdir, name: str, feed_url: str, broker_url: str, dsn: str, emulator_url: str | None, flush_ms: int
) -> RuntimeProcess:
    runtime = {
        "strategy": STRATEGY,
        "broker": broker_section(broker_url),
        "parameters": {"batchSize": 10000, "flushIntervalMs": flush_ms},
    }
    env = {"TRADEOPS_API_KEY_ALPHA": SECRET}
    if emulator_url is not None:
        env |= {"TRADEOPS_KUBE_API_URL": emulator_url, "POD_NAMESPACE": "default", "POD_NAME": name}
    process = RuntimeProcess(workdir / name, "SPY", feed_url, runtime=runtime, database_url=dsn, env=env)
    if emulator_url is not None:
        process.args += list(LEASE)
    return process


def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def book(dsn: str) -> dict[str, float]:
    """Non-zero positions of the book in PostgreSQL (each instrument's latest row)."""
    latest = query(
        dsn,
        """SELECT DISTINCT ON (instrument) instrument, quantity FROM positions
                           ORDER BY instrument, ts DESC, seq DESC""",
    )
    return {str(i): float(q) for i, q in latest if q}


def took_over(runtime: RuntimeProcess) -> dict[str, float]:
    for line in runtime.log_path.read_text().splitlines():
        if "took over" in line and line.startswith("{"):
            return dict(json.loads(json.loads(line)["message"].split("took over ", 1)[1]))
    raise AssertionError(f"{runtime.log_path}: no takeover logged")


@pytest.fixture
def stack(tmp_path):
    started: list[Any] = []
    try:
        postgres = ThrowawayPostgres().init().start()
        started.append(postgres)
        emulator = EmulatorProcess(tmp_path).start()
        started.append(emulator)
        feed = FeedProcess(tmp_path, symbols="SPY", rate=100.0, seed=11).start()
        started.append(feed)
        yield tmp_path, postgres, emulator, feed, started
    finally:
        for server in reversed(started):
            server.stop()


def booked_fills(dsn: str) -> dict[str, tuple[float, float, float]]:
    """Every fill in PostgreSQL by its order id: (quantity, price, fee)."""
    rows = query(dsn, "SELECT order_id::text, quantity, price, fee FROM fills")
    return {str(o): (float(q), float(p), float(f)) for o, q, p, f in rows}


def broker_fills(broker: BrokerThread) -> dict[str, tuple[float, float, float]]:
    return {f["clientOrderId"]: (float(f["quantity"]), float(f["price"]), float(f["fee"]))
            for f in list(broker.broker.fills)}


def kill_with_unflushed_fills(leader: RuntimeProcess, broker: BrokerThread, dsn: str, timeout: float) -> set[str]:
    """SIGKILL the leader at a moment when the broker holds fills of its that PostgreSQL does not: frozen first
    (SIGSTOP: no flush can slip in), checked, and killed — or let go on until its next fill. Returns the order
    ids of the fills it never booked, once requests it had on the wire have landed."""
    assert leader.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(broker.broker.fills) >= 3:
            leader.process.send_signal(signal.SIGSTOP)
            if set(broker_fills(broker)) - set(booked_fills(dsn)):
                leader.process.send_signal(signal.SIGKILL)
                leader.process.wait(10)
                time.sleep(0.5)  # a request the kernel had already sent lands at the local broker within this
                return set(broker_fills(broker)) - set(booked_fills(dsn))
            leader.process.send_signal(signal.SIGCONT)
        time.sleep(0.2)
    raise AssertionError(f"no moment within {timeout:g}s where the leader had fills the book lacked")


def leader_and_standby(stack, leader_flush_ms: int) -> tuple[BrokerThread, RuntimeProcess, RuntimeProcess]:
    """The paper broker, and two replicas of SPY ordering through it: the first leading, the second warm."""
    workdir, postgres, emulator, feed, started = stack
    broker = BrokerThread(feed.url, free_port()).start()
    started.append(broker)
    leader = replica(workdir, "spy-a", feed.url, broker.url, postgres.dsn, emulator.url, flush_ms=leader_flush_ms)
    standby = replica(workdir, "spy-b", feed.url, broker.url, postgres.dsn, emulator.url, flush_ms=50)
    started += [standby, leader]
    leader.start()
    wait_until(lambda: leader.metric("tradeops_leader{") == 1.0, 60, "the first replica leads")
    standby.start()
    wait_until(lambda: (standby.metric("tradeops_ticks_total") or 0) > 50, 60, "the standby's warm state")
    return broker, leader, standby


def test_a_new_leader_books_every_fill_a_killed_leader_left_unflushed(stack):
    postgres = stack[1]
    # The leader flushes once a minute: its fills reach the broker, not PostgreSQL, before it dies.
    broker, leader, standby = leader_and_standby(stack, leader_flush_ms=60000)
    unbooked = kill_with_unflushed_fills(leader, broker, postgres.dsn, 240)
    assert unbooked, "the scenario guarantees work to reconcile"
    at_kill = broker.positions()

    wait_until(lambda: standby.metric("tradeops_leader{") == 1.0, 30, "the takeover", every=0.05)
    # The new leader started from the broker's positions, reached by booking the missing fills.
    assert took_over(standby) == at_kill
    assert standby.metric("tradeops_fills_replayed_total") == len(unbooked)
    assert standby.metric("tradeops_book_reconciled_total") in (None, 0.0)  # the fills explained every quantity
    time.sleep(3)  # the new leader trades on (it may send orders of its own)
    assert standby.stop() == 0  # SIGTERM: every row flushed
    served = dict(broker.broker.served)
    final = broker.positions()

    # No order was sent twice: every POST the broker took was a new client order id; none arrived too late.
    assert served.get("order-again", 0) == 0, served
    assert served.get("expired", 0) == 0, served
    assert served.get("order", 0) == len(broker.broker.orders)
    # Every order and fill the broker has is in PostgreSQL under the same id, at the same price and fee.
    fills = broker_fills(broker)
    assert booked_fills(postgres.dsn) == fills
    orders = {str(i) for (i,) in query(postgres.dsn, "SELECT id::text FROM orders")}
    assert set(fills) <= orders
    assert book(postgres.dsn) == final
    events = query(postgres.dsn, "SELECT detail FROM risk_events WHERE kind = 'fills-replayed'")
    assert [{f["order_id"] for f in e["fills"]} for (e,) in events] == [unbooked]
    assert query(postgres.dsn, "SELECT count(*) FROM risk_events WHERE kind = 'book-reconciled'") == [(0,)]
    print(json.dumps({"replayed": len(unbooked), "broker_calls": served}))


def test_an_order_on_the_wire_past_the_leaders_deadline_expires_and_is_booked_by_nobody(stack):
    postgres = stack[1]
    broker, leader, standby = leader_and_standby(stack, leader_flush_ms=50)
    wait_until(lambda: len(broker.broker.fills) >= 1, 180, "a first order filled")
    # The wire slows down: an order now reaches the broker 4 s after it was sent, past the 2 s renew deadline.
    broker.broker.order_delay = 4.0
    wait_until(lambda: broker.broker.delayed >= 1, 240, "an order held on the wire")
    assert leader.process is not None
    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(10)
    killed_at = time.time()
    broker.broker.order_delay = 0.0  # the new leader's orders go through (the held one stays held)

    wait_until(lambda: standby.metric("tradeops_leader{") == 1.0, 30, "the takeover", every=0.05)
    wait_until(lambda: broker.broker.expired, 10, "the held order judged")
    time.sleep(2)
    assert standby.stop() == 0
    expired = list(broker.broker.expired)
    # Refused as expired: it reached the broker after its expiry, which was no later than the leader's deadline.
    assert all(e["receivedAt"] > e["expireAt"] for e in expired)
    # The new leader read the broker only once every order the old one could have sent had expired.
    reads = [t for t in broker.broker.fill_reads if t > killed_at]
    assert reads, "the new leader read the broker's fills"
    assert min(reads) >= max(e["expireAt"] for e in expired)
    # Booked by nobody: an expired request has no fill; its id fills only if the new leader sent it afresh.
    fills = broker_fills(broker)
    for e in expired:
        order = broker.broker.orders.get(e["clientOrderId"])
        assert order is None or order["status"] != "filled" or _filled_at(order) > e["receivedAt"]
    assert booked_fills(postgres.dsn) == fills
    assert book(postgres.dsn) == broker.positions()
    assert standby.metric("tradeops_book_reconciled_total") in (None, 0.0)
    assert query(postgres.dsn, "SELECT count(*) FROM risk_events WHERE kind = 'book-reconciled'") == [(0,)]
    print(json.dumps({"expired": len(expired), "broker_calls": dict(broker.broker.served)}))


def _filled_at(order: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(order["filledAt"]).timestamp()


def test_a_runtime_whose_broker_does_not_answer_at_start_is_halted_until_it_does(stack):
    workdir, postgres, _, feed, started = stack
    port = free_port()
    runtime = replica(workdir, "spy-solo", feed.url, f"http://127.0.0.1:{port}", postgres.dsn, None, flush_ms=50)
    started.append(runtime)
    runtime.start()
    halted = 'tradeops_trading_halted{reason="reconcile",symbol="SPY"}'
    wait_until(lambda: runtime.metric(halted) == 1.0, 60, "halted while the broker is away")
    time.sleep(2)
    assert runtime.metric(halted) == 1.0
    assert runtime.metric("tradeops_orders_total") in (None, 0.0)
    broker = BrokerThread(feed.url, port).start()
    started.append(broker)
    wait_until(lambda: runtime.metric(halted) == 0.0, 60, "the halt lifted once the broker answers")
    assert broker.broker.served.get("positions", 0) >= 1
    wait_until(lambda: broker.broker.served.get("order", 0) >= 1, 180, "orders once the book is reconciled")
