"""Vectorised option pricing, greeks and implied volatility.

Black–Scholes–Merton (spot, continuous dividend yield q) for equity/index options and Black-76 (forward,
discounted at r) for futures options. Every function takes scalars or numpy arrays that broadcast together.

`implied_vol` is a vectorised solver of our own. Per option it works on the out-of-the-money side (the
in-the-money price is moved across by put–call parity, which avoids the cancellation of deep ITM prices), in
Black's normalised form b(s) = e^{x/2}·N(x/s + s/2) − e^{−x/2}·N(x/s − s/2) with x = −|ln(F/K)| ≤ 0 and total
volatility s = σ·√t. b is convex below its inflection point s_c = √(2|x|) and concave above it, so the inflection
point splits the problem into two branches, each with a known bracket:
- lower branch (target below b(s_c)): Halley iterations on ln b(s) − ln target, bracket [0, s_c];
- upper branch: Halley iterations on b(s) − target, bracket [s_c, S_MAX].
A step that leaves the current bracket is replaced by bisection, so the solver converges wherever a solution
exists. Iteration stops once the price error is within `tol` (in price units) and `rtol` relative to the
out-of-the-money price — one more step is then taken
(convergence is cubic, so that step buys several digits) — or once the bracket has collapsed. Elements are
dropped from the working set as they converge. Prices at or below intrinsic value, at or above the upper bound
(the discounted forward for calls, the discounted strike for puts), non-finite inputs and t ≤ 0 give NaN.
Checked against vollib (LetsBeRational) in the tests."""

from __future__ import annotations

from typing import Literal, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Model = Literal["bsm", "black76"]

_SQRT_2PI = float(np.sqrt(2 * np.pi))
S_MAX = 40.0  # largest total volatility σ·√t searched (σ = 40 at one year, 150 at one week)


class GreekArrays(TypedDict):
    """delta per unit of the underlying (spot for BSM, the future for Black-76), gamma per unit², vega per
    1.00 of volatility, theta per year of calendar time (the value change as time passes: usually negative)."""

    delta: Array
    gamma: Array
    vega: Array
    theta: Array


def _ncdf(x: Array) -> Array:
    return np.asarray(ndtr(x), dtype=np.float64)


def _npdf(x: Array) -> Array:
    return np.asarray(np.exp(-0.5 * x * x) / _SQRT_2PI, dtype=np.float64)


def _as_arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def forward_price(underlying: ArrayLike, t: ArrayLike, r: ArrayLike, q: ArrayLike = 0.0,
                  model: Model = "bsm") -> Array:
    """The forward of the underlying to time t: S·e^{(r−q)t} for BSM; the futures price itself for Black-76."""
    s, tt, rr, qq = _as_arrays(underlying, t, r, q)
    if model == "black76":
        return np.asarray(s + 0.0 * (tt + rr + qq), dtype=np.float64)
    return np.asarray(s * np.exp((rr - qq) * tt), dtype=np.float64)


def _d1_d2(forward: Array, k: Array, t: Array, vol: Array) -> tuple[Array, Array]:
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = vol * np.sqrt(t)
        d1 = (np.log(forward / k) + 0.5 * sd * sd) / sd
    return d1, d1 - sd


def price(underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, r: ArrayLike, is_call: ArrayLike,
          q: ArrayLike = 0.0, model: Model = "bsm") -> Array:
    """Option prices: BSM on the spot with dividend yield q, or Black-76 on the future (discounted at r).
    At t ≤ 0 or vol ≤ 0 the price is the discounted intrinsic value of the forward."""
    s, k, tt, v, rr, qq = _as_arrays(underlying, strike, t, vol, r, q)
    call = np.asarray(is_call, dtype=bool)
    f = forward_price(s, tt, rr, qq, model)
    d1, d2 = _d1_d2(f, k, tt, v)
    df = np.exp(-rr * tt)
    calls = df * (f * _ncdf(d1) - k * _ncdf(d2))
    puts = df * (k * _ncdf(-d2) - f * _ncdf(-d1))
    intrinsic = np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0)) * df
    return np.asarray(np.where((tt <= 0) | (v <= 0), intrinsic, np.where(call, calls, puts)), dtype=np.float64)


def greeks(underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, r: ArrayLike,
           is_call: ArrayLike, q: ArrayLike = 0.0, model: Model = "bsm") -> GreekArrays:
    """Analytic delta, gamma, vega (per 1.00 vol) and theta (per year). At t ≤ 0 or vol ≤ 0: delta is the
    intrinsic step, gamma, vega and theta are 0."""
    s, k, tt, v, rr, qq = _as_arrays(underlying, strike, t, vol, r, q)
    call = np.asarray(is_call, dtype=bool)
    f = forward_price(s, tt, rr, qq, model)
    d1, d2 = _d1_d2(f, k, tt, v)
    df = np.exp(-rr * tt)
    carry = df if model == "black76" else np.exp(-qq * tt)  # d(discounted forward)/d(underlying)
    live = (tt > 0) & (v > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        root_t = np.sqrt(tt)
        pdf = _npdf(d1)
        delta = np.where(call, carry * _ncdf(d1), carry * (_ncdf(d1) - 1.0))
        gamma = carry * pdf / (s * v * root_t)
        vega = carry * s * pdf * root_t
        decay = -carry * s * pdf * v / (2 * root_t)
        if model == "black76":
            theta = decay + rr * price(s, k, tt, v, rr, call, qq, model)
        else:
            theta_call = decay - rr * k * df * _ncdf(d2) + qq * carry * s * _ncdf(d1)
            theta_put = decay + rr * k * df * _ncdf(-d2) - qq * carry * s * _ncdf(-d1)
            theta = np.where(call, theta_call, theta_put)
    expired_delta = carry * np.where(call, (f > k).astype(np.float64), -(f < k).astype(np.float64))
    zero = np.zeros_like(gamma)
    return GreekArrays(
        delta=np.asarray(np.where(live, delta, expired_delta), dtype=np.float64),
        gamma=np.asarray(np.where(live, gamma, zero), dtype=np.float64),
        vega=np.asarray(np.where(live, vega, zero), dtype=np.float64),
        theta=np.asarray(np.where(live, theta, zero), dtype=np.float64),
    )


def _normalised_otm(x: Array, s: Array) -> tuple[Array, Array, Array]:
    """b(s), db/ds and d²b/ds² of the normalised out-of-the-money price, x ≤ 0, s > 0."""
    h = x / s
    half = 0.5 * s
    b = np.exp(0.5 * x) * _ncdf(h + half) - np.exp(-0.5 * x) * _ncdf(h - half)
    vega = np.exp(-0.5 * h * h - 0.125 * s * s) / _SQRT_2PI
    volga = vega * (x * x / (s * s * s) - 0.25 * s)
    return b, vega, volga


def _halley_step(f: Array, f1: Array, f2: Array) -> Array:
    newton = f / f1
    denominator = 1.0 - 0.5 * newton * f2 / f1
    # Fall back to Newton when the Halley correction is large (far from the root).
    return np.asarray(np.where(np.abs(denominator - 1.0) < 0.5, newton / denominator, newton), dtype=np.float64)


def implied_vol(option_price: ArrayLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, r: ArrayLike,
                is_call: ArrayLike, q: ArrayLike = 0.0, model: Model = "bsm", tol: float = 1e-8,
                rtol: float = 1e-12, max_iter: int = 64) -> Array:
    """σ such that price(σ) = option_price within `tol` (price units) and within `rtol` relative to the
    out-of-the-money price (so far-from-the-money options whose whole value is below `tol` still get their own
    volatility rather than any that prices below `tol`), element-wise; NaN where no volatility
    produces the price (outside the no-arbitrage bounds, t ≤ 0, non-finite inputs). `underlying` is the spot
    for "bsm" and the futures price for "black76"."""
    target, s, k, tt, rr, qq = np.broadcast_arrays(*_as_arrays(option_price, underlying, strike, t, r, q))
    call = np.broadcast_to(np.asarray(is_call, dtype=bool), target.shape)
    shape = target.shape
    target, s, k, tt, rr, qq, call = (np.ravel(a) for a in (target, s, k, tt, rr, qq, call))
    out = np.full(target.shape, np.nan)

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        f = forward_price(s, tt, rr, qq, model)
        df = np.exp(-rr * tt)
        undiscounted = target / df
        intrinsic = np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))
        upper = np.where(call, f, k)
        valid = ((undiscounted > intrinsic) & (undiscounted < upper) & (tt > 0) & (f > 0) & (k > 0)
                 & np.isfinite(undiscounted) & np.isfinite(f) & np.isfinite(k))
        idx = np.flatnonzero(valid)
        if idx.size == 0:
            return out.reshape(shape)
        fv, kv, tv = f[idx], k[idx], tt[idx]
        root_fk = np.sqrt(fv * kv)
        x = -np.abs(np.log(fv / kv))
        # The out-of-the-money option's price, normalised by √(FK); ITM prices are moved across by parity.
        otm = undiscounted[idx] - intrinsic[idx]
        beta = otm / root_fk
        price_scale = df[idx] * root_fk  # one unit of b in price units
        tol_b = tol / price_scale

        s_c = np.sqrt(-2.0 * x)
        b_c = _normalised_otm(x, np.maximum(s_c, 1e-300))[0]
        b_c = np.where(s_c > 0, b_c, 0.0)
        lower_branch = beta < b_c
        lo = np.where(lower_branch, 0.0, s_c)
        hi = np.where(lower_branch, s_c, S_MAX)
        # Initial guesses: in the lower branch from the tail asymptote ln b ≈ −x²/(2s²); in the upper branch
        # from the at-the-money formula b = 2N(s/2) − 1 applied to the price above the inflection value.
        tail_guess = -x / np.sqrt(np.maximum(-2.0 * np.log(beta), 1e-300))
        atm_guess = s_c + 2.0 * np.asarray(ndtri(np.clip(0.5 * (1.0 + (beta - b_c) * np.exp(-0.5 * x)), 0.5,
                                                         1.0 - 1e-16)), dtype=np.float64)
        vol_s = np.where(lower_branch, np.clip(tail_guess, 0.5 * s_c, s_c), np.minimum(atm_guess, S_MAX))
        vol_s = np.where((vol_s > lo) & (vol_s < hi), vol_s, 0.5 * (lo + hi))

        active = np.arange(idx.size)
        for _ in range(max_iter):
            xa, sa, ba = x[active], vol_s[active], beta[active]
            b, vega, volga = _normalised_otm(xa, sa)
            err = b - ba
            below = err < 0
            lo[active] = np.where(below, sa, lo[active])
            hi[active] = np.where(below, hi[active], sa)
            low = lower_branch[active]
            # Lower branch: g = ln b − ln β, g' = vega/b, g'' = (volga·b − vega²)/b².
            safe_b = np.where(b > 0, b, 1.0)
            g = np.log(np.where(b > 0, b, 1e-300)) - np.log(ba)
            g1 = vega / safe_b
            g2 = (volga * safe_b - vega * vega) / (safe_b * safe_b)
            step = np.where(low, _halley_step(g, g1, g2), _halley_step(err, vega, volga))
            proposal = sa - step
            la, ha = lo[active], hi[active]
            inside = np.isfinite(proposal) & (proposal > la) & (proposal < ha)
            converged = np.abs(err) <= np.minimum(tol_b[active], rtol * ba)
            collapsed = (ha - la) <= 4e-16 * np.maximum(ha, 1e-3)
            # A converged element takes the step just computed as its last one (convergence is cubic).
            vol_s[active] = np.where(inside, proposal, np.where(converged, sa, 0.5 * (la + ha)))
            done = converged | collapsed
            active = active[~done]
            if active.size == 0:
                break
        out[idx] = vol_s / np.sqrt(tv)
    return out.reshape(shape)


def implied_vol_black76(option_price: ArrayLike, futures: ArrayLike, strike: ArrayLike, t: ArrayLike, r: ArrayLike,
                        is_call: ArrayLike, tol: float = 1e-8) -> Array:
    """Shorthand for `implied_vol(..., model="black76")`."""
    return implied_vol(option_price, futures, strike, t, r, is_call, model="black76", tol=tol)
