"""Market regime changes from per-minute features: ADWIN (river) on the log realised volatility, the log
mean spread and the log volume of each minute.

A detector fires when any feature's ADWIN window finds a change in its mean (delta small enough that calm
data raises few false alarms: measured in benchmarks/ml_signal.py); the first minutes of a detector are its
warm-up. A change is counted in `tradeops_regime_changes_total`, written as a risk event, and tightens
sizing by `regimeSizeMultiplier` for `regimeCooldownSeconds` (trading_runtime/ml/loop.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MINUTE = 60.0
DELTA = 1e-5
WARMUP_MINUTES = 30


@dataclass(frozen=True)
class RegimeChange:
    ts: float
    features: tuple[str, ...]
    """The features whose mean changed."""


@dataclass
class _Minute:
    start: float
    first_mid: float
    last_mid: float
    squared: float = 0.0
    spread_sum: float = 0.0
    quotes: int = 0
    volume: float = 0.0


@dataclass
class RegimeDetector:
    delta: float = DELTA
    minutes: int = 0
    detectors: dict[str, Any] = field(default_factory=dict)
    """river's ADWIN per feature."""
    _minute: _Minute | None = None
    _last_mid: float = math.nan

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        from river import drift  # the `ml` extra: imported only when regime detection is switched on

        # clock=1: test for a change at every minute (river's default, 32, would look every 32 minutes).
        self.detectors = {name: drift.ADWIN(delta=self.delta, clock=1) for name in ("volatility", "spread", "volume")}
        self.minutes = 0

    def new_period(self) -> None:
        """A session break: the overnight move is not a minute's return."""
        self._minute = None
        self._last_mid = math.nan

    def update(self, ts: float, mid: float, spread: float, size: float) -> RegimeChange | None:
        """Feed every underlying quote; returns a change when a minute closes with one."""
        start = ts - ts % MINUTE
        change = None
        minute = self._minute
        if minute is not None and start > minute.start:
            change = self._close(minute)
            minute = None
        if minute is None:
            minute = self._minute = _Minute(start, mid, mid)
        if mid > 0 and self._last_mid > 0:
            minute.squared += math.log(mid / self._last_mid) ** 2
        self._last_mid = mid
        minute.last_mid = mid
        minute.spread_sum += spread / mid if mid > 0 else 0.0
        minute.quotes += 1
        minute.volume += size
        return change

    def _close(self, minute: _Minute) -> RegimeChange | None:
        values = {"volatility": math.log(math.sqrt(minute.squared) + 1e-9),
                  "spread": math.log(minute.spread_sum / minute.quotes + 1e-12),
                  "volume": math.log(minute.volume / minute.quotes + 1.0)}
        self.minutes += 1
        fired = []
        for name, value in values.items():
            detector = self.detectors[name]
            detector.update(value)
            if detector.drift_detected and self.minutes > WARMUP_MINUTES:
                fired.append(name)
        return RegimeChange(minute.start + MINUTE, tuple(fired)) if fired else None
