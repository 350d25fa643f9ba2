"""Dynamic position sizing: volatility targeting scaled by fractional Kelly, capped.

notional = equity · min(cap, kelly_fraction · f*) / f_ref · (target_vol / realised_vol), with the Kelly
fraction f* = p − (1 − p)/b for hit rate p and payoff ratio b (no edge → no position), f_ref = 1 so that a
full-Kelly, on-target-volatility bet is `equity` notional; finally capped at `max_leverage · equity`."""

from __future__ import annotations

import math


def kelly_fraction(hit_rate: float, payoff_ratio: float) -> float:
    if payoff_ratio <= 0 or math.isnan(hit_rate):
        return 0.0
    return max(0.0, hit_rate - (1 - hit_rate) / payoff_ratio)


def position_notional(equity: float, realised_vol: float, target_vol: float, hit_rate: float,
                      payoff_ratio: float, fraction: float = 0.25, cap: float = 0.2,
                      max_leverage: float = 1.0) -> float:
    if equity <= 0 or realised_vol <= 0 or math.isnan(realised_vol):
        return 0.0
    bet = min(cap, fraction * kelly_fraction(hit_rate, payoff_ratio))
    return min(equity * bet * target_vol / realised_vol, max_leverage * equity)
