"""How good the runtime's regime detector is: false alarms per day on calm data (constant volatility, no
jumps: nothing to detect), the alarms on the market as it trades by default (stochastic volatility and jumps),
and the delay from an injected shift to the first alarm after it, per kind of shift.
Sessions of 6.5 h of 1 s quotes from the synthetic market's own diffusion; each shift lands at a random time
in the second half of a session, on a fresh detector (its 30-minute warm-up long past)."""

from __future__ import annotations

import dataclasses
import datetime
import math

import numpy as np
from pydantic import BaseModel, ConfigDict

from trading_runtime.feeds.synthetic import SymbolMarket, profile_for
from trading_runtime.ml.regime import RegimeDetector

SESSION_S = 6.5 * 3600
START = 1_767_225_600.0
SHIFTS = {"vol×3+spread×3": (3.0, 3.0), "vol×2": (2.0, 1.0), "vol×1.5": (1.5, 1.0), "spread×2": (1.0, 2.0)}
"""Injected shifts: (volatility factor, spread factor)."""


class ShiftFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    shift: str
    shifts: int
    detected: int
    """Shifts with an alarm before the session's end."""
    delays_s: list[float]
    """Seconds from each detected shift to its first alarm."""
    median_delay_s: float | None
    p90_delay_s: float | None
    max_delay_s: float | None


class RegimeFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    calm_days: int
    false_alarms: int
    false_alarms_per_day: float
    false_alarms_per_day_upper95: float
    """One-sided 95 % Poisson upper bound of the rate (3/days when no alarm was seen)."""
    shifts: list[ShiftFigures]
    stochastic_days: int
    stochastic_alarms_per_day: float
    """Alarms per day on the synthetic market as it trades by default (stochastic volatility, jumps): not calm,
    so not false alarms as such — what its own volatility moves make the detector say."""


def _market(seed: int, symbol: str = "SPY", calm: bool = True) -> SymbolMarket:
    profile = profile_for(symbol)
    if calm:
        profile = dataclasses.replace(profile, vol_of_vol=0.0, jumps_per_year=0.0)
    return SymbolMarket(profile, np.random.default_rng(seed), datetime.date(2026, 1, 1))


def _feed(detector: RegimeDetector, market: SymbolMarket, start: float, seconds: float) -> list[float]:
    alarms = []
    for i in range(int(seconds)):
        ts = start + i
        market.step(1.0)
        q = market.underlying_quote()
        if detector.update(ts, (q["bid"] + q["ask"]) / 2, q["ask"] - q["bid"], q["bidSize"] + q["askSize"]):
            alarms.append(ts)
    return alarms


def _upper95(events: int, days: int) -> float:
    """Exact one-sided 95 % upper bound of a Poisson rate per day (the chi-square quantile)."""
    from scipy.stats import chi2

    return float(chi2.ppf(0.95, 2 * (events + 1)) / 2 / days)


def _shift(name: str, vol: float, spread: float, shifts: int, seed: int) -> ShiftFigures:
    delays = []
    offsets = np.random.default_rng(seed).uniform(0.0, SESSION_S / 2 - 3600, shifts)
    for k in range(shifts):
        detector, market = RegimeDetector(), _market(seed + k)
        start = START + k * 86400
        at = math.floor(SESSION_S / 2 + offsets[k])
        _feed(detector, market, start, at)
        profile = market.profile
        market.profile = dataclasses.replace(profile, vol=profile.vol * vol, spread_bps=profile.spread_bps * spread)
        market.log_vol = math.log(market.profile.vol)
        after = _feed(detector, market, start + at, SESSION_S - at)
        if after:
            delays.append(after[0] - (start + at))
    return ShiftFigures(shift=name, shifts=shifts, detected=len(delays), delays_s=delays,
                        median_delay_s=float(np.median(delays)) if delays else None,
                        p90_delay_s=round(float(np.percentile(delays, 90)), 1) if delays else None,
                        max_delay_s=max(delays) if delays else None)


def _alarms(days: int, seed: int, calm: bool) -> int:
    alarms = 0
    for day in range(days):
        detector, market = RegimeDetector(), _market(seed + day, calm=calm)
        alarms += len(_feed(detector, market, START + day * 86400, SESSION_S))
    return alarms


def measure(calm_days: int = 20, shifts: int = 20, stochastic_days: int = 10, seed: int = 7) -> RegimeFigures:
    """The module doc's figures."""
    alarms = _alarms(calm_days, seed, calm=True)
    per_shift = [_shift(name, vol, spread, shifts, seed + 1000 * (i + 1))
                 for i, (name, (vol, spread)) in enumerate(SHIFTS.items())]
    return RegimeFigures(calm_days=calm_days, false_alarms=alarms, false_alarms_per_day=alarms / calm_days,
                         false_alarms_per_day_upper95=_upper95(alarms, calm_days), shifts=per_shift,
                         stochastic_days=stochastic_days,
                         stochastic_alarms_per_day=_alarms(stochastic_days, seed + 500, calm=False) / stochastic_days)
