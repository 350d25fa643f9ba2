"""Session volume profile: volume per price level, the point of control (POC) and the value area.

Definitions used:

- Levels: a trade at price P goes to level round(P/tick) (round half to even), i.e. bins of width `tick`
  centred on multiples of `tick`; reported prices are level·tick.
- POC: the level with the most volume; on a tie, the highest such price.
- Value area (default 70 %): start at the POC and repeatedly extend by one level — the level just above or
  just below the area so far, whichever has more volume (empty levels inside the traded range count as 0);
  on a tie, extend upwards; once one side reaches the session's highest/lowest traded level only the other
  side is added — until the area holds at least `value_area` of the session's volume. VAL/VAH are its
  lowest/highest levels, so the area is contiguous and always contains the POC.

`update` is O(1); `levels()` is O(number of levels in the session's range), computed once per change of
the profile (callers ask on every quote, the profile changes only on trades). A changed `session` key (for
example the trading date) passed to `update` resets the profile automatically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ProfileLevels", "VolumeProfile"]


@dataclass(frozen=True)
class ProfileLevels:
    poc: float
    val: float
    vah: float
    volume: float
    value_area_volume: float


class VolumeProfile:
    """Volume per price level for one session, with POC and value area (module doc)."""

    def __init__(self, tick: float, value_area: float = 0.70) -> None:
        if not tick > 0:
            raise ValueError("tick must be positive")
        if not 0 < value_area <= 1:
            raise ValueError("value_area must be in (0, 1]")
        self.tick = tick
        self.value_area = value_area
        self.volume_at: dict[int, float] = {}
        self.total = 0.0
        self.session: object | None = None
        self._levels: ProfileLevels | None = None
        self._stale = False

    def level(self, price: float) -> int:
        """The level index of `price`."""
        return round(price / self.tick)

    def update(self, price: float, size: float, session: object | None = None) -> None:
        """Add a trade. A `session` key different from the current one starts a fresh profile first; None
        keeps the current session. Trades with non-positive or non-finite size or price are ignored."""
        if session is not None and session != self.session:
            self.reset(session)
        if not (size > 0 and math.isfinite(size) and math.isfinite(price)):
            return
        level = self.level(price)
        self.volume_at[level] = self.volume_at.get(level, 0.0) + size
        self.total += size
        self._stale = True

    def reset(self, session: object | None = None) -> None:
        """Start a new, empty session profile (with session key `session`)."""
        self.volume_at.clear()
        self.total = 0.0
        self.session = session
        self._levels, self._stale = None, False

    def volume_at_price(self, price: float) -> float:
        """Session volume at `price`'s level."""
        return self.volume_at.get(self.level(price), 0.0)

    def levels(self) -> ProfileLevels | None:
        """POC, VAL, VAH (prices), the session volume and the volume inside the value area; None when empty."""
        if self._stale:
            self._levels, self._stale = self._compute(), False
        return self._levels

    def _compute(self) -> ProfileLevels | None:
        volume_at = self.volume_at
        if not volume_at:
            return None
        total = math.fsum(volume_at.values())
        poc = max(volume_at, key=lambda level: (volume_at[level], level))
        lowest, highest = min(volume_at), max(volume_at)
        target = self.value_area * total
        low = high = poc
        inside = volume_at[poc]
        while inside < target and (low > lowest or high < highest):
            above = volume_at.get(high + 1, 0.0) if high < highest else -1.0
            below = volume_at.get(low - 1, 0.0) if low > lowest else -1.0
            if above >= below:
                high += 1
                inside += above
            else:
                low -= 1
                inside += below
        return ProfileLevels(poc * self.tick, low * self.tick, high * self.tick, total, inside)
