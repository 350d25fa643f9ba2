"""The engine's clock, injected so that the same engine runs live and on recorded data (one event model
for both, as NautilusTrader has it): live it reads the wall clock; in a replay or a backtest the driver
sets it to each event's exchange time before handing the event over, so nothing can act at a time the
data has not reached."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...


class WallClock:
    """Live trading: the machine's clock."""

    def now(self) -> float:
        return time.time()


class EventClock:
    """Replays and backtests: the time of the last event the driver delivered; it never runs backwards."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, ts: float) -> None:
        """Move to an event's time (an earlier time than the current one is ignored)."""
        if ts > self._now:
            self._now = ts
