"""Replay of recorded market data from CSV or Parquet, at recorded or accelerated speed.

Tick files — one row per event, columns:
    ts          epoch seconds (float), non-decreasing
    symbol      underlying symbol, e.g. SPY
    type        `quote` or `trade`
    instrument  the underlying symbol or an option id (SPY-20261218-C-500); empty means the symbol
    bid, ask, bid_size, ask_size        quotes
    price, size, aggressor              trades (aggressor `buy`/`sell`, may be empty)
Bar files — one row per bar, columns `ts, symbol, open, high, low, close, volume`: each bar is replayed
as a quote at its close (bid = ask = close) followed by a trade of its volume at the close.

Rows that do not make a valid message are counted in `malformed` and skipped, as feed frames are.
"""

from __future__ import annotations

import asyncio
import csv
import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pyarrow.parquet as pq
from pydantic import ValidationError

from trading_runtime.feeds.protocol import Quote, Trade

BAR_COLUMNS = {"open", "high", "low", "close", "volume"}


def _rows(path: pathlib.Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() in (".parquet", ".pq"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    else:
        with path.open(newline="") as handle:
            yield from csv.DictReader(handle)


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _events(row: dict[str, Any]) -> list[dict[str, Any]]:
    symbol = row.get("symbol")
    base = {"symbol": symbol, "ts": float(row["ts"])}
    if row.keys() >= BAR_COLUMNS:
        close = float(row["close"])
        return [{**base, "type": "quote", "instrument": symbol, "bid": close, "ask": close,
                 "bidSize": 0.0, "askSize": 0.0},
                {**base, "type": "trade", "instrument": symbol, "price": close, "size": float(row["volume"])}]
    instrument = row.get("instrument") or symbol
    if row.get("type") == "quote":
        return [{**base, "type": "quote", "instrument": instrument, "bid": row["bid"], "ask": row["ask"],
                 "bidSize": row["bid_size"], "askSize": row["ask_size"]}]
    if row.get("type") == "trade":
        aggressor = None if _blank(row.get("aggressor")) else row["aggressor"]
        return [{**base, "type": "trade", "instrument": instrument, "price": row["price"], "size": row["size"],
                 "aggressor": aggressor}]
    raise ValueError(f"unknown row type {row.get('type')!r}")


class Replay:
    """Iterates a file's messages, numbered per symbol like a live feed."""

    def __init__(self, path: pathlib.Path, speed: float = 0.0) -> None:
        """`speed` 1.0 replays at recorded pace, 10.0 ten times faster, 0 as fast as possible."""
        self.path = path
        self.speed = speed
        self.malformed = 0
        self.seq: dict[str, int] = {}

    def messages(self) -> Iterator[Quote | Trade]:
        for row in _rows(self.path):
            try:
                events = _events(row)
                parsed = [Quote.model_validate({**e, "seq": 0}) if e["type"] == "quote"
                          else Trade.model_validate({**e, "seq": 0}) for e in events]
            except (ValueError, KeyError, TypeError, ValidationError):
                self.malformed += 1
                continue
            for message in parsed:
                self.seq[message.symbol] = self.seq.get(message.symbol, 0) + 1
                yield message.model_copy(update={"seq": self.seq[message.symbol]})

    async def stream(self) -> AsyncIterator[Quote | Trade]:
        """The messages, paced by their timestamps (divided by `speed`)."""
        loop = asyncio.get_running_loop()
        origin: tuple[float, float] | None = None
        for message in self.messages():
            if self.speed > 0:
                if origin is None:
                    origin = (message.ts, loop.time())
                due = origin[1] + (message.ts - origin[0]) / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            yield message
