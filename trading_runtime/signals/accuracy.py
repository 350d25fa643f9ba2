"""Honest signal accuracy: directional hit rate over a horizon, on moves larger than the spread, with
coverage, next to baselines scored on exactly the same points.

Every `horizon` seconds an evaluation point is taken: the mid, the spread, the strategy's direction (flat
allowed), the persistence baseline's direction (the sign of the move over the previous horizon) and the
majority baseline's (the sign that won most often among the moves scored so far). After `horizon` the
move is known; points whose |move| does not exceed the spread they started with are not scored (no
tradable information either way). Over scored points:
- hit rate: share of the strategy's non-flat calls that got the sign right;
- coverage: share of scored points where the strategy was not flat;
- baselines: their hit rates over the same scored points (they always call a direction)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class _Point:
    due: float
    mid: float
    spread: float
    strategy: int
    persistence: int
    majority: int


@dataclass
class AccuracyReport:
    scored: int
    calls: int
    hits: int
    persistence_hits: int
    majority_hits: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.calls if self.calls else float("nan")

    @property
    def coverage(self) -> float:
        return self.calls / self.scored if self.scored else float("nan")

    @property
    def persistence_hit_rate(self) -> float:
        return self.persistence_hits / self.scored if self.scored else float("nan")

    @property
    def majority_hit_rate(self) -> float:
        return self.majority_hits / self.scored if self.scored else float("nan")


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


@dataclass
class AccuracyTracker:
    horizon: float
    pending: collections.deque[_Point] = field(default_factory=collections.deque)
    report: AccuracyReport = field(default_factory=lambda: AccuracyReport(0, 0, 0, 0, 0))
    _next_point: float | None = None
    _previous_mid: float | None = None
    _up: int = 0
    _down: int = 0

    def update(self, ts: float, mid: float, spread: float, direction: int) -> None:
        """Feed every tick (ts, mid, spread) with the strategy's current direction."""
        while self.pending and self.pending[0].due <= ts:
            self._score(self.pending.popleft(), mid)
        if self._next_point is None or ts >= self._next_point:
            previous = self._previous_mid
            persistence = _sign(mid - previous) if previous is not None else 0
            majority = 1 if self._up >= self._down else -1
            self.pending.append(_Point(ts + self.horizon, mid, spread, direction, persistence or majority, majority))
            self._previous_mid = mid
            self._next_point = ts + self.horizon

    def _score(self, point: _Point, mid: float) -> None:
        move = mid - point.mid
        if abs(move) <= point.spread:
            return
        actual = _sign(move)
        r = self.report
        r.scored += 1
        if point.strategy:
            r.calls += 1
            r.hits += point.strategy == actual
        r.persistence_hits += point.persistence == actual
        r.majority_hits += point.majority == actual
        if actual > 0:
            self._up += 1
        else:
            self._down += 1
