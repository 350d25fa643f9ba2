"""The option chain's cross-strike analysis, off the tick path.

Every `SURFACE_EVERY` option quotes the engine hands a copy of the chain (a `ChainSample`) to an analysis;
solving the chain's implied volatilities and updating the rolling correlations takes milliseconds, a hundred
times a tick's own work, so on the live feed it runs on a thread of its own (`BackgroundAnalysis`): the
latest sample wins (one waiting sample at most; a newer one replaces it, counted as superseded) and the
decisions read the latest features when they are made. Replays, backtests and dataset builds analyse in
line (`InlineAnalysis`), so the same events give the same features and the same decisions."""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from trading_runtime.execution.options import years_to
from trading_runtime.pricing.black_scholes import Model, implied_vol
from trading_runtime.pricing.surface import Array, CrossStrikeAnalyzer, SurfaceFeatures

log = logging.getLogger(__name__)

RATE = 0.04
SWITCH_INTERVAL_S = 0.0005
"""How long the analysis thread may hold the GIL while the tick path waits for it (Python's default, 5 ms, would
put up to 5 ms into a tick that arrives during an analysis)."""

Quotes = dict[tuple[float, str], float]
"""(strike, right) → option mid."""


@dataclass(frozen=True)
class ChainSample:
    """The chain as it stood when a tick asked for an analysis: mids per expiry, the underlying's mid."""

    ts: float
    forward: float
    model: Model
    chain: dict[str, Quotes]


def analyse(analyzer: CrossStrikeAnalyzer, sample: ChainSample) -> SurfaceFeatures | None:
    """Solve the out-of-the-money IVs of every live expiry in one vectorised call and update `analyzer`."""
    forward = sample.forward
    expiries: list[str] = []
    strikes_of: list[Array] = []
    mids: list[float] = []
    years: list[float] = []
    for expiry in sorted(sample.chain):
        remaining = years_to(expiry, sample.ts)
        if remaining <= 0:
            continue
        quotes = sample.chain[expiry]
        strikes = np.array(sorted({k for k, _ in quotes}))
        # Out-of-the-money options carry the most information about volatility.
        mids += [quotes.get((k, "P" if k < forward else "C"), math.nan) for k in strikes.tolist()]
        years += [remaining] * len(strikes)
        expiries.append(expiry)
        strikes_of.append(strikes)
    if not expiries:
        return None
    every = np.concatenate(strikes_of)
    ivs = implied_vol(np.array(mids), forward, every, np.array(years), RATE, every >= forward, model=sample.model)
    ends = np.cumsum([len(k) for k in strikes_of])
    chain = {e: (k, ivs[end - len(k):end]) for e, k, end in zip(expiries, strikes_of, ends.tolist(), strict=True)}
    return analyzer.update(forward, chain)


@dataclass
class AnalysisStats:
    completed: int = 0
    superseded: int = 0
    """Samples replaced by a newer one before the analysis got to them."""
    failed: int = 0
    last_seconds: float = math.nan
    """Duration of the latest analysis."""


class ChainAnalysis(Protocol):
    stats: AnalysisStats

    @property
    def latest(self) -> SurfaceFeatures | None:
        """The features of the latest finished analysis (None before the first)."""

    def submit(self, sample: ChainSample) -> None:
        """Analyse `sample` (now, or as soon as the analysis is free)."""

    def close(self) -> None:
        """Stop analysing (a background analysis finishes the sample in hand)."""


class InlineAnalysis:
    """Analyses each sample when it is submitted, on the caller's thread: deterministic."""

    def __init__(self, analyzer: CrossStrikeAnalyzer | None = None) -> None:
        self.analyzer = analyzer or CrossStrikeAnalyzer(window=100)
        self.latest: SurfaceFeatures | None = None
        self.stats = AnalysisStats()

    def submit(self, sample: ChainSample) -> None:
        started = time.perf_counter()
        features = analyse(self.analyzer, sample)
        self.stats.last_seconds = time.perf_counter() - started
        self.stats.completed += 1
        if features is not None:
            self.latest = features

    def close(self) -> None:
        return None


class BackgroundAnalysis:
    """Analyses on a daemon thread of its own; the tick path only swaps a reference (latest wins)."""

    def __init__(self, analyzer: CrossStrikeAnalyzer | None = None) -> None:
        self.analyzer = analyzer or CrossStrikeAnalyzer(window=100)
        self.latest: SurfaceFeatures | None = None
        self.stats = AnalysisStats()
        self._pending: ChainSample | None = None
        self._busy = False
        self._closed = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self._thread = threading.Thread(target=self._run, name="chain-analysis", daemon=True)
        self._thread.start()

    def submit(self, sample: ChainSample) -> None:
        with self._lock:
            if self._pending is not None:
                self.stats.superseded += 1
            self._pending = sample
        self._wake.set()

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until no sample is waiting or in hand (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending is None and not self._busy:
                    return True
            time.sleep(0.005)
        return False

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                sample, self._pending = self._pending, None
                self._busy = sample is not None
            if sample is None or self._closed:
                continue
            started = time.perf_counter()
            try:
                features = analyse(self.analyzer, sample)
            except Exception:  # a failed analysis leaves the previous features in force
                self.stats.failed += 1
                log.exception("chain analysis failed")
                features = None
            self.stats.last_seconds = time.perf_counter() - started
            self.stats.completed += 1
            if features is not None:
                self.latest = features  # one reference assignment: atomic for the tick path that reads it
            with self._lock:
                self._busy = False

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(5)
