"""What `opsctl backtest` runs, as Dask tasks: runs of several symbols, parameter sweeps, and walk-forward
(parameters chosen on each train fold by the objective, scored on the next test fold only).

Objectives (larger is better; a candidate without the figure ranks last, ties go to the first candidate in
grid order): `sharpe`, `pnl`, `hit-rate-low` (the lower end of the hit rate's 95 % interval: a hit rate
measured on few calls does not win). A sweep's best figure is the best of N tries: it overstates what to
expect out of sample, which is what walk-forward measures."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from backtest.data import session_windows
from backtest.distributed import Executor
from backtest.folds import walk_forward as folds_of
from backtest.metrics import Performance, performance
from backtest.params import Grid, Params, apply, candidates
from backtest.runner import DataRef, RunResult, RunSpec, run
from trading_runtime.feeds.events import MarketEvents
from trading_runtime.sessions import calendar_for
from trading_runtime.signals.accuracy import AccuracyReport

Objective = Literal["sharpe", "pnl", "hit-rate-low"]


def score(performance: Performance, objective: Objective) -> float:
    """The objective's value; -inf when the run does not have it."""
    if objective == "sharpe":
        return performance.sharpe if performance.sharpe is not None else -math.inf
    if objective == "pnl":
        return performance.pnl
    return performance.hit_rate_ci[0] if performance.hit_rate_ci is not None else -math.inf


def _window_run(events: MarketEvents, start: float, end: float, spec: RunSpec) -> RunResult:
    """A task: one run on a time window of the (scattered) events."""
    return run(events.between(start, end), spec)


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    params: Params
    invalid: str | None = None
    """Why the config model refused this combination (it is not run)."""


def _specs(base: RunSpec, grid: Grid) -> tuple[list[Candidate], list[RunSpec]]:
    """Candidates in grid order and the specs of the valid ones."""
    found, specs = [], []
    for params in candidates(grid) or [{}]:
        try:
            specs.append(base.model_copy(update={"config": apply(base.config, params)}))
            found.append(Candidate(params=params))
        except ValueError as exc:
            found.append(Candidate(params=params, invalid=str(exc)))
    if not specs:
        raise ValueError("no valid candidate in the grid: " + "; ".join(c.invalid or "" for c in found))
    return found, specs


# Runs of several symbols ------------------------------------------------------------------------------

def run_all(executor: Executor, events: list[MarketEvents], spec: RunSpec) -> list[RunResult]:
    """`spec` on each symbol's events, one task each."""
    shared = [executor.share(e) for e in events]
    return executor.map(_window_run, [(s, e.start, math.inf, spec) for s, e in zip(shared, events, strict=True)],
                        "runs")


# Sweeps -----------------------------------------------------------------------------------------------

class SweepRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    params: Params
    run_id: str
    score: float
    performance: Performance


class SweepResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    data: DataRef
    objective: Objective
    candidates: list[Candidate]
    rows: list[SweepRow]
    """Valid candidates, best first."""


def sweep(executor: Executor, events: MarketEvents, base: RunSpec, grid: Grid,
          objective: Objective = "sharpe") -> SweepResult:
    found, specs = _specs(base, grid)
    shared = executor.share(events)
    results = executor.map(_window_run, [(shared, events.start, math.inf, s) for s in specs], "sweep")
    valid = [c for c in found if c.invalid is None]
    rows = [SweepRow(params=c.params, run_id=r.run_id, score=score(r.performance, objective),
                     performance=r.performance) for c, r in zip(valid, results, strict=True)]
    order = sorted(range(len(rows)), key=lambda i: (-rows[i].score, i))
    return SweepResult(data=results[0].data, objective=objective, candidates=found, rows=[rows[i] for i in order])


# Walk-forward -----------------------------------------------------------------------------------------

class FoldResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    train_sessions: tuple[str, ...]
    test_sessions: tuple[str, ...]
    train_start: float
    train_end: float
    test_start: float
    test_end: float
    train_scores: list[float]
    """Each valid candidate's objective on the train window, in grid order."""
    chosen: Params
    test: RunResult


class WalkForwardResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    data: DataRef
    objective: Objective
    purge_s: float
    embargo_sessions: int
    candidates: list[Candidate]
    folds: list[FoldResult]
    out_of_sample: Performance
    """The test folds pooled: P&L summed, returns and hit counts pooled (metrics.performance)."""


def walk_forward(executor: Executor, events: MarketEvents, base: RunSpec, grid: Grid, train: int, test: int,
                 step: int | None = None, embargo: int = 0, anchored: bool = False,
                 objective: Objective = "sharpe") -> WalkForwardResult:
    found, specs = _specs(base, grid)
    purge = float(max(s.config.strategy.horizon_seconds for s in specs))
    windows = session_windows(events, calendar_for(base.market))
    folds = folds_of(windows, train, test, step, embargo, purge, anchored)
    shared = executor.share(events)
    train_runs = executor.map(_window_run, [(shared, f.train_start, f.train_end, s) for f in folds for s in specs],
                              "train")
    valid = [c for c in found if c.invalid is None]
    train_scores = [[score(r.performance, objective) for r in train_runs[k * len(specs):(k + 1) * len(specs)]]
                    for k in range(len(folds))]
    chosen = [_best(scores) for scores in train_scores]
    tests = executor.map(_window_run, [(shared, f.test_start, f.test_end, specs[c])
                                       for f, c in zip(folds, chosen, strict=True)], "test")
    fold_results = [
        FoldResult(index=f.index, train_sessions=f.train_sessions, test_sessions=f.test_sessions,
                   train_start=f.train_start, train_end=f.train_end, test_start=f.test_start, test_end=f.test_end,
                   train_scores=train_scores[f.index], chosen=valid[c].params, test=t)
        for f, c, t in zip(folds, chosen, tests, strict=True)]
    pooled = _pooled(tests)
    capital = base.config.risk.capital
    oos = performance([t.equity for t in tests], capital, [e for t in tests for e in t.ledger], pooled,
                      sum(t.data.sessions for t in tests))
    data = DataRef(symbol=events.symbol, fingerprint=events.fingerprint(), start=events.start, end=events.end,
                   events=len(events), sessions=len(windows))
    return WalkForwardResult(data=data, objective=objective, purge_s=purge, embargo_sessions=embargo,
                             candidates=found, folds=fold_results, out_of_sample=oos)


def _best(scores: list[float]) -> int:
    """Index of the highest score; the first one on a tie."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def _pooled(runs: list[RunResult]) -> AccuracyReport:
    p = [r.performance for r in runs]
    return AccuracyReport(scored=sum(x.scored for x in p), calls=sum(x.calls for x in p), hits=sum(x.hits for x in p),
                          persistence_hits=sum(x.persistence_hits for x in p),
                          majority_hits=sum(x.majority_hits for x in p),
                          unscored_breaks=sum(x.unscored_breaks for x in p))
