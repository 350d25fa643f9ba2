"""The chain's cross-strike analysis off the tick path: the same features as in line, the latest sample wins,
and a tick never waits for an analysis in progress."""

from __future__ import annotations

import asyncio
import math
import threading
import time

from tests.unit.test_engine import Rows, config, drive
from trading_runtime.chain_analysis import BackgroundAnalysis, ChainSample, InlineAnalysis
from trading_runtime.engine import SymbolEngine
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.pricing.surface import CrossStrikeAnalyzer, SurfaceFeatures

EXPIRY_TS = 1_767_000_000.0  # 2025-12-29, before the synthetic chain's expiries


class Recorder(InlineAnalysis):
    """In line, keeping every sample the engine hands over."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[ChainSample] = []

    def submit(self, sample: ChainSample) -> None:
        self.samples.append(sample)
        super().submit(sample)


class SlowAnalyzer(CrossStrikeAnalyzer):
    """Takes `seconds` per update (a long IV solve) and remembers which samples it analysed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(window=100)
        self.seconds = seconds
        self.forwards: list[float] = []
        self.started = threading.Event()

    def update(self, forward, chain):  # type: ignore[no-untyped-def]
        self.started.set()
        time.sleep(self.seconds)
        self.forwards.append(float(forward))
        return super().update(forward, chain)


def sample(forward: float) -> ChainSample:
    quotes = {(k, "P" if k < forward else "C"): 2.0 + abs(k - forward) * 0.01 for k in (480.0, 500.0, 520.0)}
    return ChainSample(EXPIRY_TS, forward, "bsm", {"20270115": quotes})


def same(a: SurfaceFeatures, b: SurfaceFeatures) -> bool:
    numbers = ("avg_correlation", "skew_slope", "skew_z", "term_spread", "term_z")
    return a.dislocated_strikes == b.dislocated_strikes and all(
        getattr(a, f) == getattr(b, f) or (math.isnan(getattr(a, f)) and math.isnan(getattr(b, f))) for f in numbers)


async def test_the_background_analysis_gives_the_in_line_features():
    recorder = Recorder()
    await drive(SymbolEngine(config(), True, RuntimeMetrics("SPY"), Rows(), seed=0, analysis=recorder), 2000)
    assert len(recorder.samples) > 20
    background = BackgroundAnalysis()
    try:
        for s in recorder.samples:
            background.submit(s)
            assert background.idle()  # one at a time: none superseded
        assert background.stats.superseded == 0
        assert background.stats.completed == len(recorder.samples)
        assert isinstance(background.latest, SurfaceFeatures)
        assert isinstance(recorder.latest, SurfaceFeatures)
        assert same(background.latest, recorder.latest)
    finally:
        background.close()


def test_a_newer_sample_replaces_the_one_waiting_latest_wins():
    analyzer = SlowAnalyzer(0.2)
    background = BackgroundAnalysis(analyzer)
    try:
        background.submit(sample(500.0))
        assert analyzer.started.wait(2)  # the first is in hand
        started = time.perf_counter()
        for forward in (501.0, 502.0, 503.0):
            background.submit(sample(forward))
        assert time.perf_counter() - started < 0.05  # handing over never waits for the analysis in progress
        assert background.idle()
        assert analyzer.forwards == [500.0, 503.0]  # 501 and 502 were superseded, never analysed
        assert background.stats.superseded == 2
        assert background.stats.completed == 2
        assert background.stats.last_seconds >= 0.2
    finally:
        background.close()


async def test_ticks_are_decided_while_an_analysis_is_in_progress():
    analyzer = SlowAnalyzer(1.0)
    background = BackgroundAnalysis(analyzer)
    engine = SymbolEngine(config(), True, RuntimeMetrics("SPY"), Rows(), seed=0, analysis=background)
    try:
        started = time.perf_counter()
        await drive(engine, 300)  # 300 option quotes: six samples, the first takes a second to analyse
        elapsed = time.perf_counter() - started
        assert analyzer.started.is_set()
        assert elapsed < 0.9, elapsed  # the tick path did not wait for it
        assert engine.surface_features is None  # decided without it rather than waiting
        assert background.stats.superseded >= 1
        await asyncio.to_thread(background.idle)
        assert engine.surface_features is not None  # the latest sample's features, once analysed
    finally:
        background.close()


def test_a_failed_analysis_keeps_the_previous_features():
    class Failing(CrossStrikeAnalyzer):
        def update(self, forward, chain):  # type: ignore[no-untyped-def]
            raise FloatingPointError("bad chain")

    background = BackgroundAnalysis(Failing(window=100))
    try:
        background.submit(sample(500.0))
        assert background.idle()
        assert background.stats.failed == 1
        assert background.latest is None
    finally:
        background.close()
