"""Two replicas of one symbol, real processes: one trades, one stands by; the leader is killed with SIGKILL
mid-run and the standby takes over. Real PostgreSQL and Redis, the synthetic feed over WebSocket, the Lease
on the emulated API server over HTTP (the devstack's stand-in for the in-cluster API).

Counted in PostgreSQL afterwards: every order placed once (no decision ordered twice, no order claimed by two
processes), the two holders' orders never interleaved, and each instrument's position continuous across the
takeover (the new leader started from the book, not flat)."""

from __future__ import annotations

import json
import signal
import time
import urllib.request

import psycopg
import pytest

from devstack.processes import EmulatorProcess, FeedProcess
from tests.integration.runtime_process import RuntimeProcess, wait_until
from tests.servers import ThrowawayPostgres, ThrowawayRedis

LEASE = ("--lease-name", "tradeops-spy", "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5")
TAKEOVER_BOUND_S = 3 + 0.5 + 4.5
"""The lease duration, one retry period, and margin for the book load and a loaded machine."""
RUNTIME = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
           "parameters": {"batchSize": 50, "flushIntervalMs": 50}}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("takeover")
    started = []
    try:
        postgres = ThrowawayPostgres().init().start()
        started.append(postgres)
        redis = ThrowawayRedis().start()
        started.append(redis)
        emulator = EmulatorProcess(workdir).start()
        started.append(emulator)
        feed = FeedProcess(workdir, symbols="SPY", rate=100.0, seed=11).start()
        started.append(feed)
        yield workdir, postgres, redis, emulator, feed
    finally:
        for server in reversed(started):
            server.stop()


def replica(workdir, name, postgres, redis, emulator, feed) -> RuntimeProcess:
    runtime = RuntimeProcess(workdir / name, "SPY", feed.url, runtime=RUNTIME, database_url=postgres.dsn,
                             env={"TRADEOPS_KUBE_API_URL": emulator.url, "POD_NAMESPACE": "default",
                                  "POD_NAME": name})
    runtime.args += ["--redis-url", redis.url, *LEASE]
    return runtime


def query(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def logged_orders(runtime: RuntimeProcess) -> dict[str, float]:
    """Order id → exchange time, from the process's own log (what it placed, written or not)."""
    orders = {}
    for line in runtime.log_path.read_text().splitlines():
        if line.startswith("{") and '"order_id"' in line:
            record = json.loads(line)
            orders[record["order_id"]] = float(record["exchange_ts"])
    return orders


def held(dsn: str, where: str = "") -> dict[str, float]:
    """Non-zero positions of the book (the latest row of each instrument), optionally as of a time."""
    latest = query(dsn, f"""SELECT DISTINCT ON (instrument) instrument, quantity FROM positions {where}
                             ORDER BY instrument, ts DESC, seq DESC""")
    return {str(i): float(q) for i, q in latest if q}


def took_over(runtime: RuntimeProcess) -> dict[str, float]:
    """The positions the process loaded from the book when it became leader (its log says)."""
    for line in runtime.log_path.read_text().splitlines():
        if "took over" in line and line.startswith("{"):
            return dict(json.loads(json.loads(line)["message"].split("took over ", 1)[1]))
    raise AssertionError(f"{runtime.log_path}: no takeover logged")


def leader_of(runtimes: list[RuntimeProcess]) -> list[RuntimeProcess]:
    return [r for r in runtimes if r.metric("tradeops_leader{") == 1.0]


def test_the_standby_takes_over_a_killed_leader_without_duplicate_orders_or_lost_positions(servers):
    workdir, postgres, redis, emulator, feed = servers
    runtimes = [replica(workdir, name, postgres, redis, emulator, feed) for name in ("spy-a", "spy-b")]
    for runtime in runtimes:
        runtime.start()
    try:
        # One leader, one standby; both warm (the standby computes signals) and both Ready.
        wait_until(lambda: len(leader_of(runtimes)) == 1
                   and all(r.metric("tradeops_leader{") is not None for r in runtimes), 60, "one leader")
        leader = leader_of(runtimes)[0]
        standby = next(r for r in runtimes if r is not leader)
        wait_until(lambda: (standby.metric("tradeops_ticks_total") or 0) > 50, 60, "the standby's warm state")
        assert standby.metric("tradeops_orders_total") in (None, 0.0)
        with urllib.request.urlopen(f"http://{standby.address}/readyz", timeout=5) as answer:
            assert answer.status == 200  # a standby is Ready: it is warm

        # The leader trades, then dies mid-run, holding a position, without any cleanup.
        wait_until(lambda: query(postgres.dsn, "SELECT count(*) FROM orders")[0][0] >= 4 and held(postgres.dsn), 180,
                   "orders by the leader and a position held")
        assert leader.process is not None
        leader.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.process.wait(10)
        wait_until(lambda: standby.metric("tradeops_leader{") == 1.0, TAKEOVER_BOUND_S + 10, "the takeover",
                   every=0.05)
        takeover = time.monotonic() - killed
        assert standby.metric('tradeops_leader_transitions_total{symbol="SPY",to="leader"}') == 1.0
        before = query(postgres.dsn, "SELECT count(*) FROM orders")[0][0]
        wait_until(lambda: query(postgres.dsn, "SELECT count(*) FROM orders")[0][0] >= before + 2, 120,
                   "orders by the new leader")
        assert standby.stop() == 0  # SIGTERM: flushed, lease released
    finally:
        for runtime in runtimes:
            runtime.stop()

    print(json.dumps({"takeover_seconds": round(takeover, 2)}))
    # The book is fenced by the last term to load it (storage/epochs.py): one epoch per leadership term.
    terms = sum("loading the book before trading" in line
                for r in (leader, standby) for line in r.log_path.read_text().splitlines())
    assert terms >= 2
    assert query(postgres.dsn, "SELECT symbol, epoch FROM book_epochs") == [("SPY", terms)]
    assert takeover <= TAKEOVER_BOUND_S

    # Every order in the book was placed by exactly one process, under the id its decision determines.
    by_leader, by_standby = logged_orders(leader), logged_orders(standby)
    written = {str(i): ts.timestamp() for i, ts in query(postgres.dsn, "SELECT id, ts FROM orders")}
    assert set(written) <= set(by_leader) | set(by_standby)
    assert not set(by_leader) & set(by_standby)
    assert by_leader
    assert by_standby
    # No decision was ordered twice: one order per (decision, instrument).
    assert query(postgres.dsn, "SELECT signal_id, instrument FROM orders GROUP BY 1, 2 HAVING count(*) > 1") == []
    # Never two traders at once: the old leader's orders all precede the new leader's.
    assert max(by_leader.values()) < min(by_standby.values())

    # Positions continuous: each instrument's last position is the sum of all its fills, across both holders.
    rows = query(postgres.dsn, """
        SELECT o.instrument, sum(f.quantity) FROM fills f JOIN orders o ON o.id = f.order_id GROUP BY 1""")
    latest = dict(query(postgres.dsn, """
        SELECT DISTINCT ON (instrument) instrument, quantity FROM positions ORDER BY instrument, ts DESC, seq DESC"""))
    assert rows
    for instrument, filled in rows:
        assert latest[instrument] == pytest.approx(filled), instrument
    # The new leader started from the book the old one left (positions written before its first order).
    first = min(by_standby.values())
    left = held(postgres.dsn, f"WHERE ts < to_timestamp({first!r})")
    print(json.dumps({"book_at_takeover": left}))
    assert took_over(standby) == left


def test_a_recreated_lease_over_an_old_book_still_trades_above_its_epochs(servers):
    """A Lease deleted and recreated (the TradingSymbol applied again; a database restored into another cluster)
    starts its leaseTransitions at 0, while the book's epochs went far past that: the database hands out the
    epochs, so the new leader takes the next one and trades, and its rows land."""
    workdir, postgres, redis, emulator, feed = servers
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute("INSERT INTO book_epochs (symbol, epoch) VALUES ('SPY', 1000) "
                     "ON CONFLICT (symbol) DO UPDATE SET epoch = 1000")
    runtime = replica(workdir, "spy-late", postgres, redis, emulator, feed)
    runtime.args[runtime.args.index("tradeops-spy")] = "tradeops-spy-recreated"  # a new Lease
    orders = query(postgres.dsn, "SELECT count(*) FROM orders")[0][0]
    runtime.start()
    try:
        wait_until(lambda: runtime.metric("tradeops_leader{") == 1.0, 60, "the lead")
        wait_until(lambda: query(postgres.dsn, "SELECT count(*) FROM orders")[0][0] > orders, 120,
                   "its orders in the book")
        assert runtime.metric("tradeops_db_rows_fenced_total") in (None, 0.0)
    finally:
        assert runtime.stop() == 0
    assert query(postgres.dsn, "SELECT epoch FROM book_epochs WHERE symbol = 'SPY'") == [(1001,)]
