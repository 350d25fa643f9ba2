"""How a runtime applies the portfolio service's cap: fresh, stale (hold), absent (no service)."""

from __future__ import annotations

import math

import pytest

from trading_runtime.portfolio.caps import CapState, effective_cap
from trading_runtime.portfolio.events import SymbolCap


@pytest.mark.parametrize(("published", "now", "expected"), [
    (None, 100.0, (math.inf, CapState.ABSENT)),
    (SymbolCap(cap=60_000.0, computed_at=95.0), 100.0, (60_000.0, CapState.FRESH)),
    (SymbolCap(cap=60_000.0, computed_at=80.0), 100.0, (25_000.0, CapState.STALE)),
], ids=["no-service", "fresh", "stale-holds-what-is-held"])
def test_effective_cap(published, now, expected):
    assert effective_cap(published, now, max_age_s=10.0, own_notional=-25_000.0) == expected
