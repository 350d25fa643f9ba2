"""Cross-strike analysis of an option chain's implied volatilities, updated per chain sample.

Per expiry, over a rolling window of the last `window` samples:
- correlation of IV changes across strikes (Pearson, pairwise); the average pairwise correlation, and the
  strikes whose mean correlation with their neighbouring strikes falls below `dislocation_threshold` —
  a strike moving on its own while the rest of the chain moves together;
- skew: the least-squares slope of IV against log-moneyness ln(K/F), and its z-score against the slope's
  own rolling history;
- term structure: ATM IV (the strike nearest the forward) per expiry; the front-minus-back spread and its
  z-score against its rolling history.
Memory is bounded by the window; nothing is refitted over unbounded history. Values are NaN while the
windows warm up."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SurfaceFeatures:
    avg_correlation: float
    dislocated_strikes: tuple[float, ...]
    skew_slope: float
    skew_z: float
    term_spread: float
    term_z: float


def _zscore(history: collections.deque[float], value: float) -> float:
    if len(history) < 5 or math.isnan(value):
        return math.nan
    values = np.array(history)
    std = float(values.std(ddof=1))
    return math.nan if std == 0 else (value - float(values.mean())) / std


def skew_slope(strikes: np.ndarray, ivs: np.ndarray, forward: float) -> float:
    """Least-squares slope of IV on ln(K/F)."""
    ok = np.isfinite(ivs)
    if ok.sum() < 3:
        return math.nan
    x = np.log(strikes[ok] / forward)
    return float(np.polyfit(x, ivs[ok], 1)[0])


class CrossStrikeAnalyzer:
    def __init__(self, window: int = 100, dislocation_threshold: float = 0.2) -> None:
        self.window = window
        self.threshold = dislocation_threshold
        self._last: dict[str, np.ndarray] = {}
        self._changes: dict[str, collections.deque[np.ndarray]] = {}
        self._strikes: dict[str, np.ndarray] = {}
        self._skews: collections.deque[float] = collections.deque(maxlen=window)
        self._terms: collections.deque[float] = collections.deque(maxlen=window)

    def update(self, forward: float, chain: dict[str, tuple[np.ndarray, np.ndarray]]) -> SurfaceFeatures:
        """`chain`: expiry → (strikes, IVs), expiries in time order, strikes in the same order each sample."""
        atm: list[float] = []
        correlations: list[float] = []
        dislocated: list[float] = []
        front_skew = math.nan
        for index, (expiry, (strikes, ivs)) in enumerate(chain.items()):
            strikes, ivs = np.asarray(strikes, dtype=float), np.asarray(ivs, dtype=float)
            if expiry in self._strikes and not np.array_equal(self._strikes[expiry], strikes):
                self._changes.pop(expiry, None)  # the strike set moved: start this expiry's window again
                self._last.pop(expiry, None)
            self._strikes[expiry] = strikes
            if expiry in self._last:
                self._changes.setdefault(expiry, collections.deque(maxlen=self.window)).append(
                    ivs - self._last[expiry])
            self._last[expiry] = ivs
            nearest = int(np.argmin(np.abs(strikes - forward)))
            atm.append(float(ivs[nearest]))
            if index == 0:
                front_skew = skew_slope(strikes, ivs, forward)
            avg, odd = self._correlation(expiry)
            if not math.isnan(avg):
                correlations.append(avg)
                dislocated.extend(odd)
        skew_z = _zscore(self._skews, front_skew)
        if not math.isnan(front_skew):
            self._skews.append(front_skew)
        term = atm[0] - atm[-1] if len(atm) > 1 else math.nan
        term_z = _zscore(self._terms, term)
        if not math.isnan(term):
            self._terms.append(term)
        return SurfaceFeatures(
            avg_correlation=float(np.mean(correlations)) if correlations else math.nan,
            dislocated_strikes=tuple(sorted(dislocated)),
            skew_slope=front_skew, skew_z=skew_z, term_spread=term, term_z=term_z,
        )

    def _correlation(self, expiry: str) -> tuple[float, list[float]]:
        changes = self._changes.get(expiry)
        if changes is None or len(changes) < 10:
            return math.nan, []
        matrix = np.array(changes)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(matrix, rowvar=False)
        n = corr.shape[0]
        upper = corr[np.triu_indices(n, k=1)]
        avg = float(np.nanmean(upper)) if np.isfinite(upper).any() else math.nan
        strikes = self._strikes[expiry]
        odd = []
        for i in range(n):
            neighbours = [corr[i, j] for j in (i - 1, i + 1) if 0 <= j < n and np.isfinite(corr[i, j])]
            if neighbours and float(np.mean(neighbours)) < self.threshold:
                odd.append(float(strikes[i]))
        return avg, odd
