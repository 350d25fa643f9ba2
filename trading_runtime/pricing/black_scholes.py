"""Vectorised option pricing, greeks and implied volatility.

Black–Scholes–Merton (spot, continuous dividend yield q) for equity/index options and Black-76 (forward)
for futures options. `implied_vol` solves for σ element-wise with Newton steps on vega, safeguarded by a
bisection bracket so it always converges where a solution exists; prices outside the no-arbitrage bounds
give NaN. Checked against vollib in the tests."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

Array = NDArray[np.float64]
Model = Literal["bsm", "black76"]

_SQRT_2PI = np.sqrt(2 * np.pi)


def _ncdf(x: Array) -> Array:
    return np.asarray(ndtr(x), dtype=np.float64)


def _npdf(x: Array) -> Array:
    return np.asarray(np.exp(-0.5 * x * x) / _SQRT_2PI, dtype=np.float64)


def _forward(underlying: Array, t: Array, r: Array, q: Array, model: Model) -> Array:
    return underlying if model == "black76" else underlying * np.exp((r - q) * t)


def _d1_d2(forward: Array, k: Array, t: Array, vol: Array) -> tuple[Array, Array]:
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = vol * np.sqrt(t)
        d1 = (np.log(forward / k) + 0.5 * sd * sd) / sd
    return d1, d1 - sd


def price(underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, r: ArrayLike, is_call: ArrayLike,
          q: ArrayLike = 0.0, model: Model = "bsm") -> Array:
    """Option prices (discounted at r; Black-76 discounts the forward payoff as well)."""
    s, k, tt, v, rr, qq = (np.asarray(a, dtype=np.float64) for a in (underlying, strike, t, vol, r, q))
    call = np.asarray(is_call, dtype=bool)
    f = _forward(s, tt, rr, qq, model)
    d1, d2 = _d1_d2(f, k, tt, v)
    df = np.exp(-rr * tt)
    calls = df * (f * _ncdf(d1) - k * _ncdf(d2))
    puts = df * (k * _ncdf(-d2) - f * _ncdf(-d1))
    intrinsic = np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0)) * df
    return np.asarray(np.where((tt <= 0) | (v <= 0), intrinsic, np.where(call, calls, puts)), dtype=np.float64)


def greeks(underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, r: ArrayLike,
           is_call: ArrayLike, q: ArrayLike = 0.0, model: Model = "bsm") -> dict[str, Array]:
    """delta (per unit of the underlying), gamma, vega (per 1.00 of vol), theta (per year)."""
    s, k, tt, v, rr, qq = (np.asarray(a, dtype=np.float64) for a in (underlying, strike, t, vol, r, q))
    call = np.asarray(is_call, dtype=bool)
    f = _forward(s, tt, rr, qq, model)
    d1, d2 = _d1_d2(f, k, tt, v)
    df = np.exp(-rr * tt)
    carry = df if model == "black76" else np.exp(-qq * tt)  # d(forward·discount)/d(underlying)
    delta = np.where(call, carry * _ncdf(d1), carry * (_ncdf(d1) - 1.0))
    gamma = carry * _npdf(d1) / (s * v * np.sqrt(tt))
    vega = carry * s * _npdf(d1) * np.sqrt(tt)
    p = price(s, k, tt, v, rr, call, qq, model)
    if model == "black76":
        theta = -df * f * _npdf(d1) * v / (2 * np.sqrt(tt)) + rr * p
    else:
        theta_call = (-carry * s * _npdf(d1) * v / (2 * np.sqrt(tt)) - rr * k * df * _ncdf(d2)
                      + qq * carry * s * _ncdf(d1))
        theta_put = (-carry * s * _npdf(d1) * v / (2 * np.sqrt(tt)) + rr * k * df * _ncdf(-d2)
                     - qq * carry * s * _ncdf(-d1))
        theta = np.where(call, theta_call, theta_put)
    return {"delta": delta, "gamma": gamma, "vega": vega, "theta": np.asarray(theta, dtype=np.float64)}


def implied_vol(option_price: ArrayLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, r: ArrayLike,
                is_call: ArrayLike, q: ArrayLike = 0.0, model: Model = "bsm", rtol: float = 1e-12,
                max_iter: int = 200) -> Array:
    """σ such that price(σ) = option_price (to a relative `rtol`, or until the σ bracket is below 1e-13),
    element-wise; NaN outside the no-arbitrage bounds."""
    target, s, k, tt, rr, qq = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (option_price, underlying, strike, t, r, q)))
    call = np.broadcast_to(np.asarray(is_call, dtype=bool), target.shape)
    f = _forward(s, tt, rr, qq, model)
    df = np.exp(-rr * tt)
    lower = np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0)) * df
    upper = np.where(call, f, k) * df
    valid = (target > lower) & (target < upper) & (tt > 0)
    lo = np.full(target.shape, 1e-6)
    hi = np.full(target.shape, 10.0)
    vol = np.full(target.shape, 0.3)
    for _ in range(max_iter):
        p = price(s, k, tt, vol, rr, call, qq, model)
        diff = p - target
        lo = np.where(diff < 0, vol, lo)
        hi = np.where(diff > 0, vol, hi)
        vega = greeks(s, k, tt, vol, rr, call, qq, model)["vega"]
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = vol - diff / vega
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        vol = np.where(inside, newton, 0.5 * (lo + hi))
        if np.all(~valid | (np.abs(diff) <= rtol * target) | (hi - lo < 1e-13)):
            break
    return np.asarray(np.where(valid, vol, np.nan), dtype=np.float64)
