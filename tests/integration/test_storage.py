"""The runtime's storage against a real (throwaway) PostgreSQL: migrations, COPY batches, outages."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import json

import psycopg
import pytest
import yaml

from tests.servers import ThrowawayPostgres
from trading_runtime.config import RenderedConfig, RuntimeConfig, Switches
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.main import Runtime
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.storage.schema import MIGRATIONS, migrate
from trading_runtime.storage.writer import WriteBehind, WriteBehindFullError


@pytest.fixture
def postgres():
    server = ThrowawayPostgres().init().start()
    try:
        yield server
    finally:
        server.destroy()


def tick(i: int) -> tuple:
    ts = datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC) + datetime.timedelta(milliseconds=i)
    return (ts, "SPY", "SPY", "quote", 500.0, 500.02, 100.0, 100.0, None, None, i)


def count(server: ThrowawayPostgres, table: str = "ticks") -> int:
    with psycopg.connect(server.dsn) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def distinct_seqs(server: ThrowawayPostgres) -> int:
    with psycopg.connect(server.dsn) as conn:
        return int(conn.execute("SELECT count(DISTINCT seq) FROM ticks").fetchone()[0])


def test_migrations_apply_once_even_when_runtimes_start_together(postgres):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: migrate(postgres.dsn), range(4)))
    assert sorted(map(tuple, results)) == [(), (), (), tuple(v for v, _, _ in MIGRATIONS)]
    assert migrate(postgres.dsn) == []
    assert count(postgres, "schema_migrations") == len(MIGRATIONS)


async def test_rows_are_copied_in_batches(postgres, tmp_path):
    migrate(postgres.dsn)
    writer = WriteBehind(postgres.dsn, tmp_path / "spill.jsonl", batch_size=100, flush_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    for i in range(1000):
        writer.put("ticks", tick(i))
    writer.put("risk_events", (datetime.datetime.now(datetime.UTC), "SPY", "drawdown", "warning", {"dd": 0.05}))
    stop.set()
    await asyncio.wait_for(task, 20)
    assert count(postgres) == 1000
    assert count(postgres, "risk_events") == 1
    assert writer.stats.written == 1001


async def test_database_restart_mid_run_loses_no_rows(postgres, tmp_path):
    migrate(postgres.dsn)
    writer = WriteBehind(postgres.dsn, tmp_path / "spill.jsonl", capacity=2000, batch_size=200,
                         flush_interval=0.02, backoff_cap=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    produced = 0
    for phase in ("up", "down", "up"):
        if phase == "down":
            await asyncio.to_thread(postgres.stop, "immediate")
        elif produced:
            await asyncio.to_thread(postgres.start)
        for _ in range(3000):  # more than the queue holds while the database is down: some rows spill
            writer.put("ticks", tick(produced))
            produced += 1
            if produced % 100 == 0:
                await asyncio.sleep(0.005)
    stop.set()
    await asyncio.wait_for(task, 60)
    assert writer.stats.outages >= 1
    assert writer.stats.spilled > 0
    assert writer.stats.replayed == writer.stats.spilled
    assert count(postgres) == produced == 9000
    assert distinct_seqs(postgres) == produced


def test_full_queue_and_spill_is_a_clear_error(tmp_path):
    writer = WriteBehind("host=127.0.0.1 port=1 connect_timeout=1", tmp_path / "spill.jsonl", capacity=10,
                         spill_capacity=5)
    for i in range(15):
        writer.put("ticks", tick(i))
    with pytest.raises(WriteBehindFullError, match=r"spill file .* are full"):
        writer.put("ticks", tick(15))
    assert writer.stats.rejected == 1


async def test_shutdown_without_database_spills_and_next_start_replays(postgres, tmp_path):
    migrate(postgres.dsn)
    spill = tmp_path / "spill.jsonl"
    postgres.stop("immediate")
    writer = WriteBehind(postgres.dsn, spill, backoff_cap=0.1)
    for i in range(50):
        writer.put("ticks", tick(i))
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(writer.run(stop), 20)
    assert writer.spill_rows == 50
    postgres.start()
    again = WriteBehind(postgres.dsn, spill)
    assert again.spill_rows == 50
    stop2 = asyncio.Event()
    stop2.set()
    await asyncio.wait_for(again.run(stop2), 20)
    assert count(postgres) == 50
    assert not spill.exists()


def test_rows_of_the_wrong_width_are_refused(tmp_path):
    writer = WriteBehind("host=127.0.0.1", tmp_path / "spill.jsonl")
    with pytest.raises(ValueError, match="ticks rows have 11 columns"):
        writer.put("ticks", (1, 2))


async def test_rows_the_database_refuses_are_isolated_and_dead_lettered(postgres, tmp_path):
    migrate(postgres.dsn)
    spill = tmp_path / "spill.jsonl"
    writer = WriteBehind(postgres.dsn, spill, batch_size=100)
    now = datetime.datetime.now(datetime.UTC)
    for i in range(20):
        writer.put("ticks", tick(i))
    writer.put("orders", ("not-a-uuid", now, "SPY", "SPY", "buy", 1.0, None, None, "filled"))
    writer.put("orders", ("00000000-0000-0000-0000-000000000001", now, "SPY", "SPY", "sideways", 1.0, None, None,
                          "filled"))
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(writer.run(stop), 20)
    assert count(postgres) == 20
    assert writer.stats.dead_lettered == 2
    dead = writer.dead_letter_path.read_text().splitlines()
    assert len(dead) == 2
    assert "invalid input syntax for type uuid" in dead[0]
    assert "check constraint" in dead[1]


async def test_position_snapshots_may_share_a_timestamp(postgres, tmp_path):
    migrate(postgres.dsn)
    writer = WriteBehind(postgres.dsn, tmp_path / "spill.jsonl")
    now = datetime.datetime.now(datetime.UTC)
    writer.put("positions", (now, "SPY", "SPY", 0.0, 0.0, 5.0))
    writer.put("positions", (now, "SPY", "SPY", 100.0, 500.0, 5.0))
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(writer.run(stop), 20)
    assert count(postgres, "positions") == 2
    assert writer.stats.dead_lettered == 0


def signal_row(signal_id: str, now: datetime.datetime) -> tuple:
    return (signal_id, now, "SPY", 1, 1, 0.7, 0.6, {})


async def test_orders_wait_for_their_signal_even_across_batches(postgres, tmp_path):
    """batchSize 1: the order's signal is the third signal queued, so the first batch may not take the order."""
    migrate(postgres.dsn)
    writer = WriteBehind(postgres.dsn, tmp_path / "spill.jsonl", batch_size=1)
    now = datetime.datetime.now(datetime.UTC)
    ids = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 4)]
    for signal_id in ids:
        writer.put("signals", signal_row(signal_id, now))
    order = "00000000-0000-0000-0000-0000000000a1"
    writer.put("orders", (order, now, "SPY", "SPY C500", "buy", 1.0, None, ids[-1], "filled"))
    writer.put("fills", ("00000000-0000-0000-0000-0000000000f1", now, order, 1.0, 5.0, 0.65))
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(writer.run(stop), 20)
    assert writer.stats.dead_lettered == 0
    assert (count(postgres, "signals"), count(postgres, "orders"), count(postgres, "fills")) == (3, 1, 1)


async def test_a_signal_order_and_fill_written_again_are_kept_once(postgres, tmp_path):
    """Deterministic ids (a retried batch whose commit was not acknowledged, a new leader re-deciding): the
    second copy is skipped, not refused — nothing dead-lettered — counted in `duplicates`, the first kept."""
    migrate(postgres.dsn)
    now = datetime.datetime.now(datetime.UTC)
    signal, order, fill = (f"00000000-0000-0000-0000-00000000000{c}" for c in "1af")
    rows = [("signals", signal_row(signal, now)),
            ("orders", (order, now, "SPY", "SPY C500", "buy", 1.0, None, signal, "filled")),
            ("fills", (fill, now, order, 1.0, 5.0, 0.65))]
    for attempt, quantity in ((1, 1.0), (2, 2.0)):  # the replay's quantity differs: the first row stays
        writer = WriteBehind(postgres.dsn, tmp_path / f"spill-{attempt}.jsonl")
        for table, row in rows:
            writer.put(table, row if table != "orders" else (*row[:5], quantity, *row[6:]))
        writer.put("orders", (order, now, "SPY", "SPY C500", "buy", quantity, None, signal, "filled"))  # in-batch
        stop = asyncio.Event()
        stop.set()
        await asyncio.wait_for(writer.run(stop), 20)
        assert writer.stats.dead_lettered == 0
        assert writer.stats.duplicates == (1 if attempt == 1 else 4)
        assert writer.stats.written == (3 if attempt == 1 else 0)
    assert (count(postgres, "signals"), count(postgres, "orders"), count(postgres, "fills")) == (1, 1, 1)
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SELECT quantity FROM orders").fetchone()[0] == 1.0
        # The audit log records the order once (its trigger fires on rows actually inserted).
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE source_key = %s", (f"orders/{order}",))
        assert audited.fetchone()[0] == 1


async def test_an_order_put_while_its_signal_is_spilled_follows_it_to_the_spill(postgres, tmp_path):
    migrate(postgres.dsn)
    spill = tmp_path / "spill.jsonl"
    writer = WriteBehind(postgres.dsn, spill, capacity=2, batch_size=1)
    now = datetime.datetime.now(datetime.UTC)
    writer.put("ticks", tick(0))
    writer.put("ticks", tick(1))  # the queue is full: the signal spills
    writer.put("signals", signal_row("00000000-0000-0000-0000-000000000001", now))
    writer.pending["ticks"].clear()  # room in the queue again; the order must still not overtake its signal
    writer.put("orders", ("00000000-0000-0000-0000-0000000000a1", now, "SPY", "SPY C500", "buy", 1.0, None,
                          "00000000-0000-0000-0000-000000000001", "filled"))
    assert writer.spill_rows == 2
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(writer.run(stop), 20)
    assert writer.stats.dead_lettered == 0
    assert (count(postgres, "signals"), count(postgres, "orders")) == (1, 1)


async def test_orders_carry_the_signal_that_moved_the_view(postgres, tmp_path):
    """The engine on the synthetic market into PostgreSQL: every order of a signal names it (and it exists);
    the kill switch's flattening orders are risk actions and name none."""
    migrate(postgres.dsn)
    writer = WriteBehind(postgres.dsn, tmp_path / "spill.jsonl", batch_size=7)
    queued: list[tuple[str, tuple]] = []

    def sink(table: str, row: tuple) -> None:
        queued.append((table, row))
        writer.put(table, row)

    engine = SymbolEngine(RenderedConfig(symbol="SPY", market="equity-options", revision=1, runtime=RuntimeConfig(
        strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5})), True, RuntimeMetrics("SPY"),
        sink, seed=0)
    simulator = MarketSimulator(["SPY"], seed=0, option_quotes_per_tick=1, trade_probability=0.6)
    messages = [simulator.snapshot("SPY"), *(m for _ in range(6000) for m in simulator.tick("SPY", 0.25))]
    for seq, message in enumerate(messages):
        await settle(engine.on_message(parse_message(json.dumps({**message, "seq": seq}))))
        if seq > 3000 and engine.broker.held():
            break  # a position open for the kill switch to flatten
    held = len(engine.broker.held())
    assert held, "the test needs an open position for the kill switch to flatten"
    before = len(queued)
    engine.set_trading_enabled(False)
    flattening = [row for table, row in queued[before:] if table == "orders"]
    assert len(flattening) == held
    assert all(row[7] is None for row in flattening)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(writer.run(stop), 60)
    assert writer.stats.dead_lettered == 0
    signal_ids = {row[0] for table, row in queued if table == "signals"}
    queued_orders = {row[0]: row[7] for table, row in queued if table == "orders"}
    with psycopg.connect(postgres.dsn) as conn:
        stored = {str(order): None if signal is None else str(signal)
                  for order, signal in conn.execute("SELECT id, signal_id FROM orders")}
        orphans = conn.execute("SELECT count(*) FROM orders o LEFT JOIN signals s ON s.id = o.signal_id "
                               "WHERE o.signal_id IS NOT NULL AND s.id IS NULL").fetchone()[0]
    assert stored == queued_orders
    assert orphans == 0
    linked = [signal for signal in stored.values() if signal is not None]
    assert len(linked) > 10
    assert set(linked) <= signal_ids


async def test_a_reloaded_config_reaches_the_writers_batch_and_flush_settings(postgres, tmp_path):
    """The runtime started with a one-minute flush interval and 10 000-row batches; runtime.yaml changes in
    place to 50 ms and 10 rows: queued rows are written within seconds."""
    migrate(postgres.dsn)
    slow = {"parameters": {"batchSize": 10_000, "flushIntervalMs": 60_000, "queueCapacity": 20_000}}
    fast = {"parameters": {"batchSize": 10, "flushIntervalMs": 50, "queueCapacity": 20_000}}
    paths = {"config": tmp_path / "runtime.yaml", "switches": tmp_path / "switches.yaml"}

    def write_config(runtime: dict, revision: int) -> RenderedConfig:
        config = RenderedConfig(symbol="SPY", market="equity-options", revision=revision,
                                runtime=RuntimeConfig.model_validate(runtime))
        paths["config"].write_text(yaml.safe_dump(config.model_dump(by_alias=True, mode="json")))
        return config

    config = write_config(slow, 1)
    paths["switches"].write_text("tradingEnabled: true\n")
    args = argparse.Namespace(database_url=postgres.dsn, spill_path=str(tmp_path / "spill.jsonl"), redis_url=None,
                              feed_url="ws://127.0.0.1:9", config=str(paths["config"]),
                              switches=str(paths["switches"]), latency_log=None)
    runtime = Runtime(args, config, Switches())
    assert runtime.writer is not None
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.writer.run(stop))
    try:
        await asyncio.sleep(0.5)  # the writer's first pass found nothing to write and waits its interval
        for i in range(50):
            runtime.sink("ticks", tick(i))
        await asyncio.sleep(1.5)
        assert count(postgres) == 0, "rows are held for the one-minute flush interval"
        write_config({"parameters": {"batchSize": 500, "flushIntervalMs": 50, "queueCapacity": 100}}, 2)
        assert not runtime.files[0].check(), "a queue bound below the batch size is refused"
        assert runtime.writer.batch_size == 10_000
        write_config(fast, 3)
        assert runtime.files[0].check()
        assert (runtime.writer.batch_size, runtime.writer.flush_interval) == (10, 0.05)
        for _ in range(100):  # within 10 s, not a minute
            if count(postgres) == 50:
                break
            await asyncio.sleep(0.1)
        assert count(postgres) == 50
    finally:
        stop.set()
        runtime.writer.wake()
        await asyncio.wait_for(task, 20)
