"""Recorded files shaped like the real SPY minute, second and tick files that went wrong (the backtesting
issue): ISO or millisecond timestamps, a `timestamp` column, lower-case symbols, zero-volume bars, rows out
of order, overnight gaps and holidays. Shared by the loader, replay, engine and backtest tests."""

from __future__ import annotations

import csv
import datetime
import pathlib
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NEW_YORK = ZoneInfo("America/New_York")
MONDAY = datetime.date(2026, 3, 2)
"""A week with no holiday (2026-03-02 .. 03-06)."""


def open_at(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(9, 30), NEW_YORK)


def write_csv(path: pathlib.Path, rows: Iterable[dict[str, Any]]) -> pathlib.Path:
    rows = list(rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return path


def write_parquet(path: pathlib.Path, rows: Iterable[dict[str, Any]]) -> pathlib.Path:
    pq.write_table(pa.Table.from_pylist(list(rows)), path)
    return path


def minute_bars(days: list[datetime.date], seed: int = 0, symbol: str = "spy", start: float = 500.0,
                minutes: int = 390, volume: float = 50_000.0) -> list[dict[str, Any]]:
    """SPY-like one-minute bars as a data vendor writes them: ISO timestamps with an offset in a
    `timestamp` column, the bar's start time, a lower-case symbol; a random walk of ~1 bp a minute."""
    rng = np.random.default_rng(seed)
    price, rows = start, []
    for day in days:
        for minute in range(minutes):
            ts = open_at(day) + datetime.timedelta(minutes=minute)
            close = round(price * float(np.exp(rng.normal(0, 1e-4))), 2)
            high, low = max(price, close) + 0.02, min(price, close) - 0.02
            rows.append({"timestamp": ts.isoformat(), "symbol": symbol, "open": price, "high": round(high, 2),
                         "low": round(low, 2), "close": close, "volume": float(rng.integers(1, 20)) * volume / 10})
            price = close
    return rows


def ticks(day: datetime.date, seconds: int, seed: int = 0, symbol: str = "SPY") -> list[dict[str, Any]]:
    """Tick rows (quote every second, a trade every third) with millisecond epoch timestamps in `ts`."""
    rng = np.random.default_rng(seed)
    mid, rows = 500.0, []
    origin = open_at(day).timestamp()
    for second in range(seconds):
        mid = round(mid + float(rng.choice([-0.01, 0.0, 0.01])), 2)
        ts_ms = int((origin + second) * 1000)
        rows.append({"ts": ts_ms, "symbol": symbol, "type": "quote", "instrument": "", "bid": mid - 0.01,
                     "ask": mid + 0.01, "bid_size": float(rng.integers(1, 9) * 100),
                     "ask_size": float(rng.integers(1, 9) * 100), "price": None, "size": None, "aggressor": None})
        if second % 3 == 0:
            rows.append({"ts": ts_ms + 500, "symbol": symbol, "type": "trade", "instrument": "", "bid": None,
                         "ask": None, "bid_size": None, "ask_size": None, "price": mid + 0.01, "size": 100.0,
                         "aggressor": "buy"})
    return rows
