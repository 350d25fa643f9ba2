"""Recent market-data history, pure: the feed's bounded ring of the events it sent, the wire format of its
history answer, and the reading of that answer by a runtime warming up (`trading_runtime/warmup.py`).

`GET /v1/history/{symbol}?seconds=S` (or `?since=TS`, market time) answers
`{"symbol": ..., "latestTs": ..., "events": [frame, ...]}`: the very quote and trade frames the feed sent on
its WebSocket (same fields, `seq` and `sent` included), oldest first, from the last S seconds of market time
that the ring still holds. Like a broker's REST history (quotes and trades since T), it holds no snapshots."""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from typing import Any

from trading_runtime.feeds.protocol import Quote, Trade, parse_message

HISTORY_PATH = "/v1/history/"


@dataclass
class HistoryRing:
    """The latest events of one symbol, bounded by market seconds (older than `max_seconds` before the newest
    is dropped) and by count (`max_events`, whichever bound bites first): (ts, frame) in the order sent."""

    max_seconds: float
    max_events: int
    events: collections.deque[tuple[float, str]] = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        if self.max_seconds < 0 or self.max_events < 0:
            raise ValueError("history bounds must not be negative")

    def append(self, ts: float, frame: str) -> None:
        if self.max_events == 0 or self.max_seconds == 0:
            return
        self.events.append((ts, frame))
        while len(self.events) > self.max_events or self.events[0][0] < ts - self.max_seconds:
            self.events.popleft()

    def since(self, ts: float) -> list[str]:
        """The frames at or after market time `ts`, oldest first."""
        return [frame for at, frame in self.events if at >= ts]

    @property
    def latest_ts(self) -> float | None:
        return self.events[-1][0] if self.events else None


def history_body(symbol: str, ring: HistoryRing, seconds: float | None, since: float | None) -> str:
    """The JSON answer for the last `seconds` of market time (or everything at or after `since`); the frames
    are JSON already and go out as they are."""
    latest = ring.latest_ts
    start = since if since is not None else (latest - seconds if latest is not None and seconds is not None
                                             else float("-inf"))
    frames = ring.since(start)
    return f'{{"symbol": {json.dumps(symbol)}, "latestTs": {json.dumps(latest)}, "events": [{",".join(frames)}]}}'


def history_query(query: dict[str, str]) -> tuple[float | None, float | None]:
    """`seconds` and `since` of a history request; ValueError when either is not a finite number ≥ 0."""
    values: dict[str, float | None] = {}
    for name in ("seconds", "since"):
        raw = query.get(name)
        value = float(raw) if raw is not None else None
        if value is not None and not (value >= 0 and value != float("inf")):
            raise ValueError(f"{name} must be a finite number >= 0, not {raw!r}")
        values[name] = value
    return values["seconds"], values["since"]


@dataclass(frozen=True)
class History:
    """A history answer read by a runtime: the symbol's quotes and trades in order, and the rows that were not
    such an event (counted, never replayed)."""

    events: list[Quote | Trade]
    malformed: int


def parse_history(body: Any, symbol: str) -> History:
    """A history answer, validated; ValueError when it is not one at all. Rows that are not a quote or trade of
    `symbol`, or that go back in time or in sequence, are malformed: counted and dropped."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValueError("not a history answer (an object with a list of events)")
    if body.get("symbol") != symbol:
        raise ValueError(f"a history of {body.get('symbol')!r}, not of {symbol!r}")
    events: list[Quote | Trade] = []
    malformed = 0
    for row in body["events"]:
        try:
            message = parse_message(json.dumps(row))
        except (ValueError, TypeError):
            malformed += 1
            continue
        if not isinstance(message, Quote | Trade) or message.symbol != symbol or (
                events and (message.ts < events[-1].ts or message.seq <= events[-1].seq)):
            malformed += 1
            continue
        events.append(message)
    return History(events, malformed)


def overlaps(seq: int, ts: float, last_seq: int, last_ts: float) -> bool:
    """Whether a live message is one the replayed history already held: at or before its last sequence number
    and its last exchange time. A feed that restarted numbers from 1 again, but later in market time: new."""
    return seq <= last_seq and ts <= last_ts
