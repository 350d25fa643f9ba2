"""Session volume profile: volume per price level, the point of control (POC) and the 70 % value area.

The value area is built the usual way: start at the POC and repeatedly add the adjacent level (above or
below the area so far) with the larger volume — the higher level on a tie — until the area holds at
least `value_area` of the session's volume. VAL/VAH are its lowest and highest levels."""

from __future__ import annotations

import collections
from dataclasses import dataclass


@dataclass(frozen=True)
class ProfileLevels:
    poc: float
    val: float
    vah: float
    volume: float


class VolumeProfile:
    def __init__(self, tick: float, value_area: float = 0.70) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self.tick = tick
        self.value_area = value_area
        self.volume_at: dict[int, float] = collections.defaultdict(float)
        self.session: object | None = None

    def _level(self, price: float) -> int:
        return round(price / self.tick)

    def update(self, price: float, size: float, session: object | None = None) -> None:
        """Add a trade; a new `session` key (e.g. the trading date) starts a fresh profile."""
        if session is not None and session != self.session:
            self.reset()
            self.session = session
        self.volume_at[self._level(price)] += size

    def reset(self) -> None:
        self.volume_at.clear()

    def levels(self) -> ProfileLevels | None:
        if not self.volume_at:
            return None
        total = sum(self.volume_at.values())
        poc = max(self.volume_at, key=lambda level: (self.volume_at[level], level))
        low = high = poc
        inside = self.volume_at[poc]
        lowest, highest = min(self.volume_at), max(self.volume_at)
        while inside < self.value_area * total and (low > lowest or high < highest):
            above = self.volume_at.get(high + 1, 0) if high < highest else -1
            below = self.volume_at.get(low - 1, 0) if low > lowest else -1
            if above >= below:
                high += 1
                inside += above
            else:
                low -= 1
                inside += below
        return ProfileLevels(poc * self.tick, low * self.tick, high * self.tick, total)
