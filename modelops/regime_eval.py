"""How good the runtime's regime detector is: false alarms per day on calm data (constant volatility, no
jumps: nothing to detect) and the delay from an injected shift (volatility × `factor` and the spread widened)
to the first alarm after it. Sessions of 6.5 h of 1 s quotes from the synthetic market's own diffusion."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from pydantic import BaseModel, ConfigDict

from trading_runtime.feeds.synthetic import SymbolMarket, profile_for
from trading_runtime.ml.regime import RegimeDetector

SESSION_S = 6.5 * 3600
START = 1_767_225_600.0


class RegimeFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    calm_days: int
    false_alarms: int
    false_alarms_per_day: float
    shifts: int
    detected: int
    detection_delay_s: list[float]
    """Per injected shift that was detected (seconds from the shift to the first alarm)."""
    median_delay_s: float | None


def _market(seed: int, symbol: str = "SPY") -> SymbolMarket:
    calm = dataclasses.replace(profile_for(symbol), vol_of_vol=0.0, jumps_per_year=0.0)
    import datetime

    return SymbolMarket(calm, np.random.default_rng(seed), datetime.date(2026, 1, 1))


def _feed(detector: RegimeDetector, market: SymbolMarket, start: float, seconds: float) -> list[float]:
    alarms = []
    for i in range(int(seconds)):
        ts = start + i
        market.step(1.0)
        q = market.underlying_quote()
        if detector.update(ts, (q["bid"] + q["ask"]) / 2, q["ask"] - q["bid"], q["bidSize"] + q["askSize"]):
            alarms.append(ts)
    return alarms


def measure(calm_days: int = 5, shifts: int = 5, factor: float = 3.0, seed: int = 7) -> RegimeFigures:
    """The module doc's figures (each shift on a fresh detector after a calm session, shifted half-way)."""
    alarms = 0
    for day in range(calm_days):
        detector, market = RegimeDetector(), _market(seed + day)
        alarms += len(_feed(detector, market, START + day * 86400, SESSION_S))
    delays = []
    for k in range(shifts):
        detector, market = RegimeDetector(), _market(seed + 1000 + k)
        start = START + k * 86400
        half = SESSION_S / 2
        _feed(detector, market, start, half)
        profile = market.profile
        market.profile = dataclasses.replace(profile, vol=profile.vol * factor, spread_bps=profile.spread_bps * factor)
        market.log_vol = math.log(market.profile.vol)
        after = _feed(detector, market, start + half, half)
        if after:
            delays.append(after[0] - (start + half))
    return RegimeFigures(calm_days=calm_days, false_alarms=alarms, false_alarms_per_day=alarms / calm_days,
                         shifts=shifts, detected=len(delays), detection_delay_s=delays,
                         median_delay_s=float(np.median(delays)) if delays else None)
