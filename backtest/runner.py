"""One backtest run: the unchanged `SymbolEngine` driven event by event through an injected clock, the
simulated broker and the events of a time window; the result is typed, citable and deterministic.

The driver advances the clock to each event's exchange time, then hands the event to the engine — the
engine, its indicators and the broker can only know what the data has reached. The equity (capital +
realised + unrealised P&L, marked at the touch) is sampled every `sample_s` of exchange time."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from backtest.broker import FillModel, LedgerEntry, SimulatedBroker
from backtest.data import session_windows
from backtest.metrics import Performance, performance
from trading_runtime.clock import EventClock
from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import Row, SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.events import MarketEvents
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.sessions import calendar_for

VERSION = "backtest/1"
"""Part of every run id: bump it when a change to the backtester changes results."""


class RunSpec(BaseModel):
    """What a run is: the strategy and risk settings (the runtime's own config model), how orders fill,
    and the market (for its calendar and contract multiplier)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    market: str = "equity-options"
    config: RuntimeConfig = RuntimeConfig()
    fill: FillModel = FillModel()
    sample_s: float = Field(60.0, gt=0.0)


class DataRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbol: str
    fingerprint: str
    """SHA-256 of the events (trading_runtime/feeds/events.py)."""
    start: float
    end: float
    events: int
    sessions: int


class RunResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    """SHA-256 (16 hex) of the data fingerprint, the spec and the backtester version: a tuning or model
    proposal cites it, and the same data and spec always give the same id and the same figures."""
    data: DataRef
    spec: RunSpec
    performance: Performance
    ledger: list[LedgerEntry]
    equity: list[tuple[float, float]]
    signals: int
    rejected_orders: int
    """Orders the engine's pre-trade controls refused (trading_runtime/execution/pretrade.py), as live."""
    errors: int
    """Events the engine failed to process (counted by its errors metric; each one is a reason to look)."""
    wall_s: float = Field(exclude=True)
    """Not part of the result's identity or its JSON: it differs between two runs of the same spec."""


EngineFactory = Callable[[RenderedConfig, Callable[[str, Row], None], SimulatedBroker, EventClock, MarketEvents],
                         SymbolEngine]
"""Builds the engine of a run; it is handed the run's events only so that a test can build a strategy that
cheats with them (backtest/lookahead.py must catch it)."""


def live_engine(config: RenderedConfig, sink: Callable[[str, Row], None], broker: SimulatedBroker,
                clock: EventClock, events: MarketEvents) -> SymbolEngine:
    """The engine exactly as the runtime process builds it, with the backtest's broker and clock."""
    return SymbolEngine(config, True, RuntimeMetrics(config.symbol), sink, broker=broker, seed=0, clock=clock,
                        calendar=calendar_for(config.market))


def run_id(events: MarketEvents, spec: RunSpec) -> str:
    payload = json.dumps({"data": events.fingerprint(), "spec": spec.model_dump(mode="json"), "version": VERSION},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run(events: MarketEvents, spec: RunSpec, engine_factory: EngineFactory = live_engine) -> RunResult:
    """Backtest `spec` on `events` (module doc)."""
    started = time.perf_counter()
    clock = EventClock(events.start if len(events) else 0.0)
    broker = SimulatedBroker(fill_model=spec.fill, clock=clock)
    rows: Counter[str] = Counter()

    def sink(table: str, row: Row) -> None:
        rows[table] += 1

    config = RenderedConfig(symbol=events.symbol, market=spec.market, revision=0, runtime=spec.config)
    engine = engine_factory(config, sink, broker, clock, events)
    capital = spec.config.risk.capital
    # A loop of its own, never made current: asyncio.run would leave the calling thread without one.
    loop = asyncio.new_event_loop()
    try:
        equity = loop.run_until_complete(_drive(engine, events, clock, broker, spec.sample_s, capital))
    finally:
        loop.close()
    windows = session_windows(events, calendar_for(spec.market))
    errors = engine.metrics.registry.get_sample_value("tradeops_errors_total",
                                                      {"symbol": events.symbol, "stage": "process"})
    return RunResult(
        run_id=run_id(events, spec),
        data=DataRef(symbol=events.symbol, fingerprint=events.fingerprint(), start=events.start, end=events.end,
                     events=len(events), sessions=len(windows)),
        spec=spec,
        performance=performance([equity], capital, broker.ledger, engine.accuracy.report, len(windows)),
        ledger=list(broker.ledger), equity=equity, signals=rows["signals"],
        rejected_orders=rows["order_rejections"], errors=int(errors or 0),
        wall_s=time.perf_counter() - started)


async def _drive(engine: SymbolEngine, events: MarketEvents, clock: EventClock, broker: SimulatedBroker,
                 sample_s: float, capital: float) -> list[tuple[float, float]]:
    symbol = events.symbol
    curve: list[tuple[float, float]] = []
    next_sample = -math.inf
    for message in events.messages():
        clock.advance(message.ts)
        await settle(engine.on_message(message))
        if message.ts >= next_sample and message.instrument == symbol:
            curve.append((message.ts, capital + broker.realized() + broker.unrealized()))
            next_sample = message.ts + sample_s
    if len(events):
        curve.append((events.end, capital + broker.realized() + broker.unrealized()))
    return curve
