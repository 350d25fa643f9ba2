"""Pricing, greeks and the implied-volatility solver, checked against vollib (LetsBeRational)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black import black as vollib_black_price
from vollib.black.implied_volatility import implied_volatility as vollib_black_iv
from vollib.black_scholes import black_scholes as vollib_bs_price
from vollib.black_scholes.implied_volatility import implied_volatility as vollib_bs_iv

from trading_runtime.pricing.black_scholes import forward_price, greeks, implied_vol, implied_vol_black76, price

RATE = 0.03
# Deep ITM/OTM strikes (spot/forward 100), expiries from one hour to five years, vols from 3% to 250%.
STRIKES = [40, 70, 90, 99, 100, 101, 110, 130, 200]
TIMES = [1 / (365 * 24), 1 / 365, 7 / 365, 0.25, 1.0, 5.0]
VOLS = [0.03, 0.15, 0.4, 1.0, 2.5]
GRID = list(itertools.product(STRIKES, TIMES, VOLS, [True, False]))
GRID_IDS = [f"K{k}-T{t:.4f}-v{v}-{'c' if c else 'p'}" for k, t, v, c in GRID]
IV_ABS_TOL = 1e-9


def _identifiable(option_price: float, vega: float) -> bool:
    """A price determines its volatility to ~1e-9 only where it is not vanishingly small, moves with σ, and its
    rounding error (an ulp, ~1e-16 relative) is worth well under 1e-9 of volatility."""
    return option_price > 1e-10 and vega > 1e-6 and 2e-16 * option_price / vega < 1e-10


@pytest.mark.parametrize(("strike", "t", "vol", "call"), GRID, ids=GRID_IDS)
def test_bsm_price_and_iv_match_vollib(strike, t, vol, call):
    flag = "c" if call else "p"
    ours = float(price(100, strike, t, vol, RATE, call))
    assert ours == pytest.approx(vollib_bs_price(flag, 100, strike, t, RATE, vol), rel=1e-9, abs=1e-12)
    if not _identifiable(ours, float(greeks(100, strike, t, vol, RATE, call)["vega"])):
        return
    iv = float(implied_vol(ours, 100, strike, t, RATE, call))
    # vollib's argument order: (price, S, K, t, r, flag)
    assert iv == pytest.approx(vollib_bs_iv(ours, 100, strike, t, RATE, flag), abs=IV_ABS_TOL)
    assert iv == pytest.approx(vol, abs=IV_ABS_TOL)


@pytest.mark.parametrize(("strike", "t", "vol", "call"), GRID, ids=GRID_IDS)
def test_black76_price_and_iv_match_vollib(strike, t, vol, call):
    flag = "c" if call else "p"
    ours = float(price(100, strike, t, vol, RATE, call, model="black76"))
    # vollib.black's argument order: price (flag, F, K, t, r, sigma), IV (price, F, K, r, t, flag)
    assert ours == pytest.approx(vollib_black_price(flag, 100, strike, t, RATE, vol), rel=1e-9, abs=1e-12)
    if not _identifiable(ours, float(greeks(100, strike, t, vol, RATE, call, model="black76")["vega"])):
        return
    iv = float(implied_vol_black76(ours, 100, strike, t, RATE, call))
    assert iv == pytest.approx(vollib_black_iv(ours, 100, strike, RATE, t, flag), abs=IV_ABS_TOL)
    assert iv == pytest.approx(vol, abs=IV_ABS_TOL)


def test_the_grid_vectorised_in_one_call_matches_the_scalar_calls():
    k, t, v, c = (np.array(column) for column in zip(*GRID, strict=True))
    prices = price(100, k, t, v, RATE, c.astype(bool))
    batch = implied_vol(prices, 100, k, t, RATE, c.astype(bool))
    single = np.array([float(implied_vol(p, 100, kk, tt, RATE, cc)) for p, kk, tt, cc in zip(prices, k, t, c,
                                                                                               strict=True)])
    np.testing.assert_array_equal(np.isnan(batch), np.isnan(single))
    np.testing.assert_allclose(batch[np.isfinite(batch)], single[np.isfinite(single)], rtol=0, atol=1e-12)


@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_ten_thousand_random_options_against_vollib_and_throughput(model):
    """Accuracy on a random book; the solver's speed is printed for information only (no timing assertion)."""
    rng = np.random.default_rng(7)
    n = 10_000
    strikes, times = rng.uniform(40, 250, n), rng.uniform(1 / 365, 3, n)
    vols, calls = rng.uniform(0.03, 1.5, n), rng.random(n) < 0.5
    prices = price(100, strikes, times, vols, RATE, calls, model=model)
    started = time.perf_counter()
    ivs = implied_vol(prices, 100, strikes, times, RATE, calls, model=model)
    elapsed = time.perf_counter() - started
    print(f"\n{model}: {n} implied vols in {elapsed * 1e3:.1f} ms = {n / elapsed:,.0f} per second")

    vega = greeks(100, strikes, times, vols, RATE, calls, model=model)["vega"]
    identifiable = (prices > 1e-10) & (vega > 1e-6) & (2e-16 * prices < 1e-10 * vega)
    assert np.isfinite(ivs[identifiable]).all()
    assert np.max(np.abs(ivs - vols)[identifiable]) < IV_ABS_TOL
    solved = np.isfinite(ivs)
    repriced = price(100, strikes, times, np.where(solved, ivs, 0.0), RATE, calls, model=model)
    assert np.max(np.abs(repriced - prices)[solved]) < 1e-8  # the solver's price tolerance

    sample = np.flatnonzero(identifiable)[:300]
    for i in sample:
        flag = "c" if calls[i] else "p"
        reference = (vollib_bs_iv(prices[i], 100, strikes[i], times[i], RATE, flag) if model == "bsm"
                     else vollib_black_iv(prices[i], 100, strikes[i], RATE, times[i], flag))
        assert ivs[i] == pytest.approx(reference, abs=IV_ABS_TOL)


@settings(max_examples=300, deadline=None)
@given(
    strike=st.floats(20, 500),
    t=st.floats(1 / (365 * 24), 10),
    vol=st.floats(0.01, 3.0),
    r=st.floats(-0.01, 0.1),
    q=st.floats(0, 0.08),
    call=st.booleans(),
    model=st.sampled_from(["bsm", "black76"]),
)
def test_round_trip_price_iv_price(strike, t, vol, r, q, call, model):
    p = float(price(100, strike, t, vol, r, call, q=q, model=model))
    iv = float(implied_vol(p, 100, strike, t, r, call, q=q, model=model))
    vega = float(greeks(100, strike, t, vol, r, call, q=q, model=model)["vega"])
    if _identifiable(p, vega):
        assert iv == pytest.approx(vol, abs=1e-8)
    if np.isfinite(iv):
        assert float(price(100, strike, t, iv, r, call, q=q, model=model)) == pytest.approx(p, abs=1e-8)


@settings(max_examples=200, deadline=None)
@given(st.floats(20, 500), st.floats(0.001, 5), st.floats(0.01, 2.0), st.floats(-0.01, 0.1), st.floats(0, 0.08),
       st.sampled_from(["bsm", "black76"]))
def test_put_call_parity(strike, t, vol, r, q, model):
    call = float(price(100, strike, t, vol, r, True, q=q, model=model))
    put = float(price(100, strike, t, vol, r, False, q=q, model=model))
    forward = float(forward_price(100, t, r, q, model=model))
    assert call - put == pytest.approx(np.exp(-r * t) * (forward - strike), abs=1e-9 * max(100, strike))
    # The same volatility comes back from the call and from the put.
    vega = float(greeks(100, strike, t, vol, r, True, q=q, model=model)["vega"])
    if _identifiable(min(call, put), vega):
        iv_call = float(implied_vol(call, 100, strike, t, r, True, q=q, model=model))
        iv_put = float(implied_vol(put, 100, strike, t, r, False, q=q, model=model))
        assert iv_call == pytest.approx(iv_put, abs=1e-7)


FD_CASES = [
    ("bsm", True, 100.0, 0.0), ("bsm", False, 100.0, 0.0), ("bsm", True, 80.0, 0.02), ("bsm", False, 125.0, 0.02),
    ("black76", True, 100.0, 0.0), ("black76", False, 90.0, 0.0), ("black76", True, 120.0, 0.0),
]


@pytest.mark.parametrize(("model", "call", "strike", "q"), FD_CASES,
                         ids=[f"{m}-{'c' if c else 'p'}-K{k:g}-q{q}" for m, c, k, q in FD_CASES])
def test_greeks_match_finite_differences(model, call, strike, q):
    s, t, v, r = 100.0, 0.4, 0.3, 0.03
    g = greeks(s, strike, t, v, r, call, q=q, model=model)

    def p(s_=s, t_=t, v_=v):
        return float(price(s_, strike, t_, v_, r, call, q=q, model=model))

    hs, hv, ht = 1e-3, 1e-5, 1e-5
    assert float(g["delta"]) == pytest.approx((p(s_=s + hs) - p(s_=s - hs)) / (2 * hs), rel=1e-6)
    assert float(g["gamma"]) == pytest.approx((p(s_=s + hs) - 2 * p() + p(s_=s - hs)) / hs**2, rel=1e-4)
    assert float(g["vega"]) == pytest.approx((p(v_=v + hv) - p(v_=v - hv)) / (2 * hv), rel=1e-6)
    assert float(g["theta"]) == pytest.approx(-(p(t_=t + ht) - p(t_=t - ht)) / (2 * ht), rel=1e-5)


def test_greeks_at_expiry_are_the_payoff_step_without_warnings():
    g = greeks(100, np.array([90.0, 110.0, 90.0, 110.0]), 0.0, 0.2, RATE, np.array([True, True, False, False]))
    np.testing.assert_array_equal(g["delta"], [1.0, 0.0, 0.0, -1.0])
    for name in ("gamma", "vega", "theta"):
        np.testing.assert_array_equal(g[name], 0.0)


IMPOSSIBLE = [
    (5.0, 90.0, 0.5, True, "bsm"),  # below the call's intrinsic value (~10.7)
    (100.5, 90.0, 0.5, True, "bsm"),  # above the spot
    (5.0, 110.0, 0.5, False, "bsm"),  # below the put's intrinsic value
    (111.0, 110.0, 0.5, False, "bsm"),  # above the discounted strike
    (-1.0, 100.0, 0.5, False, "bsm"),
    (0.0, 100.0, 0.5, True, "bsm"),
    (float("nan"), 100.0, 0.5, True, "bsm"),
    (float("inf"), 100.0, 0.5, True, "bsm"),
    (3.0, 100.0, 0.0, True, "bsm"),  # expired
    (3.0, 100.0, -0.1, True, "bsm"),
    (9.0, 90.0, 0.5, True, "black76"),  # below the discounted intrinsic value (~9.85)
    (99.0, 90.0, 0.5, True, "black76"),  # above the discounted future (~98.5)
    (0.0, 110.0, 0.5, False, "black76"),
]


@pytest.mark.parametrize(("option_price", "strike", "t", "call", "model"), IMPOSSIBLE,
                         ids=["below-intrinsic-c", "above-spot", "below-intrinsic-p", "above-strike", "negative",
                              "zero", "nan", "inf", "expired", "negative-time", "b76-below-intrinsic",
                              "b76-above-forward", "b76-zero"])
def test_impossible_prices_have_no_implied_vol(option_price, strike, t, call, model):
    assert np.isnan(implied_vol(option_price, 100, strike, t, RATE, call, model=model))


def test_impossible_entries_do_not_disturb_the_rest_and_shape_is_kept():
    strikes = np.array([[90.0, 100.0, 110.0], [90.0, 100.0, 110.0]])
    prices = price(100, strikes, 0.5, 0.25, RATE, True)
    prices[1, 1] = 200.0  # impossible
    ivs = implied_vol(prices, 100, strikes, 0.5, RATE, True)
    assert ivs.shape == (2, 3)
    assert np.isnan(ivs[1, 1])
    np.testing.assert_allclose(np.delete(ivs.ravel(), 4), 0.25, atol=1e-12)


def test_scalar_inputs_give_a_zero_dimensional_array():
    iv = implied_vol(float(price(100, 100, 0.5, 0.2, RATE, True)), 100, 100, 0.5, RATE, True)
    assert iv.shape == ()
    assert float(iv) == pytest.approx(0.2, abs=1e-12)


def test_dividend_yield_lowers_calls_and_raises_puts():
    without = price(100, 100, 1.0, 0.2, RATE, [True, False])
    with_q = price(100, 100, 1.0, 0.2, RATE, [True, False], q=0.03)
    assert with_q[0] < without[0]
    assert with_q[1] > without[1]
