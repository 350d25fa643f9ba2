"""Portfolio-level risk across symbols (their exposures come from the shared position book).

- exposure: gross Σ|notional|, net Σ notional, and summed greeks (delta, gamma, vega);
- historical VaR/CVaR at level α: the loss quantile of observed P&L, and the mean loss beyond it;
- parametric (variance–covariance) VaR/CVaR: normal P&L with σ² = wᵀΣw for exposures w and the
  covariance Σ of symbol returns: VaR = z_α·σ, CVaR = σ·φ(z_α)/(1−α). Losses are reported as positive."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm


@dataclass(frozen=True)
class Exposure:
    gross: float
    net: float
    delta: float
    gamma: float
    vega: float


def portfolio_exposure(book: dict[str, dict[str, float]]) -> Exposure:
    def total(key: str) -> float:
        return float(sum(p.get(key, 0.0) for p in book.values()))

    return Exposure(gross=float(sum(abs(p.get("notional", 0.0)) for p in book.values())), net=total("notional"),
                    delta=total("delta"), gamma=total("gamma"), vega=total("vega"))


def historical_var_cvar(pnl: ArrayLike, alpha: float = 0.99) -> tuple[float, float]:
    losses = -np.asarray(pnl, dtype=float)
    if losses.size == 0:
        return math.nan, math.nan
    var = float(np.quantile(losses, alpha))
    tail = losses[losses >= var]
    return var, float(tail.mean())


def parametric_var_cvar(exposures: ArrayLike, covariance: ArrayLike, alpha: float = 0.99) -> tuple[float, float]:
    w = np.asarray(exposures, dtype=float)
    sigma = float(np.sqrt(w @ np.asarray(covariance, dtype=float) @ w))
    z = float(norm.ppf(alpha))
    return z * sigma, sigma * float(norm.pdf(z)) / (1 - alpha)


@dataclass(frozen=True)
class PortfolioRisk:
    exposure: Exposure
    historical_var: float
    historical_cvar: float
    parametric_var: float
    parametric_cvar: float
    correlations: dict[tuple[str, str], float]


def portfolio_risk(book: dict[str, dict[str, float]], returns: dict[str, list[float]],
                   alpha: float = 0.99) -> PortfolioRisk:
    """VaR/CVaR of the whole book from the symbols' recent returns (aligned on the most recent samples):
    historical from the replayed portfolio P&L, parametric from their covariance; and the pairwise
    correlations the position limits use. NaN where there is not enough history (fewer than 30 samples)."""
    exposure = portfolio_exposure(book)
    symbols = sorted(s for s in book if len(returns.get(s, [])) >= 30)
    nan = math.nan
    if not symbols:
        return PortfolioRisk(exposure, nan, nan, nan, nan, {})
    length = min(len(returns[s]) for s in symbols)
    matrix = np.array([returns[s][-length:] for s in symbols])  # symbols × samples
    weights = np.array([book[s].get("notional", 0.0) for s in symbols])
    pnl = weights @ matrix
    h_var, h_cvar = historical_var_cvar(pnl, alpha)
    covariance = np.atleast_2d(np.cov(matrix))
    p_var, p_cvar = parametric_var_cvar(weights, covariance, alpha)
    correlations: dict[tuple[str, str], float] = {}
    if len(symbols) > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(matrix)
        for i, a in enumerate(symbols):
            for j in range(i + 1, len(symbols)):
                if np.isfinite(corr[i, j]):
                    correlations[(a, symbols[j])] = float(corr[i, j])
    return PortfolioRisk(exposure, h_var, h_cvar, p_var, p_cvar, correlations)
