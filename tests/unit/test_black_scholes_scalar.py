"""The float path of one option (`implied_vol_one`, `greeks_one`, `price_one`: what the tick path prices a
contract with) gives what the vectorised functions give, to 1e-10, over a grid of moneyness, expiries,
volatilities, rates, dividend yields, both rights and both models — and NaN where they give NaN."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from trading_runtime.execution.options import Contract, contract_greeks, years_to
from trading_runtime.pricing.black_scholes import (
    greeks,
    greeks_one,
    implied_vol,
    implied_vol_one,
    price,
    price_one,
)

STRIKES = [40.0, 70.0, 90.0, 99.0, 100.0, 101.0, 110.0, 130.0, 200.0]
TIMES = [1 / (365 * 24), 1 / 365, 7 / 365, 0.25, 1.0, 5.0]
VOLS = [0.03, 0.15, 0.4, 1.0, 2.5]
RATES = [(0.0, 0.0), (0.045, 0.0), (0.03, 0.02)]
GRID = list(itertools.product(STRIKES, TIMES, VOLS, RATES, [True, False], ["bsm", "black76"]))
TOL = 1e-10


def identifiable(premium: float, vega: float) -> bool:
    """The price determines σ to better than 1e-10 (as in test_pricing_black_scholes.py): not within an ulp or so
    of intrinsic value, where one ulp of the forward (numpy's exp and math.exp may differ by one) moves the
    answer anywhere, or says there is none."""
    return premium > 1e-10 and vega > 1e-6 and 2e-16 * premium / vega < 1e-11


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL * max(1.0, abs(b))


def test_the_float_path_matches_the_vectorised_one_over_the_grid():
    checked = solved = 0
    for strike, t, vol, (r, q), call, model in GRID:
        premium = float(price(100.0, strike, t, vol, r, call, q, model=model))
        assert close(price_one(100.0, strike, t, vol, r, call, q, model=model), premium), (strike, t, vol, r, q)
        vector = greeks(100.0, strike, t, vol, r, call, q, model=model)
        one = greeks_one(100.0, strike, t, vol, r, call, q, model=model)
        for name, value in zip(("delta", "gamma", "vega", "theta"), one, strict=True):
            assert close(value, float(vector[name])), (name, strike, t, vol, r, q, call, model)
        if not identifiable(premium, float(vector["vega"])):
            continue
        expected = float(implied_vol(premium, 100.0, strike, t, r, call, q, model=model))
        got = implied_vol_one(premium, 100.0, strike, t, r, call, q, model=model)
        assert close(got, expected), (strike, t, vol, r, q, call, model, got, expected)
        checked += 1
        solved += not math.isnan(expected)
    # Not vacuous: most of the grid has a volatility the price determines, and it is found.
    assert checked > 0.6 * len(GRID)
    assert solved == checked


@pytest.mark.parametrize(("premium", "spot", "strike", "t"), [
    (0.5, 100.0, 80.0, 0.25),        # below intrinsic
    (101.0, 100.0, 90.0, 0.25),      # above the forward
    (2.0, 100.0, 100.0, 0.0),        # expired
    (2.0, 100.0, 100.0, -0.1),
    (math.nan, 100.0, 100.0, 0.25),
    (2.0, math.inf, 100.0, 0.25),
    (2.0, 100.0, 0.0, 0.25),
    (0.0, 100.0, 100.0, 0.25),
])
def test_no_volatility_where_the_vectorised_solver_finds_none(premium, spot, strike, t):
    assert math.isnan(implied_vol_one(premium, spot, strike, t, 0.03, True))
    assert math.isnan(float(implied_vol(premium, spot, strike, t, 0.03, True)))


def test_contract_greeks_are_the_vectorised_solve_and_greeks():
    contract = Contract(instrument="SPY-20270115-P-505", expiry="20270115", right="P", strike=505.0)
    ts = 1_796_000_000.0  # 2026-11-28
    got = contract_greeks(contract, 9.75, 500.0, ts, 0.04, "bsm")
    assert got is not None
    years = years_to(contract.expiry, ts)
    vol = float(implied_vol(9.75, 500.0, 505.0, years, 0.04, False))
    g = greeks(500.0, 505.0, years, vol, 0.04, False)
    assert np.allclose([got.delta, got.gamma, got.vega], [g["delta"], g["gamma"], g["vega"]], rtol=1e-10, atol=1e-12)
