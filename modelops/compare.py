"""A machine-learning part against what it replaces, in the backtester on the same data: bandit sizing
against the fixed formula, online thresholds against the fixed ones. Each variant runs once over all the
events (the online parts learn as they go, causally) and is judged on each walk-forward test window: the
Sharpe ratio and max drawdown of its equity within the window, and pooled over the windows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from backtest.data import session_windows
from backtest.folds import walk_forward
from backtest.metrics import performance
from backtest.runner import RunResult, RunSpec, run
from trading_runtime.feeds.events import MarketEvents
from trading_runtime.sessions import calendar_for
from trading_runtime.signals.accuracy import AccuracyReport


class VariantFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    sharpe: float | None
    sharpe_ci: tuple[float, float] | None
    max_drawdown: float
    pnl: float
    fold_sharpes: list[float | None]
    fold_drawdowns: list[float]
    hit_rate: float | None
    coverage: float | None


def _window(curve: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    return [(ts, equity) for ts, equity in curve if start <= ts <= end]


def judge(name: str, result: RunResult, events: MarketEvents, train: int, test: int) -> VariantFigures:
    windows = session_windows(events, calendar_for(result.spec.market))
    folds = walk_forward(windows, train, test)
    capital = result.spec.config.risk.capital
    empty = AccuracyReport(0, 0, 0, 0, 0)
    curves = []
    per_fold = []
    for fold in folds:
        raw = _window(result.equity, fold.test_start, fold.test_end)
        # Each window restarts at the capital (its returns are what counts; P&L sums over windows).
        curve = [(ts, capital + equity - raw[0][1]) for ts, equity in raw] if raw else []
        curves.append(curve)
        per_fold.append(performance([curve], capital, [], empty, len(fold.test_sessions)))
    pooled = performance(curves, capital, [], empty, sum(len(f.test_sessions) for f in folds))
    return VariantFigures(name=name, sharpe=pooled.sharpe, sharpe_ci=pooled.sharpe_ci,
                          max_drawdown=pooled.max_drawdown, pnl=pooled.pnl,
                          fold_sharpes=[p.sharpe for p in per_fold], fold_drawdowns=[p.max_drawdown for p in per_fold],
                          hit_rate=result.performance.hit_rate, coverage=result.performance.coverage)


def compare(events: MarketEvents, variants: dict[str, RunSpec], train: int, test: int) -> list[VariantFigures]:
    """Every variant's figures on the same events and test windows."""
    return [judge(name, run(events, spec), events, train, test) for name, spec in variants.items()]
