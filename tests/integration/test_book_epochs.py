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


async def loaded(dsn: str, symbol: str, fenced: bool = True) -> Book:
    """The book as a leader elected on a Lease loads it (the next epoch), or as a runtime alone (none)."""
    book = await load_book(dsn, symbol, fenced)
    assert (book.epoch is not None) is fenced
    return book


def stored_epoch(dsn: str, symbol: str) -> int | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT epoch FROM book_epochs WHERE symbol = %s", (symbol,)).fetchone()
    return None if row is None else int(row[0])


async def test_a_deposed_leaders_queued_rows_are_refused_after_the_new_leader_loaded(postgres, tmp_path):
    """Leader of epoch 1 flushes C-500 and queues P-500; the leader of epoch 2 loads; the queued flush is then
    refused, counted per table, and the book the new leader took over is the final book."""
    dsn, symbol = postgres.dsn, "RACE"
    first = await loaded(dsn, symbol)
    assert (first.held, first.epoch) == ({}, 1)
    fenced: list[tuple[str, int]] = []
    old = WriteBehind(dsn, tmp_path / "old.jsonl", symbol=symbol, on_fenced=lambda t, n: fenced.append((t, n)))
    old.set_epoch(first.epoch)
    trade(old, symbol, 1, "C-500", 1.0)
    await flush(old)  # before its deadline: lands
    trade(old, symbol, 2, "P-500", 1.0)  # queued when the Lease is lost; the flush comes late

    taken_over = await loaded(dsn, symbol)
    assert (taken_over.held, taken_over.epoch) == ({"C-500": 1.0}, 2)
    await flush(old)

    assert old.stats.fenced == {"signals": 1, "orders": 1, "fills": 1, "positions": 1}
    assert sorted(fenced) == [("fills", 1), ("orders", 1), ("positions", 1), ("signals", 1)]
    assert old.depth == 0  # dropped, not retried
    final = await loaded(dsn, symbol, fenced=False)
    assert final.positions == taken_over.positions
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE instrument = 'P-500'").fetchone()[0] == 0
    assert stored_epoch(dsn, symbol) == 2


async def test_a_flush_that_holds_the_epoch_first_commits_before_the_load_reads(postgres):
    """The other order of the race: a flush that has read the epoch (FOR SHARE) holds the load back until it
    commits, so its rows are in the book the new leader loads."""
    dsn, symbol = postgres.dsn, "FIRST"
    await loaded(dsn, symbol)
    async with await psycopg.AsyncConnection.connect(dsn) as flushing:
        async with flushing.transaction():
            await flushing.execute("SELECT epoch FROM book_epochs WHERE symbol = %s FOR SHARE", (symbol,))
            await flushing.execute("INSERT INTO positions (ts, symbol, instrument, quantity, average_price, "
                                   "realized_pnl) VALUES (%s, %s, 'C-500', 2, 5, 0)", (NOW, symbol))
            load = asyncio.ensure_future(load_book(dsn, symbol, fenced=True))
            await asyncio.sleep(0.5)
            assert not load.done()  # waits on the row lock
        book = await asyncio.wait_for(load, 10)
    assert (book.held, book.epoch) == ({"C-500": 2.0}, 2)


async def test_a_leaders_own_flushes_and_a_runtime_without_a_lease_are_unaffected(postgres, tmp_path):
    dsn, symbol = postgres.dsn, "STEADY"
    book = await loaded(dsn, symbol)
    assert book.held == {}
    leader = WriteBehind(dsn, tmp_path / "leader.jsonl", symbol=symbol, batch_size=2)
    leader.set_epoch(book.epoch)
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
    assert set((await loaded(dsn, symbol, fenced=False)).held) == {f"C-{n}" for n in (0, 1, 2, 3, 4, 9)}


async def test_every_load_takes_a_higher_epoch_whatever_the_lease_says(postgres):
    """The database hands out the epochs: a Lease deleted and recreated (its leaseTransitions back to 0) or a
    database restored into another cluster cannot hand a new leader an epoch its predecessors already used."""
    dsn, symbol = postgres.dsn, "LATE"
    with psycopg.connect(dsn) as conn:  # a book whose earlier leaders took many terms
        conn.execute("INSERT INTO book_epochs (symbol, epoch) VALUES (%s, 1000)", (symbol,))
    assert [(await loaded(dsn, symbol)).epoch for _ in range(3)] == [1001, 1002, 1003]
    assert (await loaded(dsn, symbol, fenced=False)).epoch is None  # alone: nothing taken
    assert stored_epoch(dsn, symbol) == 1003


async def test_rows_keep_the_epoch_they_were_put_under(postgres, tmp_path):
    """A process deposed and then leading again: its rows of the old term are refused, the new term's land."""
    dsn, symbol = postgres.dsn, "AGAIN"
    writer = WriteBehind(dsn, tmp_path / "w.jsonl", symbol=symbol)
    writer.set_epoch((await loaded(dsn, symbol)).epoch)
    trade(writer, symbol, 1, "C-1", 1.0)
    await loaded(dsn, symbol)  # another leader's term
    writer.set_epoch((await loaded(dsn, symbol)).epoch)  # this process's next term
    trade(writer, symbol, 2, "C-2", 1.0)
    await flush(writer)
    assert writer.stats.fenced == {"signals": 1, "orders": 1, "fills": 1, "positions": 1}
    assert (await loaded(dsn, symbol, fenced=False)).held == {"C-2": 1.0}


async def test_spilled_rows_keep_their_epoch_across_a_restart(postgres, tmp_path):
    """Shut down without a database, the old term's rows spill; replayed after a later term loaded: refused."""
    dsn, symbol = postgres.dsn, "SPILL"
    first = await loaded(dsn, symbol)
    spill = tmp_path / "spill.jsonl"
    writer = WriteBehind("host=127.0.0.1 port=1 connect_timeout=1", spill, symbol=symbol, backoff_cap=0.1)
    writer.set_epoch(first.epoch)
    trade(writer, symbol, 1, "C-1", 1.0)
    await flush(writer)
    assert writer.spill_rows == 4
    await loaded(dsn, symbol)
    again = WriteBehind(dsn, spill, symbol=symbol)
    await flush(again)
    assert again.stats.fenced == {"signals": 1, "orders": 1, "fills": 1, "positions": 1}
    assert not spill.exists()
    assert (await loaded(dsn, symbol, fenced=False)).held == {}
