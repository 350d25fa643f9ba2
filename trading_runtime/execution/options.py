"""Expressing a directional view with listed options: which contract to hold, how many, and the greeks
of what is held.

Long → buy the call, short → buy the put, at the strike nearest the underlying, in the nearest expiry at
least `min_days` away (the longest one if none is); the number of contracts makes the position's delta
worth the target notional: contracts = ⌊notional / (|Δ| · S · multiplier)⌋. Greeks use the implied vol of
the option's own mid."""

from __future__ import annotations

import datetime
import functools
import math
from dataclasses import dataclass

from trading_runtime.pricing.black_scholes import Model, greeks_one, implied_vol_one

MIN_DAYS = 7


@dataclass(frozen=True)
class Contract:
    instrument: str
    expiry: str  # YYYYMMDD
    right: str
    strike: float


def parse_option_id(instrument: str) -> Contract | None:
    """`SPY-20261218-C-500` → Contract; None for anything else."""
    parts = instrument.split("-")
    if len(parts) != 4 or parts[2] not in ("C", "P"):
        return None
    try:
        return Contract(instrument, parts[1], parts[2], float(parts[3]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def _expires(expiry: str) -> float:
    # Parsed once per expiry: strptime costs more than the rest of a contract choice.
    return datetime.datetime.strptime(expiry, "%Y%m%d").replace(tzinfo=datetime.UTC).timestamp()


def years_to(expiry: str, ts: float) -> float:
    return (_expires(expiry) - ts) / (365 * 86400)


def choose_contract(contracts: list[Contract], spot: float, direction: int, ts: float,
                    min_days: int = MIN_DAYS) -> Contract | None:
    right = "C" if direction > 0 else "P"
    candidates = [c for c in contracts if c.right == right and years_to(c.expiry, ts) > 0]
    if not candidates or not direction:
        return None
    expiries = sorted({c.expiry for c in candidates})
    far_enough = [e for e in expiries if years_to(e, ts) * 365 >= min_days]
    expiry = far_enough[0] if far_enough else expiries[-1]
    return min((c for c in candidates if c.expiry == expiry), key=lambda c: (abs(c.strike - spot), c.strike))


@dataclass(frozen=True)
class Greeks:
    delta: float
    gamma: float
    vega: float


def contract_greeks(contract: Contract, option_mid: float, spot: float, ts: float, rate: float,
                    model: Model) -> Greeks | None:
    """Per-unit greeks (not × multiplier); None when the mid implies no volatility."""
    years = years_to(contract.expiry, ts)
    call = contract.right == "C"
    # One contract on the tick path: the float versions of the solver and the greeks (numpy's overhead on
    # one-element arrays was most of a rebalancing decision's time).
    vol = implied_vol_one(option_mid, spot, contract.strike, years, rate, call, model=model)
    if math.isnan(vol) or years <= 0:
        return None
    delta, gamma, vega, _ = greeks_one(spot, contract.strike, years, vol, rate, call, model=model)
    return Greeks(delta, gamma, vega)


def contracts_for(notional: float, delta: float, spot: float, multiplier: float) -> int:
    if not delta or spot <= 0:
        return 0
    return max(0, math.floor(notional / (abs(delta) * spot * multiplier)))
