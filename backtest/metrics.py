"""Performance of a run from its equity curve, ledger and signal accuracy — with the statistics needed to
read it honestly: a Sharpe ratio with its confidence interval, the hit rate with its Wilson interval next
to the baselines on the same points, and a verdict that says Inconclusive when the sample is too small.

Definitions:
- returns are those of the equity sampled every `sample_s` of exchange time (and at the end); the Sharpe
  and Sortino ratios are annualised with the sampling density seen in the data (samples per session ×
  252 sessions a year); the Sharpe interval is Lo's (2002) i.i.d. approximation, SE = √((1 + SR²/2)/n);
- max drawdown is the largest fall of the sampled equity from its running peak, as a fraction of the peak;
- turnover is the premium traded (|quantity| × price × multiplier, both sides) over the starting capital;
- the hit rate is the engine's (trading_runtime/signals/accuracy.py): directional calls over the strategy
  horizon on moves larger than the spread; the verdict compares its 95 % interval with the persistence
  baseline's hit rate on the same called points.
Ratios with no data (no return variance, no calls) are None: "no data", never 0."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from backtest.broker import LedgerEntry
from trading_runtime.signals.accuracy import Z95, AccuracyReport, wilson_interval

SESSIONS_PER_YEAR = 252
MIN_RETURNS = 30
MIN_CALLS = 30
Verdict = Literal["edge", "worse-than-baseline", "no-significant-edge", "inconclusive"]


class Performance(BaseModel):
    model_config = ConfigDict(frozen=True)

    pnl: float
    return_pct: float
    sharpe: float | None
    sharpe_ci: tuple[float, float] | None
    sortino: float | None
    returns: int
    """Number of sampled returns behind the ratios."""
    max_drawdown: float
    turnover: float
    fills: int
    fees: float
    scored: int
    calls: int
    hits: int
    hit_rate: float | None
    hit_rate_ci: tuple[float, float] | None
    coverage: float | None
    persistence_hits: int
    baseline_hit_rate: float | None
    """The persistence baseline on the same called points."""
    majority_hits: int
    majority_hit_rate: float | None
    unscored_breaks: int
    verdict: Verdict
    reason: str


def _ratio(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def sharpe_sortino(returns: np.ndarray, periods_per_year: float) -> tuple[float | None, tuple[float, float] | None,
                                                                          float | None]:
    """Annualised Sharpe (with its 95 % interval) and Sortino of per-period returns; None without enough
    returns or without variance."""
    n = len(returns)
    if n < MIN_RETURNS:
        return None, None, None
    std = float(returns.std(ddof=1))
    mean = float(returns.mean())
    scale = math.sqrt(periods_per_year)
    if std == 0:
        return None, None, None
    sr = mean / std
    se = math.sqrt((1 + sr * sr / 2) / n)
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    sortino = mean / downside * scale if downside > 0 else None
    return sr * scale, ((sr - Z95 * se) * scale, (sr + Z95 * se) * scale), sortino


def max_drawdown(equity: np.ndarray) -> float:
    if not len(equity):
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max((peaks - equity) / peaks))


def verdict(calls: int, hits: int, baseline_hits: int) -> tuple[Verdict, str]:
    """The hit rate's interval against the persistence baseline on the same called points."""
    if calls < MIN_CALLS:
        return "inconclusive", f"{calls} scored calls (fewer than {MIN_CALLS})"
    low, high = wilson_interval(hits, calls)
    baseline = baseline_hits / calls
    span = f"hit rate {hits / calls:.3f} [{low:.3f}, {high:.3f}] vs persistence {baseline:.3f} on {calls} calls"
    if low > baseline:
        return "edge", span
    if high < baseline:
        return "worse-than-baseline", span
    return "no-significant-edge", span


def chained(curves: Sequence[Sequence[tuple[float, float]]], capital: float) -> list[tuple[float, float]]:
    """Several runs' equity curves (each from `capital`) as one: each next run compounds on where the
    previous one ended."""
    out: list[tuple[float, float]] = []
    scale = 1.0
    for curve in curves:
        out.extend((ts, equity * scale) for ts, equity in curve)
        if curve:
            scale *= curve[-1][1] / capital
    return out


def performance(curves: Sequence[Sequence[tuple[float, float]]], capital: float, ledger: Sequence[LedgerEntry],
                accuracy: AccuracyReport, sessions: int) -> Performance:
    """Everything above from one run's equity curve, or from several (walk-forward test folds: returns
    within each, P&L summed, drawdown on the chained curve); curves are (ts, equity) samples in time order."""
    returns = np.concatenate([np.array([0.0])[:0]] + [
        values[1:] / values[:-1] - 1 for values in (np.array([e for _, e in c], dtype=float) for c in curves)
        if len(values) > 1])
    periods_per_year = SESSIONS_PER_YEAR * max(len(returns), 1) / max(sessions, 1)
    sharpe, sharpe_ci, sortino = sharpe_sortino(returns, periods_per_year)
    values = np.array([e for _, e in chained(curves, capital)], dtype=float)
    final = capital + math.fsum(c[-1][1] - capital for c in curves if c)
    traded = math.fsum(abs(f.quantity) * f.price * f.multiplier for f in ledger)
    calls, hits = accuracy.calls, accuracy.hits
    label, reason = verdict(calls, hits, accuracy.persistence_hits)
    return Performance(
        pnl=final - capital, return_pct=(final / capital - 1) * 100, sharpe=sharpe, sharpe_ci=sharpe_ci,
        sortino=sortino, returns=len(returns), max_drawdown=max_drawdown(values), turnover=traded / capital,
        fills=len(ledger), fees=math.fsum(f.fee for f in ledger), scored=accuracy.scored, calls=calls, hits=hits,
        hit_rate=_ratio(accuracy.hit_rate), hit_rate_ci=accuracy.hit_rate_ci if calls else None,
        coverage=_ratio(accuracy.coverage), persistence_hits=accuracy.persistence_hits,
        baseline_hit_rate=_ratio(accuracy.persistence_hit_rate), majority_hits=accuracy.majority_hits,
        majority_hit_rate=_ratio(accuracy.majority_hit_rate),
        unscored_breaks=accuracy.unscored_breaks, verdict=label, reason=reason)
