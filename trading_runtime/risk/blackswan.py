"""Black-swan detection on the underlying's quotes: an extreme move (|return| over `z_limit` standard
deviations of an EWMA volatility, and at least `min_move` in size), a jump over a short window
(|move| ≥ `jump_pct` within `jump_window_s`), or a liquidity collapse (spread ≥ `spread_multiple` × its EWMA
while depth ≤ `depth_fraction` × its EWMA). Any of them halts trading and raises an alert (metric and event)
with the numbers behind it; the engine lifts the halt when the next session opens.

What is not evidence: a zero spread or zero depth (bars and some recorded files carry no book, so there is
no usual level to collapse from), a small move that is many "standard deviations" only because the history
is short or flat (hence `min_move`), and the gap between two sessions (`new_period` forgets the last mid
and the jump window, so the overnight move is never taken for an intraday one)."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BlackSwan:
    kind: str
    detail: dict[str, float]


@dataclass
class BlackSwanDetector:
    z_limit: float = 8.0
    min_move: float = 0.005
    """Smallest |log return| that can be an extreme move, whatever its z-score."""
    jump_pct: float = 0.03
    jump_window_s: float = 60.0
    spread_multiple: float = 8.0
    depth_fraction: float = 0.1
    halflife_ticks: float = 500.0
    warmup_ticks: int = 200
    _variance: float = 0.0
    _spread: float = 0.0
    _depth: float = 0.0
    _last: float | None = None
    _ticks: int = 0
    # The jump window's low and high as monotonic deques of (ts, mid): O(1) amortised per quote.
    _lows: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    _highs: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)

    def new_period(self) -> None:
        """A session opened or closed: the next quote starts a fresh return series and jump window (the
        usual volatility, spread and depth carry over)."""
        self._last = None
        self._lows.clear()
        self._highs.clear()

    def _window(self, ts: float, mid: float) -> tuple[float, float]:
        """Lowest and highest mid within the last `jump_window_s`, this one included."""
        lows, highs, since = self._lows, self._highs, ts - self.jump_window_s
        while lows and lows[-1][1] >= mid:
            lows.pop()
        lows.append((ts, mid))
        while highs and highs[-1][1] <= mid:
            highs.pop()
        highs.append((ts, mid))
        while lows[0][0] < since:
            lows.popleft()
        while highs[0][0] < since:
            highs.popleft()
        return lows[0][1], highs[0][1]

    def update(self, ts: float, mid: float, spread: float, depth: float) -> BlackSwan | None:
        alpha = 1 - 0.5 ** (1 / self.halflife_ticks)
        event = None
        warm = self._ticks >= self.warmup_ticks
        if self._last is not None and warm:
            ret = math.log(mid / self._last)
            sigma = math.sqrt(self._variance)
            if sigma > 0 and abs(ret) > self.z_limit * sigma and abs(ret) >= self.min_move:
                event = BlackSwan("extreme-move", {"return": ret, "sigma": sigma, "z": ret / sigma})
            elif (self._spread > 0 and self._depth > 0 and spread >= self.spread_multiple * self._spread
                  and depth <= self.depth_fraction * self._depth):
                event = BlackSwan("liquidity-collapse", {"spread": spread, "usual_spread": self._spread,
                                                         "depth": depth, "usual_depth": self._depth})
        low, high = self._window(ts, mid)
        if event is None and warm and (high - low) / low >= self.jump_pct:
            event = BlackSwan("jump", {"move": (high - low) / low, "window_s": self.jump_window_s})
        if self._last is not None:
            ret = math.log(mid / self._last)
            self._variance += alpha * (ret * ret - self._variance)
        self._spread += alpha * (spread - self._spread) if self._ticks else spread
        self._depth += alpha * (depth - self._depth) if self._ticks else depth
        self._last = mid
        self._ticks += 1
        return event
