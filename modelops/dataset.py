"""Training sets from the live engine: each backtest run's labelled decisions (trading_runtime/ml/labels.py)
as arrays. The engine records a decision with the features it had at its time and receives the label only
once the horizon has passed, so a row never holds anything from after its decision time but its label."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from backtest.broker import SimulatedBroker
from backtest.runner import RunSpec, run
from trading_runtime.clock import EventClock
from trading_runtime.config import RenderedConfig
from trading_runtime.engine import Row, SymbolEngine
from trading_runtime.feeds.events import MarketEvents
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.features import FEATURE_NAMES
from trading_runtime.ml.labels import Labelled
from trading_runtime.sessions import calendar_for


@dataclass(frozen=True)
class Dataset:
    symbol: str
    x: np.ndarray
    """Features (rows × FEATURE_NAMES), NaN as 0 as the runtime scores them."""
    hit: np.ndarray
    """Meta-labels: the primary direction was right (1) or wrong (0)."""
    decided_at: np.ndarray
    labelled_at: np.ndarray
    outcome: np.ndarray
    dropped: int
    """Decisions without a label (gaps, session breaks)."""

    def __len__(self) -> int:
        return len(self.hit)

    def between(self, start: float, end: float) -> Dataset:
        """Rows decided in [start, end) whose label was also known before `end` (purged at the edge)."""
        keep = (self.decided_at >= start) & (self.decided_at < end) & (self.labelled_at < end)
        return Dataset(self.symbol, self.x[keep], self.hit[keep], self.decided_at[keep], self.labelled_at[keep],
                       self.outcome[keep], 0)

    @staticmethod
    def concat(parts: list[Dataset]) -> Dataset:
        if not parts:
            raise ValueError("no datasets to concatenate")
        return Dataset(parts[0].symbol, np.concatenate([p.x for p in parts]), np.concatenate([p.hit for p in parts]),
                       np.concatenate([p.decided_at for p in parts]), np.concatenate([p.labelled_at for p in parts]),
                       np.concatenate([p.outcome for p in parts]), sum(p.dropped for p in parts))


def from_labelled(symbol: str, rows: list[Labelled], dropped: int) -> Dataset:
    """Scored rows only: a move within the spread is no label either way."""
    scored = [r for r in rows if r.outcome]
    x = np.array([r.decision.features.as_array() for r in scored], dtype=np.float32).reshape(-1, len(FEATURE_NAMES))
    return Dataset(symbol, np.nan_to_num(x, nan=0.0), np.array([r.hit for r in scored], dtype=np.int8),
                   np.array([r.decision.ts for r in scored]), np.array([r.labelled_at for r in scored]),
                   np.array([r.outcome for r in scored], dtype=np.int8), dropped)


def collect(events: MarketEvents, spec: RunSpec) -> Dataset:
    """Run the engine over `events` and gather its labelled decisions."""
    rows: list[Labelled] = []
    engines: list[SymbolEngine] = []

    def factory(config: RenderedConfig, sink: Callable[[str, Row], None], broker: SimulatedBroker, clock: EventClock,
                _events: MarketEvents) -> SymbolEngine:
        engine = SymbolEngine(config, True, RuntimeMetrics(config.symbol), sink, broker=broker, seed=0, clock=clock,
                              calendar=calendar_for(config.market), ml_recorder=rows.append)
        engines.append(engine)
        return engine

    run(events, spec, factory)
    return from_labelled(events.symbol, rows, engines[0].ml.joiner.dropped + len(engines[0].ml.joiner.pending))
