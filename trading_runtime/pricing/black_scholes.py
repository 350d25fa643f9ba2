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
Checked against vollib (LetsBeRational) in the tests. `implied_vol_one`, `greeks_one` and `price_one` are the
same functions on one option's floats (the tick path's contract; see the section at the end)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypedDict, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Model = Literal["bsm", "black76"]
F = TypeVar("F", float, Array)

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


def _np_exp(x: Array) -> Array:
    return np.asarray(np.exp(x), dtype=np.float64)


def _normalised_otm(x: F, s: F, exp: Callable[[F], F], ncdf: Callable[[F], F]) -> tuple[F, F, F]:
    """b(s), db/ds and d²b/ds² of the normalised out-of-the-money price, x ≤ 0, s > 0 — on arrays (with
    `_np_exp`, `_ncdf`) or floats (`math.exp`, `_ncdf_float`): the one formula both solvers use."""
    h = x / s
    half = 0.5 * s
    b = exp(0.5 * x) * ncdf(h + half) - exp(-0.5 * x) * ncdf(h - half)
    vega = exp(-0.5 * h * h - 0.125 * s * s) / _SQRT_2PI
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
        b_c = _normalised_otm(x, np.maximum(s_c, 1e-300), _np_exp, _ncdf)[0]
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
            b, vega, volga = _normalised_otm(xa, sa, _np_exp, _ncdf)
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


# One option on floats ---------------------------------------------------------------------------------------
# The tick path prices one contract at a time, where numpy's per-call overhead on one-element arrays is most
# of the cost (about 260 µs for the solve and the greeks against 15–25 µs here). These are the functions above,
# step for step, on Python floats; tests/unit/test_black_scholes_scalar.py holds them to the vectorised ones
# within 1e-10 over a grid. Where a float operation would raise (an overflow or a division by zero that numpy
# turns into inf/NaN), the vectorised function answers instead.

def _ncdf_float(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _halley_step_float(f: float, f1: float, f2: float) -> float:
    newton = f / f1
    denominator = 1.0 - 0.5 * newton * f2 / f1
    return newton / denominator if abs(denominator - 1.0) < 0.5 else newton


def _forward_float(underlying: float, t: float, r: float, q: float, model: Model) -> float:
    return underlying if model == "black76" else underlying * math.exp((r - q) * t)


def price_one(underlying: float, strike: float, t: float, vol: float, r: float, is_call: bool, q: float = 0.0,
              model: Model = "bsm") -> float:
    """`price` of one option, on floats."""
    try:
        f = _forward_float(underlying, t, r, q, model)
        df = math.exp(-r * t)
        if t <= 0 or vol <= 0:
            return (max(f - strike, 0.0) if is_call else max(strike - f, 0.0)) * df
        sd = vol * math.sqrt(t)
        d1 = (math.log(f / strike) + 0.5 * sd * sd) / sd
        d2 = d1 - sd
        if is_call:
            return df * (f * _ncdf_float(d1) - strike * _ncdf_float(d2))
        return df * (strike * _ncdf_float(-d2) - f * _ncdf_float(-d1))
    except (ArithmeticError, ValueError):
        return float(price(underlying, strike, t, vol, r, is_call, q, model))


def greeks_one(underlying: float, strike: float, t: float, vol: float, r: float, is_call: bool, q: float = 0.0,
               model: Model = "bsm") -> tuple[float, float, float, float]:
    """`greeks` of one option, on floats: (delta, gamma, vega, theta)."""
    try:
        s, k = underlying, strike
        f = _forward_float(s, t, r, q, model)
        df = math.exp(-r * t)
        carry = df if model == "black76" else math.exp(-q * t)
        if not (t > 0 and vol > 0):
            return carry * (float(f > k) if is_call else -float(f < k)), 0.0, 0.0, 0.0
        root_t = math.sqrt(t)
        sd = vol * root_t
        d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
        d2 = d1 - sd
        pdf = math.exp(-0.5 * d1 * d1) / _SQRT_2PI
        delta = carry * _ncdf_float(d1) if is_call else carry * (_ncdf_float(d1) - 1.0)
        gamma = carry * pdf / (s * vol * root_t)
        vega = carry * s * pdf * root_t
        decay = -carry * s * pdf * vol / (2 * root_t)
        if model == "black76":
            theta = decay + r * price_one(s, k, t, vol, r, is_call, q, model)
        elif is_call:
            theta = decay - r * k * df * _ncdf_float(d2) + q * carry * s * _ncdf_float(d1)
        else:
            theta = decay + r * k * df * _ncdf_float(-d2) - q * carry * s * _ncdf_float(-d1)
        return delta, gamma, vega, theta
    except (ArithmeticError, ValueError):
        g = greeks(underlying, strike, t, vol, r, is_call, q, model)
        return float(g["delta"]), float(g["gamma"]), float(g["vega"]), float(g["theta"])


def implied_vol_one(option_price: float, underlying: float, strike: float, t: float, r: float, is_call: bool,
                    q: float = 0.0, model: Model = "bsm", tol: float = 1e-8, rtol: float = 1e-12,
                    max_iter: int = 64) -> float:
    """`implied_vol` of one option, on floats (NaN where it gives NaN)."""
    try:
        return _implied_vol_one(option_price, underlying, strike, t, r, is_call, q, model, tol, rtol, max_iter)
    except (ArithmeticError, ValueError):
        return float(implied_vol(option_price, underlying, strike, t, r, is_call, q, model, tol, rtol, max_iter))


def _implied_vol_one(target: float, s: float, k: float, t: float, r: float, call: bool, q: float, model: Model,
                     tol: float, rtol: float, max_iter: int) -> float:
    f = _forward_float(s, t, r, q, model)
    df = math.exp(-r * t)
    undiscounted = target / df
    intrinsic = max(f - k, 0.0) if call else max(k - f, 0.0)
    upper = f if call else k
    if not (undiscounted > intrinsic and undiscounted < upper and t > 0 and f > 0 and k > 0
            and math.isfinite(undiscounted) and math.isfinite(f) and math.isfinite(k)):
        return math.nan
    root_fk = math.sqrt(f * k)
    x = -abs(math.log(f / k))
    beta = (undiscounted - intrinsic) / root_fk
    tol_b = tol / (df * root_fk)
    s_c = math.sqrt(-2.0 * x)
    b_c = _normalised_otm(x, max(s_c, 1e-300), math.exp, _ncdf_float)[0] if s_c > 0 else 0.0
    lower_branch = beta < b_c
    lo, hi = (0.0, s_c) if lower_branch else (s_c, S_MAX)
    if lower_branch:
        tail_guess = -x / math.sqrt(max(-2.0 * math.log(beta), 1e-300))
        vol_s = min(max(tail_guess, 0.5 * s_c), s_c)
    else:
        p = min(max(0.5 * (1.0 + (beta - b_c) * math.exp(-0.5 * x)), 0.5), 1.0 - 1e-16)
        vol_s = min(s_c + 2.0 * float(ndtri(p)), S_MAX)
    if not lo < vol_s < hi:
        vol_s = 0.5 * (lo + hi)
    for _ in range(max_iter):
        b, vega, volga = _normalised_otm(x, vol_s, math.exp, _ncdf_float)
        err = b - beta
        if err < 0:
            lo = vol_s
        else:
            hi = vol_s
        if lower_branch:  # g = ln b − ln β, as in `implied_vol`
            safe_b = b if b > 0 else 1.0
            g = math.log(b if b > 0 else 1e-300) - math.log(beta)
            step = _halley_step_float(g, vega / safe_b, (volga * safe_b - vega * vega) / (safe_b * safe_b))
        else:
            step = _halley_step_float(err, vega, volga)
        proposal = vol_s - step
        converged = abs(err) <= min(tol_b, rtol * beta)
        collapsed = (hi - lo) <= 4e-16 * max(hi, 1e-3)
        if math.isfinite(proposal) and lo < proposal < hi:
            vol_s = proposal
        elif not converged:
            vol_s = 0.5 * (lo + hi)
        if converged or collapsed:
            break
    return vol_s / math.sqrt(t)
