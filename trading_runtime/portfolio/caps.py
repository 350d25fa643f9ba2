"""How a runtime uses the cap the portfolio service published for it (pure)."""

from __future__ import annotations

import enum
import math

from trading_runtime.portfolio.events import SymbolCap


class CapState(enum.Enum):
    FRESH = "fresh"
    STALE = "stale"
    """The service has gone quiet: hold what is held, add nothing, until it speaks again."""
    ABSENT = "absent"
    """No service has ever published (none deployed): the portfolio sets no limit."""


def effective_cap(published: SymbolCap | None, now: float, max_age_s: float,
                  own_notional: float) -> tuple[float, CapState]:
    """The notional this symbol may hold now."""
    if published is None:
        return math.inf, CapState.ABSENT
    if now - published.computed_at > max_age_s:
        return abs(own_notional), CapState.STALE
    return published.cap, CapState.FRESH
