"""OHLCV bars built incrementally at several timeframes, and the agreement of trend, momentum and breakout
across them.

Definitions used:

- A bar of timeframe T seconds covers the window [k·T, (k+1)·T) of exchange time, k = floor(ts/T). It closes
  when a trade arrives in a later window; windows without trades make no bar. A trade stamped earlier than
  the open bar's window (out of order) is folded into the open bar.
- Per timeframe, on each closed bar:
  trend    = sign(EMA_fast − EMA_slow) of closes (EMA seeded with the first close, α = 2/(span + 1));
  momentum = sign of the return close_t/close_{t−k} − 1 over the last k = `momentum_bars` bars (0 until
             k + 1 bars have closed);
  breakout = +1 when the close is above the highest high of the previous `breakout_bars` bars, −1 when below
             their lowest low, else 0 (0 until that many previous bars exist).
  The timeframe's vote is sign(trend + momentum + breakout) ∈ {−1, 0, +1}.
- `MultiTimeframe.agreement()` is the mean of the votes of all configured timeframes, in [−1, 1]; a timeframe
  that has not closed a bar yet votes 0.

Each update is O(1) except the breakout range, O(`breakout_bars`) per closed bar.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

__all__ = ["Bar", "BarBuilder", "MultiTimeframe", "TimeframeFeatures"]


@dataclass(frozen=True)
class Bar:
    start: float
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarBuilder:
    """OHLCV bars of `seconds` from (timestamp, price, size) trades."""

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError("seconds must be positive")
        self.seconds = seconds
        self._window: int | None = None
        self._open = self._high = self._low = self._close = self._volume = 0.0

    def update(self, ts: float, price: float, size: float) -> Bar | None:
        """Add a trade; returns the bar it closed, if any."""
        window = math.floor(ts / self.seconds)
        closed = None
        if self._window is not None and window > self._window:
            closed = self.current
            self._window = None
        if self._window is None:
            self._window = window
            self._open = self._high = self._low = self._close = price
            self._volume = size
        else:
            if price > self._high:
                self._high = price
            if price < self._low:
                self._low = price
            self._close = price
            self._volume += size
        return closed

    @property
    def current(self) -> Bar | None:
        """The open (not yet closed) bar, if any."""
        if self._window is None:
            return None
        return Bar(self._window * self.seconds, self._open, self._high, self._low, self._close, self._volume)


class _Ema:
    def __init__(self, span: int) -> None:
        self.alpha = 2 / (span + 1)
        self.value: float | None = None

    def update(self, x: float) -> float:
        self.value = x if self.value is None else self.value + self.alpha * (x - self.value)
        return self.value


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


class TimeframeFeatures:
    """A `BarBuilder` plus trend, momentum and breakout on its closed bars (module doc)."""

    def __init__(self, seconds: float, fast: int = 5, slow: int = 20, momentum_bars: int = 5,
                 breakout_bars: int = 20) -> None:
        if not 1 <= fast < slow:
            raise ValueError("need 1 <= fast < slow")
        if momentum_bars < 1 or breakout_bars < 1:
            raise ValueError("momentum_bars and breakout_bars must be at least 1")
        self.seconds = seconds
        self.builder = BarBuilder(seconds)
        self.fast, self.slow = _Ema(fast), _Ema(slow)
        self.closes: collections.deque[float] = collections.deque(maxlen=momentum_bars + 1)
        self.highs: collections.deque[float] = collections.deque(maxlen=breakout_bars)
        self.lows: collections.deque[float] = collections.deque(maxlen=breakout_bars)
        self.trend = self.momentum = self.breakout = 0
        self.momentum_return = math.nan
        self.bars = 0

    def update(self, ts: float, price: float, size: float) -> Bar | None:
        """Add a trade; returns the bar it closed, if any (features change only when a bar closes)."""
        bar = self.builder.update(ts, price, size)
        if bar is None:
            return None
        self.bars += 1
        self.trend = _sign(self.fast.update(bar.close) - self.slow.update(bar.close))
        self.closes.append(bar.close)
        if len(self.closes) == self.closes.maxlen and self.closes[0] != 0:
            self.momentum_return = self.closes[-1] / self.closes[0] - 1
            self.momentum = _sign(self.momentum_return)
        if len(self.highs) == self.highs.maxlen:
            self.breakout = 1 if bar.close > max(self.highs) else -1 if bar.close < min(self.lows) else 0
        self.highs.append(bar.high)
        self.lows.append(bar.low)
        return bar

    @property
    def vote(self) -> int:
        """sign(trend + momentum + breakout)."""
        return _sign(self.trend + self.momentum + self.breakout)


class MultiTimeframe:
    """Several `TimeframeFeatures` fed the same trades; `features` go to each (fast, slow, momentum_bars,
    breakout_bars)."""

    def __init__(self, timeframes: tuple[float, ...] = (1, 5, 30, 60), **features: int) -> None:
        if not timeframes:
            raise ValueError("need at least one timeframe")
        self.frames = {seconds: TimeframeFeatures(seconds, **features) for seconds in timeframes}

    def update(self, ts: float, price: float, size: float) -> list[tuple[float, Bar]]:
        """Add a trade; returns the (timeframe, bar) pairs it closed."""
        closed = []
        for seconds, frame in self.frames.items():
            bar = frame.update(ts, price, size)
            if bar is not None:
                closed.append((seconds, bar))
        return closed

    def votes(self) -> dict[float, int]:
        """Each timeframe's vote (0 before its first closed bar)."""
        return {seconds: frame.vote for seconds, frame in self.frames.items()}

    def agreement(self) -> float:
        """Mean of all timeframes' votes, in [−1, 1]."""
        votes = self.votes()
        return sum(votes.values()) / len(votes)

    def agreeing(self, direction: int | None = None) -> list[float]:
        """Timeframes voting `direction` (+1/−1); by default the sign of `agreement()` (none when it is 0)."""
        if direction is None:
            direction = _sign(self.agreement())
        if direction == 0:
            return []
        return [seconds for seconds, vote in self.votes().items() if vote == direction]
