"""Pricing, greeks and the implied-volatility solver, checked against vollib (LetsBeRational)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from vollib.black.implied_volatility import implied_volatility as vollib_black_iv
from vollib.black_scholes import black_scholes as vollib_bs_price
from vollib.black_scholes.implied_volatility import implied_volatility as vollib_bs_iv

from trading_runtime.pricing.black_scholes import greeks, implied_vol, price

GRID = list(itertools.product([60, 90, 100, 110, 150], [7 / 365, 0.25, 1.0, 3.0], [0.08, 0.25, 0.6], [True, False]))


@pytest.mark.parametrize(("strike", "t", "vol", "call"), GRID,
                         ids=[f"K{k}-T{t:.2f}-v{v}-{'c' if c else 'p'}" for k, t, v, c in GRID])
def test_bsm_price_and_iv_match_vollib(strike, t, vol, call):
    flag = "c" if call else "p"
    ours = float(price(100, strike, t, vol, 0.03, call))
    assert ours == pytest.approx(vollib_bs_price(flag, 100, strike, t, 0.03, vol), rel=1e-9, abs=1e-12)
    vega = float(greeks(100, strike, t, vol, 0.03, call)["vega"])
    if ours < 1e-8 or vega < 1e-4:
        return  # vol is not determined by a price this insensitive to it
    iv = float(implied_vol(ours, 100, strike, t, 0.03, call))
    assert iv == pytest.approx(vollib_bs_iv(ours, 100, strike, t, 0.03, flag), abs=1e-7)
    assert iv == pytest.approx(vol, abs=1e-7)


@pytest.mark.parametrize(("strike", "call"), [(4500, True), (5000, False), (5600, True)],
                         ids=["itm-c", "atm-p", "otm-c"])
def test_black76_iv_matches_vollib(strike, call):
    p = float(price(5000, strike, 0.3, 0.2, 0.04, call, model="black76"))
    iv = float(implied_vol(p, 5000, strike, 0.3, 0.04, call, model="black76"))
    assert iv == pytest.approx(vollib_black_iv(p, 5000, strike, 0.04, 0.3, "c" if call else "p"), abs=1e-7)


def test_vectorised_round_trip_over_a_random_chain():
    rng = np.random.default_rng(0)
    n = 10_000
    strikes, times = rng.uniform(60, 140, n), rng.uniform(0.02, 2, n)
    vols, calls = rng.uniform(0.05, 0.9, n), rng.random(n) < 0.5
    prices = price(100, strikes, times, vols, 0.02, calls)
    ivs = implied_vol(prices, 100, strikes, times, 0.02, calls)
    meaningful = (prices > 1e-8) & (greeks(100, strikes, times, vols, 0.02, calls)["vega"] > 1e-4)
    assert np.nanmax(np.abs(ivs - vols)[meaningful]) < 1e-6
    repriced = price(100, strikes, times, np.nan_to_num(ivs), 0.02, calls)
    assert np.allclose(repriced[np.isfinite(ivs)], prices[np.isfinite(ivs)], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("option_price", "call"), [(0.5, True), (120.0, True), (-1.0, False), (0.0, False)],
    ids=["below-intrinsic", "above-spot", "negative", "zero"],
)
def test_impossible_prices_have_no_implied_vol(option_price, call):
    assert np.isnan(implied_vol(option_price, 100, 90 if call else 110, 0.5, 0.0, call))


@given(st.floats(50, 150), st.floats(0.01, 3), st.floats(0.05, 1.5), st.floats(0, 0.1))
def test_put_call_parity(strike, t, vol, r):
    call = float(price(100, strike, t, vol, r, True, q=0.01))
    put = float(price(100, strike, t, vol, r, False, q=0.01))
    assert call - put == pytest.approx(100 * np.exp(-0.01 * t) - strike * np.exp(-r * t), abs=1e-8)


@pytest.mark.parametrize("model", ["bsm", "black76"])
@pytest.mark.parametrize("call", [True, False], ids=["call", "put"])
def test_greeks_match_finite_differences(model, call):
    s, k, t, v, r, h = 100.0, 105.0, 0.4, 0.3, 0.03, 1e-4
    g = greeks(s, k, t, v, r, call, q=0.0, model=model)

    def p(**kw):
        args = {"underlying": s, "strike": k, "t": t, "vol": v, "r": r} | kw
        return float(price(args["underlying"], args["strike"], args["t"], args["vol"], args["r"], call, model=model))

    assert float(g["delta"]) == pytest.approx((p(underlying=s + h) - p(underlying=s - h)) / (2 * h), rel=1e-5)
    assert float(g["gamma"]) == pytest.approx((p(underlying=s + h) - 2 * p() + p(underlying=s - h)) / h**2, rel=1e-3)
    assert float(g["vega"]) == pytest.approx((p(vol=v + h) - p(vol=v - h)) / (2 * h), rel=1e-5)
    assert float(g["theta"]) == pytest.approx(-(p(t=t + h) - p(t=t - h)) / (2 * h), rel=1e-4)
