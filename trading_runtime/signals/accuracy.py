"""Honest signal accuracy: directional hit rate over a horizon, on moves larger than the spread, with
coverage, next to baselines scored on exactly the same points.

Every `horizon` seconds an evaluation point is taken, at the first tick at or after each multiple of the
horizon in market time (so two processes on the same feed take the same points): the mid, the spread, the
strategy's direction (flat allowed), the persistence baseline's direction (the sign of the move over the
previous horizon) and the majority baseline's (the sign that won most often among the moves scored so far).
The point is due at the next multiple of the horizon and scored with the first tick at or after it, which is
the tick that takes the next point: the horizons tile market time, so no two points share any part of a price
move, and each call is settled before the next one is made (what a paired comparison judged call by call, as
the operator does, needs: `trading_operator/confidence_sequence.py`). It is scored if that tick comes within
one more horizon and in the same session (a horizon that spans an overnight gap, a halt in the data or a
session close measures something else: such points are dropped and counted in `unscored_breaks`). Points
whose |move| does not exceed the spread they started with are not scored (no tradable information either
way). Over scored points:
- coverage: share of scored points where the strategy was not flat;
- hit rate: share of the strategy's non-flat calls that got the sign right, with a Wilson interval;
- baselines: their hit rates over the very same called points (they always call a direction).

The latest scored points are kept (`decisions`: the grid slot, the direction called, the realised sign) so a
revision's calls can be paired with another revision's on the same points (a shadow run's paired comparison).
After a warm-up from history (`trading_runtime/warmup.py`), `retrospective_before` is the first slot taken on
the live feed: the points before it were called on replayed history (real calls on real data, never traded)."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default); (nan, nan) with no trials."""
    if trials <= 0:
        return (math.nan, math.nan)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


DECISIONS_KEPT = 4096
"""Scored points kept for pairing: over an hour at a 1 s horizon, so a candidate's replayed hour of history
(`warmup.historySeconds` ≤ 3600) still finds the stable revision's live calls on the same slots."""


@dataclass(frozen=True)
class ScoredPoint:
    """One scored evaluation point: its slot on the horizon grid (market time / horizon), the strategy's
    direction there (0: flat) and the realised move's sign."""

    slot: int
    direction: int
    actual: int


@dataclass
class _Point:
    slot: int
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
    unscored_breaks: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.calls if self.calls else math.nan

    @property
    def hit_rate_ci(self) -> tuple[float, float]:
        """95 % Wilson interval of the hit rate."""
        return wilson_interval(self.hits, self.calls)

    @property
    def coverage(self) -> float:
        return self.calls / self.scored if self.scored else math.nan

    @property
    def persistence_hit_rate(self) -> float:
        """The persistence baseline on the strategy's called points."""
        return self.persistence_hits / self.calls if self.calls else math.nan

    @property
    def majority_hit_rate(self) -> float:
        """The majority baseline on the strategy's called points."""
        return self.majority_hits / self.calls if self.calls else math.nan


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


@dataclass
class AccuracyTracker:
    horizon: float
    pending: collections.deque[_Point] = field(default_factory=collections.deque)
    report: AccuracyReport = field(default_factory=lambda: AccuracyReport(0, 0, 0, 0, 0))
    decisions: collections.deque[ScoredPoint] = field(
        default_factory=lambda: collections.deque(maxlen=DECISIONS_KEPT))
    retrospective_before: int | None = None
    """The first slot taken live after a warm-up from history (None: no warm-up, every point is live)."""
    _next_point: float | None = None
    _last_slot: int | None = None
    _previous_mid: float | None = None
    _up: int = 0
    _down: int = 0

    def new_period(self) -> None:
        """A session opened or closed: points still waiting cannot be scored, and the persistence baseline
        restarts (the previous horizon's move is on the other side of the break)."""
        self.report.unscored_breaks += len(self.pending)
        self.pending.clear()
        self._next_point = None
        self._previous_mid = None

    @property
    def next_slot(self) -> int | None:
        """The slot after the latest point taken (None before any)."""
        return self._last_slot + 1 if self._last_slot is not None else None

    def go_live(self) -> None:
        """The warm-up's history is over: points taken from now on are live, those before retrospective."""
        self.retrospective_before = self.next_slot

    def update(self, ts: float, mid: float, spread: float, direction: int) -> None:
        """Feed every tick (ts, mid, spread) with the strategy's current direction."""
        while self.pending and self.pending[0].due <= ts:
            point = self.pending.popleft()
            if ts - point.due > self.horizon:
                self.report.unscored_breaks += 1  # no data for a whole horizon after it was due
            else:
                self._score(point, mid)
        if self._next_point is None:
            self._next_point = math.ceil(ts / self.horizon) * self.horizon
        if ts >= self._next_point:
            slot = math.floor(ts / self.horizon)
            previous = self._previous_mid
            persistence = _sign(mid - previous) if previous is not None else 0
            majority = 1 if self._up >= self._down else -1
            self.pending.append(_Point(slot, (slot + 1) * self.horizon, mid, spread, direction,
                                       persistence or majority, majority))
            self._previous_mid = mid
            self._next_point = (slot + 1) * self.horizon
            self._last_slot = slot

    def _score(self, point: _Point, mid: float) -> None:
        move = mid - point.mid
        if abs(move) <= point.spread:
            return
        actual = _sign(move)
        self.decisions.append(ScoredPoint(point.slot, point.strategy, actual))
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
