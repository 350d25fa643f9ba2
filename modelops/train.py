"""Walk-forward training of the meta-model: collect the engine's labelled decisions once (the engine is
causal: backtest/lookahead.py), then for each fold train on the train window's rows — purged of rows whose
label was measured inside the test window — and evaluate on the test window (modelops/evaluation.py), with
permutation importance on the held-out rows. The model to ship is then trained on all the rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.inspection import permutation_importance

from backtest.data import SyntheticSource, session_windows, synthetic
from backtest.folds import walk_forward
from backtest.runner import RunSpec
from modelops import ensemble
from modelops.dataset import Dataset, collect
from modelops.evaluation import Evaluation, evaluate
from trading_runtime.config import RuntimeConfig
from trading_runtime.feeds.events import MarketEvents
from trading_runtime.ml.features import FEATURE_NAMES
from trading_runtime.sessions import calendar_for


class TrainSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    market: str = "equity-options"
    primary_entry_score: float = Field(0.3, ge=0.0, le=1.0)
    """The primary signal's entryScore while collecting: meta-labelling wants a primary with recall, the
    meta-model supplies the precision."""
    primary_min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    horizon_seconds: int = Field(60, ge=1)
    train_sessions: int = Field(4, ge=1)
    test_sessions: int = Field(1, ge=1)
    embargo_sessions: int = Field(0, ge=0)
    accept_probability: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0
    importance_repeats: int = Field(3, ge=1)

    def run_spec(self) -> RunSpec:
        config = RuntimeConfig().model_copy(update={"strategy": RuntimeConfig().strategy.model_copy(update={
            "entry_score": self.primary_entry_score, "exit_score": min(0.3, self.primary_entry_score / 2),
            "min_confidence": self.primary_min_confidence, "horizon_seconds": self.horizon_seconds})})
        return RunSpec(market=self.market, config=config)


class Importance(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbol: str
    window: tuple[float, float]
    """The held-out window (exchange time) the importance was measured on."""
    mean: dict[str, float]
    std: dict[str, float]
    shap: dict[str, float] | None = None
    """Mean |SHAP value| per feature of the LightGBM member on the held-out rows (log-odds of that member):
    LightGBM's own TreeSHAP (`pred_contrib=True`), exact for trees. None when the model has no LightGBM."""


class FoldReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    train: tuple[float, float]
    test: tuple[float, float]
    train_rows: int
    test_rows: int
    evaluation: Evaluation
    importance: Importance | None


@dataclass(frozen=True)
class TrainingResult:
    symbol: str
    spec: TrainSpec
    data_range: tuple[float, float]
    rows: int
    folds: list[FoldReport]
    pooled: Evaluation
    """All test folds' predictions evaluated together."""
    model: Any
    train_s: float


def importance(model: Any, data: Dataset, window: tuple[float, float], repeats: int, seed: int) -> Importance | None:
    if len(np.unique(data.hit)) < 2:
        return None
    found = permutation_importance(model, data.x, data.hit, scoring="neg_log_loss", n_repeats=repeats,
                                   random_state=seed, n_jobs=1)
    return Importance(symbol=data.symbol, window=window,
                      mean=dict(zip(FEATURE_NAMES, map(float, found.importances_mean), strict=True)),
                      std=dict(zip(FEATURE_NAMES, map(float, found.importances_std), strict=True)),
                      shap=tree_shap(model, data.x))


def tree_shap(model: Any, x: np.ndarray) -> dict[str, float] | None:
    """Mean |SHAP value| per feature of the ensemble's LightGBM member on rows `x` (see Importance.shap)."""
    member = ensemble.lightgbm_member(model)
    if member is None or not len(x):
        return None
    contributions = np.asarray(member.predict(x, pred_contrib=True))[:, :len(FEATURE_NAMES)]  # last: the bias
    return dict(zip(FEATURE_NAMES, map(float, np.abs(contributions).mean(axis=0)), strict=True))


def majority_sign(data: Dataset) -> int:
    return 1 if int(np.sum(data.outcome > 0)) >= int(np.sum(data.outcome < 0)) else -1


def train(events: MarketEvents, spec: TrainSpec) -> TrainingResult:
    """The module doc's procedure; ValueError when the data holds no fold or a fold no two classes."""
    started = time.perf_counter()
    data = collect(events, spec.run_spec())
    windows = session_windows(events, calendar_for(spec.market))
    folds = walk_forward(windows, spec.train_sessions, spec.test_sessions, embargo=spec.embargo_sessions,
                         purge_s=2.0 * spec.horizon_seconds)
    reports: list[FoldReport] = []
    pooled_p, pooled = [], []
    for fold in folds:
        train_rows = data.between(fold.train_start, fold.train_end)
        test_rows = data.between(fold.test_start, fold.test_end + 1.0)
        model = ensemble.fit(train_rows.x, train_rows.hit, spec.seed)
        p = ensemble.probability(model, test_rows.x) if len(test_rows) else np.zeros(0)
        window = (fold.test_start, fold.test_end)
        reports.append(FoldReport(
            index=fold.index, train=(fold.train_start, fold.train_end), test=window, train_rows=len(train_rows),
            test_rows=len(test_rows), evaluation=evaluate(p, test_rows.x, test_rows.hit, test_rows.outcome,
                                                          spec.accept_probability, majority_sign(train_rows)),
            importance=importance(model, test_rows, window, spec.importance_repeats, spec.seed)))
        pooled_p.append(p)
        pooled.append(test_rows)
    tested = Dataset.concat(pooled)
    final = ensemble.fit(data.x, data.hit, spec.seed)
    return TrainingResult(
        symbol=events.symbol, spec=spec, data_range=(events.start, events.end), rows=len(data), folds=reports,
        pooled=evaluate(np.concatenate(pooled_p), tested.x, tested.hit, tested.outcome, spec.accept_probability,
                        majority_sign(data)),
        model=final, train_s=time.perf_counter() - started)


def synthetic_events(symbol: str, days: int, seed: int, session_minutes: int | None, market: str,
                     edge: float = 0.0) -> MarketEvents:
    return synthetic(SyntheticSource(symbol=symbol, days=days, seed=seed, session_minutes=session_minutes, edge=edge),
                     calendar_for(market))
