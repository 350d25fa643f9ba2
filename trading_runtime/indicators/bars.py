"""Bars built incrementally at several timeframes, and the agreement of trend, momentum and breakout
across them.

A bar covers [k·T, (k+1)·T) of exchange time; it closes when a trade arrives in a later window (empty
windows make no bar). Per timeframe, on each closed bar: trend = sign(EMA_fast − EMA_slow) of closes,
momentum = sign of the return over the last `momentum_bars` bars, breakout = +1 when the close is above
the highest high of the previous `breakout_bars` bars, −1 below the lowest low, else 0. A timeframe votes
the sign of (trend + momentum + breakout); `agreement()` is the mean vote in [−1, 1]."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    start: float
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarBuilder:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._window: int | None = None
        self._bar: list[float] = []

    def update(self, ts: float, price: float, size: float) -> Bar | None:
        """Add a trade; returns the bar it closed, if any."""
        window = math.floor(ts / self.seconds)
        closed = None
        if self._window is not None and window > self._window:
            closed = self.current
            self._window = None
        if self._window is None:
            self._window = window
            self._bar = [price, price, price, price, size]
        else:
            o, h, lo, _, v = self._bar
            self._bar = [o, max(h, price), min(lo, price), price, v + size]
        return closed

    @property
    def current(self) -> Bar | None:
        if self._window is None:
            return None
        o, h, lo, c, v = self._bar
        return Bar(self._window * self.seconds, o, h, lo, c, v)


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
    def __init__(self, seconds: float, fast: int = 5, slow: int = 20, momentum_bars: int = 5,
                 breakout_bars: int = 20) -> None:
        self.builder = BarBuilder(seconds)
        self.fast, self.slow = _Ema(fast), _Ema(slow)
        self.closes: collections.deque[float] = collections.deque(maxlen=momentum_bars + 1)
        self.highs: collections.deque[float] = collections.deque(maxlen=breakout_bars)
        self.lows: collections.deque[float] = collections.deque(maxlen=breakout_bars)
        self.trend = self.momentum = self.breakout = 0
        self.bars = 0

    def update(self, ts: float, price: float, size: float) -> Bar | None:
        """Add a trade; returns the bar it closed, if any."""
        bar = self.builder.update(ts, price, size)
        if bar is None:
            return None
        self.bars += 1
        self.trend = _sign(self.fast.update(bar.close) - self.slow.update(bar.close))
        self.closes.append(bar.close)
        self.momentum = _sign(self.closes[-1] - self.closes[0]) if len(self.closes) == self.closes.maxlen else 0
        if len(self.highs) == self.highs.maxlen:
            self.breakout = 1 if bar.close > max(self.highs) else -1 if bar.close < min(self.lows) else 0
        self.highs.append(bar.high)
        self.lows.append(bar.low)
        return bar

    @property
    def vote(self) -> int:
        return _sign(self.trend + self.momentum + self.breakout)


class MultiTimeframe:
    def __init__(self, timeframes: tuple[float, ...] = (1, 5, 30, 60), **features: int) -> None:
        self.frames = {seconds: TimeframeFeatures(seconds, **features) for seconds in timeframes}

    def update(self, ts: float, price: float, size: float) -> list[tuple[float, Bar]]:
        """Add a trade; returns the (timeframe, bar) pairs it closed."""
        closed = []
        for seconds, frame in self.frames.items():
            bar = frame.update(ts, price, size)
            if bar is not None:
                closed.append((seconds, bar))
        return closed

    def agreement(self) -> float:
        """Mean of the per-timeframe votes, over the timeframes that have closed a bar."""
        votes = [f.vote for f in self.frames.values() if f.bars]
        return sum(votes) / len(votes) if votes else 0.0

    def agreeing(self, direction: int) -> list[float]:
        return [seconds for seconds, f in self.frames.items() if f.bars and f.vote == direction]
