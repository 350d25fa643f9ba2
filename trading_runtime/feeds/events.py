"""Market events of one symbol in columns: what a recorded file or the synthetic market becomes once
validated, and what replays and backtests feed the engine (as protocol messages, in time order).

Columns (numpy, one entry per event): `ts` (epoch seconds, non-decreasing), `kind` (QUOTE or TRADE),
`instrument` (index into `instruments`: the underlying or an option id), `bid`, `ask`, `bid_size`,
`ask_size` (quotes; NaN for trades), `price`, `size` (trades; NaN for quotes), `aggressor` (+1 buy,
−1 sell, 0 unknown). Columns pickle compactly, so Dask ships them to workers cheaply, and slice by time
with a binary search."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from trading_runtime.feeds.protocol import Quote, Trade

QUOTE, TRADE = 0, 1
_AGGRESSOR: dict[int, Literal["buy", "sell"] | None] = {1: "buy", -1: "sell", 0: None}
COLUMNS = ("ts", "kind", "instrument", "bid", "ask", "bid_size", "ask_size", "price", "size", "aggressor")
_FLOATS = frozenset({"ts", "bid", "ask", "bid_size", "ask_size", "price", "size"})
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MarketEvents:
    symbol: str
    ts: FloatArray
    kind: IntArray
    instrument: IntArray
    bid: FloatArray
    ask: FloatArray
    bid_size: FloatArray
    ask_size: FloatArray
    price: FloatArray
    size: FloatArray
    aggressor: IntArray
    instruments: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def start(self) -> float:
        return float(self.ts[0]) if len(self.ts) else math.nan

    @property
    def end(self) -> float:
        return float(self.ts[-1]) if len(self.ts) else math.nan

    def between(self, start: float, end: float) -> MarketEvents:
        """The events with start ≤ ts < end (views, no copy)."""
        lo, hi = (int(i) for i in np.searchsorted(self.ts, [start, end], side="left"))
        return dataclasses.replace(self, **{name: column[lo:hi] for name, column in self._columns().items()})

    def _columns(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}

    def messages(self) -> Iterator[Quote | Trade]:
        """The events as protocol messages, numbered from 1 like a live feed's. They were validated when
        the events were built, so they are constructed without validating again."""
        symbol, names = self.symbol, self.instruments
        columns = (self.ts.tolist(), self.kind.tolist(), self.instrument.tolist(), self.bid.tolist(),
                   self.ask.tolist(), self.bid_size.tolist(), self.ask_size.tolist(), self.price.tolist(),
                   self.size.tolist(), self.aggressor.tolist())
        for seq, (ts, kind, instrument, bid, ask, bid_size, ask_size, price, size, aggressor) in enumerate(
                zip(*columns, strict=True), start=1):
            if kind == QUOTE:
                yield Quote.model_construct(type="quote", symbol=symbol, seq=seq, ts=ts, instrument=names[instrument],
                                            bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size)
            else:
                yield Trade.model_construct(type="trade", symbol=symbol, seq=seq, ts=ts,
                                            instrument=names[instrument], price=price, size=size,
                                            aggressor=_AGGRESSOR[aggressor])

    def fingerprint(self) -> str:
        """SHA-256 of the symbol, the instruments and every column: what a result cites as its data."""
        digest = hashlib.sha256(self.symbol.encode())
        digest.update("\n".join(self.instruments).encode())
        for column in self._columns().values():
            digest.update(np.ascontiguousarray(column).tobytes())
        return digest.hexdigest()


def merge(parts: list[MarketEvents]) -> MarketEvents:
    """Events of one symbol from several files (quotes, trades, an option chain) as one stream in time
    order; events with the same timestamp keep the order of `parts`, then of their file."""
    if not parts:
        raise ValueError("nothing to merge")
    if len({p.symbol for p in parts}) != 1:
        raise ValueError(f"cannot merge the events of several symbols: {sorted({p.symbol for p in parts})}")
    names = list(dict.fromkeys(name for p in parts for name in p.instruments))
    index = {name: i for i, name in enumerate(names)}
    columns: dict[str, Any] = {name: np.concatenate([getattr(p, name) for p in parts]) for name in COLUMNS}
    columns["instrument"] = np.concatenate([np.array([index[p.instruments[i]] for i in p.instrument.tolist()],
                                                     dtype=np.int64) for p in parts])
    order = np.argsort(columns["ts"], kind="stable")
    return MarketEvents(symbol=parts[0].symbol, instruments=tuple(names),
                        **{name: column[order] for name, column in columns.items()})


@dataclass
class EventsBuilder:
    """Appends validated messages and builds the columns."""

    symbol: str
    _rows: list[tuple[float, int, int, float, float, float, float, float, float, int]] = field(default_factory=list)
    _instruments: dict[str, int] = field(default_factory=dict)

    def add(self, message: Quote | Trade) -> None:
        index = self._instruments.setdefault(message.instrument, len(self._instruments))
        if isinstance(message, Quote):
            self._rows.append((message.ts, QUOTE, index, message.bid, message.ask, message.bid_size,
                               message.ask_size, math.nan, math.nan, 0))
        else:
            side = {"buy": 1, "sell": -1, None: 0}[message.aggressor]
            self._rows.append((message.ts, TRADE, index, math.nan, math.nan, math.nan, math.nan, message.price,
                               message.size, side))

    def extend(self, messages: Iterable[Quote | Trade]) -> EventsBuilder:
        for message in messages:
            self.add(message)
        return self

    def __len__(self) -> int:
        return len(self._rows)

    def build(self) -> MarketEvents:
        values = list(zip(*self._rows, strict=True)) if self._rows else [()] * len(COLUMNS)
        arrays: dict[str, Any] = {name: np.array(column, dtype=np.float64 if name in _FLOATS else np.int64)
                  for name, column in zip(COLUMNS, values, strict=True)}
        return MarketEvents(symbol=self.symbol, instruments=tuple(self._instruments), **arrays)
