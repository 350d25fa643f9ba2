"""Replay of recorded ticks and bars from CSV and Parquet."""

from __future__ import annotations

import asyncio
import csv
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trading_runtime.feeds.protocol import Quote, Trade
from trading_runtime.feeds.replay import Replay

TICKS = [
    {"ts": 100.0, "symbol": "SPY", "type": "quote", "instrument": "", "bid": 500.0, "ask": 500.02, "bid_size": 100,
     "ask_size": 200, "price": None, "size": None, "aggressor": None},
    {"ts": 100.5, "symbol": "SPY", "type": "trade", "instrument": "SPY", "bid": None, "ask": None, "bid_size": None,
     "ask_size": None, "price": 500.02, "size": 300, "aggressor": "buy"},
    {"ts": 100.7, "symbol": "SPY", "type": "quote", "instrument": "SPY-20261218-C-500", "bid": 12.1, "ask": 12.3,
     "bid_size": 5, "ask_size": 7, "price": None, "size": None, "aggressor": None},
    {"ts": 101.0, "symbol": "SPY", "type": "quote", "instrument": "", "bid": 501.0, "ask": 500.0, "bid_size": 1,
     "ask_size": 1, "price": None, "size": None, "aggressor": None},  # crossed: malformed
    {"ts": 101.0, "symbol": "QQQ", "type": "trade", "instrument": "", "bid": None, "ask": None, "bid_size": None,
     "ask_size": None, "price": 430.0, "size": 10, "aggressor": None},
]


def write_csv(path, rows) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)


def write_parquet(path, rows) -> None:
    pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.mark.parametrize("writer", [write_csv, write_parquet], ids=["csv", "parquet"])
def test_tick_files_replay_as_numbered_messages(tmp_path, writer):
    path = tmp_path / ("ticks.csv" if writer is write_csv else "ticks.parquet")
    writer(path, TICKS)
    replay = Replay(path)
    messages = list(replay.messages())
    assert [type(m) for m in messages] == [Quote, Trade, Quote, Trade]
    assert [(m.symbol, m.seq) for m in messages] == [("SPY", 1), ("SPY", 2), ("SPY", 3), ("QQQ", 1)]
    assert messages[0].instrument == "SPY"
    assert messages[2].instrument == "SPY-20261218-C-500"
    assert messages[1].aggressor == "buy"
    assert replay.malformed == 1


def test_bar_files_replay_as_close_quote_and_volume_trade(tmp_path):
    path = tmp_path / "bars.csv"
    write_csv(path, [{"ts": 60, "symbol": "ES", "open": 5000, "high": 5003, "low": 4999, "close": 5002.25,
                      "volume": 1200}])
    messages = list(Replay(path).messages())
    assert isinstance(messages[0], Quote)
    assert messages[0].mid == 5002.25
    assert isinstance(messages[1], Trade)
    assert messages[1].size == 1200


async def test_paced_replay_follows_timestamps(tmp_path):
    path = tmp_path / "ticks.csv"
    write_csv(path, TICKS[:3])  # spans 0.7 s of market time
    started = time.monotonic()
    received = [m async for m in Replay(path, speed=7.0).stream()]
    elapsed = time.monotonic() - started
    assert len(received) == 3
    assert 0.08 <= elapsed < 0.5
    fast = time.monotonic()
    assert len([m async for m in Replay(path, speed=0).stream()]) == 3
    assert time.monotonic() - fast < 0.05
    await asyncio.sleep(0)
