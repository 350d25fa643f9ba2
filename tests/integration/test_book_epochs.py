"""Fencing tokens against a real (throwaway) PostgreSQL (storage/epochs.py): a deposed leader's queued rows
never land under the book a new leader loaded — the race of issue 13, made deterministic."""

from __future__ import annotations

import asyncio
import datetime
import uuid

import psycopg
import pytest

from tests.servers import ThrowawayPostgres
from trading_runtime.storage.book import Book, load_book
from trading_runtime.storage.epochs import Deposed
from trading_runtime.storage.schema import migrate
from trading_runtime.storage.writer import WriteBehind

NOW = datetime.datetime(2026, 12, 6, 18, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def postgres():
    server = ThrowawayPostgres().init().start()
    try:
        migrate(server.dsn)
        yield server
    finally:
        server.destroy()


def trade(writer: WriteBehind, symbol: str, n: int, instrument: str, quantity: float) -> None:
    """The rows of one paper order and its fill: signal, order, fill, position snapshot."""
    signal, order, fill = (str(uuid.uuid5(uuid.NAMESPACE_OID, f"{symbol}/{n}/{kind}")) for kind in "sof")
    ts = NOW + datetime.timedelta(seconds=n)
    writer.put("signals", (signal, ts, symbol, 1, 1, 0.7, 0.6, {}))
    writer.put("orders", (order, ts, symbol, instrument, "buy", quantity, None, signal, "filled"))
    writer.put("fills", (fill, ts, order, quantity, 5.0, 0.65))
    writer.put("positions", (ts, symbol, instrument, quantity, 5.0, 0.0))


async def flush(writer: WriteBehind) -> None:
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(writer.run(stop), 20)


async def loaded(dsn: str, symbol: str, epoch: int | None) -> Book:
    book = await load_book(dsn, symbol, epoch)
    assert isinstance(book, Book)
    return book


def stored_epoch(dsn: str, symbol: str) -> int | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT epoch FROM book_epochs WHERE symbol = %s", (symbol,)).fetchone()
    return None if row is None else int(row[0])


async def test_a_deposed_leaders_queued_rows_are_refused_after_the_new_leader_loaded(postgres, tmp_path):
    """Leader of epoch 1 flushes C-500 and queues P-500; the leader of epoch 2 loads; the queued flush is then
    refused, counted per table, and the book the new leader took over is the final book."""
    dsn, symbol = postgres.dsn, "RACE"
    assert (await loaded(dsn, symbol, 1)).held == {}
    fenced: list[tuple[str, int]] = []
    old = WriteBehind(dsn, tmp_path / "old.jsonl", symbol=symbol, on_fenced=lambda t, n: fenced.append((t, n)))
    old.set_epoch(1)
    trade(old, symbol, 1, "C-500", 1.0)
    await flush(old)  # before its deadline: lands
    trade(old, symbol, 2, "P-500", 1.0)  # queued when the Lease is lost; the flush comes late

    taken_over = await loaded(dsn, symbol, 2)
    assert taken_over.held == {"C-500": 1.0}
    await flush(old)

    assert old.stats.fenced == {"signals": 1, "orders": 1, "fills": 1, "positions": 1}
    assert sorted(fenced) == [("fills", 1), ("orders", 1), ("positions", 1), ("signals", 1)]
    assert old.depth == 0  # dropped, not retried
    final = await loaded(dsn, symbol, None)
    assert final == taken_over
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE instrument = 'P-500'").fetchone()[0] == 0
    assert stored_epoch(dsn, symbol) == 2


async def test_a_flush_that_holds_the_epoch_first_commits_before_the_load_reads(postgres):
    """The other order of the race: a flush that has read the epoch (FOR SHARE) holds the load back until it
    commits, so its rows are in the book the new leader loads."""
    dsn, symbol = postgres.dsn, "FIRST"
    await loaded(dsn, symbol, 1)
    async with await psycopg.AsyncConnection.connect(dsn) as flushing:
        async with flushing.transaction():
            await flushing.execute("SELECT epoch FROM book_epochs WHERE symbol = %s FOR SHARE", (symbol,))
            await flushing.execute("INSERT INTO positions (ts, symbol, instrument, quantity, average_price, "
                                   "realized_pnl) VALUES (%s, %s, 'C-500', 2, 5, 0)", (NOW, symbol))
            load = asyncio.ensure_future(load_book(dsn, symbol, 2))
            await asyncio.sleep(0.5)
            assert not load.done()  # waits on the row lock
        book = await asyncio.wait_for(load, 10)
    assert isinstance(book, Book)
    assert book.held == {"C-500": 2.0}


async def test_a_leaders_own_flushes_and_a_runtime_without_a_lease_are_unaffected(postgres, tmp_path):
    dsn, symbol = postgres.dsn, "STEADY"
    assert (await loaded(dsn, symbol, 3)).held == {}
    leader = WriteBehind(dsn, tmp_path / "leader.jsonl", symbol=symbol, batch_size=2)
    leader.set_epoch(3)
    for n in range(5):
        trade(leader, symbol, n, f"C-{n}", 1.0)
    await flush(leader)
    assert leader.stats.fenced == {}
    assert leader.stats.written == 20
    alone = WriteBehind(dsn, tmp_path / "alone.jsonl", symbol=symbol)  # no Lease: no epoch, no check
    trade(alone, symbol, 9, "C-9", 1.0)
    await flush(alone)
    assert alone.stats.fenced == {}
    assert alone.stats.written == 4
    assert set((await loaded(dsn, symbol, 3)).held) == {f"C-{n}" for n in (0, 1, 2, 3, 4, 9)}


async def test_a_load_by_an_earlier_term_finds_itself_deposed(postgres):
    dsn, symbol = postgres.dsn, "LATE"
    await loaded(dsn, symbol, 5)
    assert await load_book(dsn, symbol, 4) == Deposed(symbol, 4, 5)
    assert stored_epoch(dsn, symbol) == 5  # never lowered
    await loaded(dsn, symbol, 5)  # the same term loading again (a re-promotion) is its own


async def test_rows_keep_the_epoch_they_were_put_under(postgres, tmp_path):
    """A process deposed and then leading again: its rows of the old term are refused, the new term's land."""
    dsn, symbol = postgres.dsn, "AGAIN"
    await loaded(dsn, symbol, 1)
    writer = WriteBehind(dsn, tmp_path / "w.jsonl", symbol=symbol)
    writer.set_epoch(1)
    trade(writer, symbol, 1, "C-1", 1.0)
    await loaded(dsn, symbol, 2)  # another leader's term
    await loaded(dsn, symbol, 3)  # this process's next term
    writer.set_epoch(3)
    trade(writer, symbol, 2, "C-2", 1.0)
    await flush(writer)
    assert writer.stats.fenced == {"signals": 1, "orders": 1, "fills": 1, "positions": 1}
    assert (await loaded(dsn, symbol, 3)).held == {"C-2": 1.0}


async def test_spilled_rows_keep_their_epoch_across_a_restart(postgres, tmp_path):
    """Shut down without a database, the old term's rows spill; replayed after a later term loaded: refused."""
    dsn, symbol = postgres.dsn, "SPILL"
    await loaded(dsn, symbol, 1)
    spill = tmp_path / "spill.jsonl"
    writer = WriteBehind("host=127.0.0.1 port=1 connect_timeout=1", spill, symbol=symbol, backoff_cap=0.1)
    writer.set_epoch(1)
    trade(writer, symbol, 1, "C-1", 1.0)
    await flush(writer)
    assert writer.spill_rows == 4
    await loaded(dsn, symbol, 2)
    again = WriteBehind(dsn, spill, symbol=symbol)
    await flush(again)
    assert again.stats.fenced == {"signals": 1, "orders": 1, "fills": 1, "positions": 1}
    assert not spill.exists()
    assert (await loaded(dsn, symbol, 2)).held == {}
