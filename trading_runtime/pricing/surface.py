"""Cross-strike analysis of an option chain's implied volatilities, updated per chain sample.

Per expiry, over a rolling window of the last `window` samples:
- correlation of IV changes (or option-price changes) across strikes: Pearson, pairwise-complete (a strike with
  no IV in a sample drops out of that sample's pairs only); the average pairwise correlation, and the strikes
  whose mean correlation with their neighbouring strikes (the nearest quoted either side) falls below
  `dislocation_threshold` — a strike moving on its own while the rest of the chain moves together;
- skew: the least-squares slope of IV against log-moneyness ln(K/F), and its z-score against the slope's own
  rolling history;
- term structure: ATM IV per expiry (interpolated at ln(K/F) = 0); the front-minus-back spread and its z-score
  against its rolling history.

Everything is incremental with fixed memory: the correlation keeps running pairwise sums over a numpy ring
buffer (the sample leaving the window is subtracted, the new one added: O(strikes²) per update), rebuilt exactly
from the buffer once per `window` updates so rounding cannot accumulate; the z-scores keep running sums over
ring buffers the same way. Values are NaN while the windows warm up. No pandas."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]
ChainSample = tuple[ArrayLike, ArrayLike] | tuple[ArrayLike, ArrayLike, ArrayLike]


@dataclass(frozen=True)
class SurfaceFeatures:
    """One update's features. Skew is the front (first) expiry's; the term spread is front minus back (last)
    expiry ATM IV; avg_correlation is the mean over expiries with a warm correlation window; dislocated_strikes
    collects every expiry's dislocated strikes (sorted, unique)."""

    avg_correlation: float
    dislocated_strikes: tuple[float, ...]
    skew_slope: float
    skew_z: float
    term_spread: float
    term_z: float


class RollingStats:
    """Mean and sample standard deviation of the last `capacity` finite values (ring buffer + running sums)."""

    def __init__(self, capacity: int, min_periods: int = 5) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.min_periods = max(2, min_periods)
        self._buf = np.full(capacity, np.nan)
        self._pos = 0
        self._count = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._since_rebuild = 0

    def __len__(self) -> int:
        return self._count

    def push(self, value: float) -> None:
        if not math.isfinite(value):
            return
        old = float(self._buf[self._pos])
        if not math.isnan(old):
            self._sum -= old
            self._sumsq -= old * old
            self._count -= 1
        self._buf[self._pos] = value
        self._pos = (self._pos + 1) % self.capacity
        self._sum += value
        self._sumsq += value * value
        self._count += 1
        self._since_rebuild += 1
        if self._since_rebuild >= self.capacity:
            finite = self._buf[np.isfinite(self._buf)]
            self._sum, self._sumsq = float(finite.sum()), float((finite * finite).sum())
            self._since_rebuild = 0

    def mean_std(self) -> tuple[float, float]:
        if self._count < self.min_periods:
            return math.nan, math.nan
        # Two passes over the (small) window: exact where the running sums would cancel catastrophically.
        finite = self._buf[np.isfinite(self._buf)]
        return float(finite.mean()), float(finite.std(ddof=1))

    def zscore(self, value: float) -> float:
        """z of `value` against the current window (call before pushing it); NaN while warming up, for a
        non-finite value or a window without dispersion."""
        mean, std = self.mean_std()
        if math.isnan(mean) or not math.isfinite(value) or std <= 1e-9 * max(abs(mean), 1e-12):
            return math.nan
        return (value - mean) / std


class RollingCorrelation:
    """Pairwise-complete Pearson correlation of `n` series over the last `capacity` rows."""

    def __init__(self, capacity: int, n: int, min_periods: int = 10) -> None:
        self.capacity = capacity
        self.n = n
        self.min_periods = max(3, min_periods)
        self._buf = np.full((capacity, n), np.nan)
        self._pos = 0
        self._since_rebuild = 0
        self._count = np.zeros((n, n))
        self._sx = np.zeros((n, n))  # [i, j]: Σ x_i over rows where i and j are both present
        self._sxx = np.zeros((n, n))
        self._sxy = np.zeros((n, n))

    def _accumulate(self, row: Array, sign: float) -> None:
        present = np.isfinite(row)
        if not present.any():
            return
        m = present.astype(np.float64)
        x = np.where(present, row, 0.0)
        self._count += sign * np.outer(m, m)
        self._sx += sign * np.outer(x, m)
        self._sxx += sign * np.outer(x * x, m)
        self._sxy += sign * np.outer(x, x)

    def rebuild(self) -> None:
        present = np.isfinite(self._buf)
        m = present.astype(np.float64)
        x = np.where(present, self._buf, 0.0)
        self._count = m.T @ m
        self._sx = x.T @ m
        self._sxx = (x * x).T @ m
        self._sxy = x.T @ x
        self._since_rebuild = 0

    def push(self, row: ArrayLike) -> None:
        values = np.asarray(row, dtype=np.float64)
        if values.shape != (self.n,):
            raise ValueError(f"expected {self.n} values, got shape {values.shape}")
        self._accumulate(self._buf[self._pos], -1.0)
        self._buf[self._pos] = values
        self._accumulate(values, 1.0)
        self._pos = (self._pos + 1) % self.capacity
        self._since_rebuild += 1
        if self._since_rebuild >= self.capacity:
            self.rebuild()

    def realign(self, old_keys: Sequence[float], new_keys: Sequence[float]) -> RollingCorrelation:
        """A copy over `new_keys` keeping the history of keys present in both (new keys start empty)."""
        fresh = RollingCorrelation(self.capacity, len(new_keys), self.min_periods)
        where = {key: i for i, key in enumerate(old_keys)}
        for j, key in enumerate(new_keys):
            i = where.get(key)
            if i is not None:
                fresh._buf[:, j] = self._buf[:, i]
        fresh._pos = self._pos
        fresh.rebuild()
        return fresh

    def matrix(self) -> Array:
        """n×n correlations; NaN where a pair has fewer than `min_periods` joint rows or a series is flat."""
        n = self._count
        cov = n * self._sxy - self._sx * self._sx.T
        var = n * self._sxx - self._sx * self._sx
        scale = n * self._sxx
        with np.errstate(divide="ignore", invalid="ignore"):
            flat = ~(var > 1e-12 * scale) | ~(var.T > 1e-12 * scale.T)
            corr = cov / np.sqrt(var * var.T)
        corr[(n < self.min_periods) | flat] = np.nan
        return np.asarray(np.clip(corr, -1.0, 1.0), dtype=np.float64)


def skew_slope(strikes: ArrayLike, ivs: ArrayLike, forward: float) -> float:
    """Least-squares slope of IV on ln(K/F) over the finite IVs (NaN with fewer than three)."""
    k = np.asarray(strikes, dtype=np.float64)
    v = np.asarray(ivs, dtype=np.float64)
    ok = np.isfinite(v) & np.isfinite(k) & (k > 0)
    if ok.sum() < 3 or not forward > 0:
        return math.nan
    x = np.log(k[ok] / forward)
    y = v[ok]
    dx = x - x.mean()
    sxx = float(dx @ dx)
    return math.nan if sxx <= 0 else float(dx @ (y - y.mean())) / sxx


def atm_iv(strikes: ArrayLike, ivs: ArrayLike, forward: float) -> float:
    """IV at the forward, linear in ln(K/F) between the finite IVs either side (the nearest one outside)."""
    k = np.asarray(strikes, dtype=np.float64)
    v = np.asarray(ivs, dtype=np.float64)
    ok = np.isfinite(v) & np.isfinite(k) & (k > 0)
    if not ok.any() or not forward > 0:
        return math.nan
    x = np.log(k[ok] / forward)
    order = np.argsort(x)
    return float(np.interp(0.0, x[order], v[ok][order]))


@dataclass
class _ExpiryState:
    strikes: tuple[float, ...]
    last: Array
    correlation: RollingCorrelation
    skews: RollingStats
    skew: float = math.nan
    skew_z: float = math.nan
    atm: float = math.nan


class CrossStrikeAnalyzer:
    """Feed it chain samples with `update` (or quote by quote with `on_quote` and `flush`)."""

    def __init__(self, window: int = 100, dislocation_threshold: float = 0.2, min_periods: int = 10,
                 zscore_min_periods: int = 5, changes_of: Literal["iv", "price"] = "iv") -> None:
        if window < 3:
            raise ValueError("window must be at least 3")
        self.window = window
        self.threshold = dislocation_threshold
        self.min_periods = min(min_periods, window)
        self.zscore_min_periods = min(zscore_min_periods, window)
        self.changes_of = changes_of
        self._expiries: dict[str, _ExpiryState] = {}
        self._terms = RollingStats(window, self.zscore_min_periods)
        self._pending: dict[str, dict[float, tuple[float, float]]] = {}

    def on_quote(self, expiry: str, strike: float, iv: float, mid: float = math.nan) -> None:
        """Record the latest IV (and mid) of one strike; `flush` turns the latest quotes into a sample."""
        self._pending.setdefault(expiry, {})[float(strike)] = (float(iv), float(mid))

    def flush(self, forward: float | Mapping[str, float]) -> SurfaceFeatures:
        """One sample from the latest quote of every strike seen (expiries in the order first quoted)."""
        chain: dict[str, ChainSample] = {}
        for expiry, quotes in self._pending.items():
            strikes = sorted(quotes)
            chain[expiry] = (np.array(strikes), np.array([quotes[k][0] for k in strikes]),
                             np.array([quotes[k][1] for k in strikes]))
        return self.update(forward, chain)

    def skew(self, expiry: str) -> tuple[float, float]:
        """(slope, z-score) of one expiry's skew at the last update."""
        state = self._expiries.get(expiry)
        return (state.skew, state.skew_z) if state else (math.nan, math.nan)

    def atm_ivs(self) -> dict[str, float]:
        return {expiry: state.atm for expiry, state in self._expiries.items()}

    def correlation(self, expiry: str) -> tuple[tuple[float, ...], Array]:
        """The strikes and the current correlation matrix of one expiry."""
        state = self._expiries[expiry]
        return state.strikes, state.correlation.matrix()

    def update(self, forward: float | Mapping[str, float], chain: Mapping[str, ChainSample]) -> SurfaceFeatures:
        """`chain`: expiry → (strikes, IVs) or (strikes, IVs, mids), expiries in time order (front first).
        `forward`: one forward for every expiry, or a forward per expiry. NaN IVs are missing quotes."""
        correlations: list[float] = []
        dislocated: set[float] = set()
        atms: list[float] = []
        front: _ExpiryState | None = None
        for expiry, sample in chain.items():
            fwd = float(forward[expiry]) if isinstance(forward, Mapping) else float(forward)
            strikes = np.asarray(sample[0], dtype=np.float64)
            ivs = np.asarray(sample[1], dtype=np.float64)
            if self.changes_of == "price":
                if len(sample) < 3:
                    raise ValueError("changes_of='price' needs (strikes, IVs, mids) samples")
                series = np.asarray(sample[2], dtype=np.float64)
            else:
                series = ivs
            order = np.argsort(strikes, kind="stable")
            strikes, ivs, series = strikes[order], ivs[order], series[order]
            state = self._state(expiry, strikes)
            with np.errstate(invalid="ignore"):
                change = series - state.last
            state.last = series.copy()
            state.correlation.push(change)

            slope = skew_slope(strikes, ivs, fwd)
            state.skew, state.skew_z = slope, state.skews.zscore(slope)
            state.skews.push(slope)
            state.atm = atm_iv(strikes, ivs, fwd)
            atms.append(state.atm)
            if front is None:
                front = state

            avg, odd = self._dislocations(state)
            if not math.isnan(avg):
                correlations.append(avg)
                dislocated.update(odd)

        term = atms[0] - atms[-1] if len(atms) > 1 else math.nan
        term_z = self._terms.zscore(term)
        self._terms.push(term)
        return SurfaceFeatures(
            avg_correlation=float(np.mean(correlations)) if correlations else math.nan,
            dislocated_strikes=tuple(sorted(dislocated)),
            skew_slope=front.skew if front else math.nan,
            skew_z=front.skew_z if front else math.nan,
            term_spread=term,
            term_z=term_z,
        )

    def _state(self, expiry: str, strikes: Array) -> _ExpiryState:
        keys = tuple(float(k) for k in strikes)
        state = self._expiries.get(expiry)
        if state is None:
            state = _ExpiryState(keys, np.full(len(keys), np.nan),
                                 RollingCorrelation(self.window, len(keys), self.min_periods),
                                 RollingStats(self.window, self.zscore_min_periods))
            self._expiries[expiry] = state
        elif state.strikes != keys:  # strikes listed or delisted: keep the history of the ones that remain
            where = {k: i for i, k in enumerate(state.strikes)}
            state.last = np.array([state.last[where[k]] if k in where else np.nan for k in keys])
            state.correlation = state.correlation.realign(state.strikes, keys)
            state.strikes = keys
        return state

    def _dislocations(self, state: _ExpiryState) -> tuple[float, list[float]]:
        corr = state.correlation.matrix()
        n = corr.shape[0]
        if n < 2:
            return math.nan, []
        upper = corr[np.triu_indices(n, k=1)]
        finite = upper[np.isfinite(upper)]
        if finite.size == 0:
            return math.nan, []
        odd: list[float] = []
        for i in range(n):
            neighbours = [float(corr[i, j]) for j in (_nearest(corr[i], i, -1), _nearest(corr[i], i, 1)) if j >= 0]
            if neighbours and sum(neighbours) / len(neighbours) < self.threshold:
                odd.append(state.strikes[i])
        return float(finite.mean()), odd


def _nearest(row: Array, i: int, direction: int) -> int:
    """The nearest strike on one side of strike i with a defined correlation to it, or -1."""
    j = i + direction
    while 0 <= j < row.size:
        if math.isfinite(float(row[j])):
            return j
        j += direction
    return -1
