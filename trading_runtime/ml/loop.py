"""The machine-learning parts the engine calls on its tick path, built from the config's `ml` section.

One object so that the engine has one seam: the thresholds to combine with, the direction after the
meta-model, labels joined as horizons pass (fed to the online thresholds and to an optional recorder for
training), the regime detector and the size multiplier. With everything off (the default) it passes the
combiner's decision and the risk-capped size through unchanged and records nothing."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TypeVar

from trading_runtime.config import RenderedConfig, StrategyThresholds
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.bandit import SizingBandit, capped_size
from trading_runtime.ml.features import Decision, feature_vector
from trading_runtime.ml.labels import LabelJoiner, Labelled
from trading_runtime.ml.regime import RegimeChange, RegimeDetector
from trading_runtime.ml.serving import MetaGate
from trading_runtime.ml.thresholds import OnlineThresholds
from trading_runtime.pricing.surface import SurfaceFeatures
from trading_runtime.signals.combiner import Evidence, Signal

log = logging.getLogger(__name__)

DECISIONS_PER_HORIZON = 4
"""Decisions recorded for labelling per horizon while the primary signal calls a direction (every tick would
give labels that overlap almost entirely)."""
Recorder = Callable[[Labelled], None]
T = TypeVar("T")


class MlLoop:
    def __init__(self, config: RenderedConfig, metrics: RuntimeMetrics, recorder: Recorder | None = None) -> None:
        ml = config.runtime.ml
        self.settings, self.metrics, self.recorder = ml, metrics, recorder
        strategy = config.runtime.strategy
        self.horizon = float(strategy.horizon_seconds)
        self.gate = MetaGate(ml.model_path, ml.accept_probability, metrics)
        self.joiner = LabelJoiner(self.horizon)
        self.thresholds = self._optional(lambda: OnlineThresholds(strategy, ml, metrics), ml.adaptive_thresholds)
        self.regime = RegimeDetector(warmup_seconds=ml.regime_warmup_seconds) if ml.regime_detection else None
        self._watching: bool | None = None
        self.bandit = SizingBandit() if ml.bandit_sizing else None
        self.last_regime_change = -math.inf
        self._last_recorded = -math.inf

    def _optional(self, build: Callable[[], T], enabled: bool) -> T | None:
        """A part that needs river: without the `ml` extra it stays off, with an error logged and counted
        (the engine keeps the configured thresholds and sizing: safe, not silent)."""
        if not enabled:
            return None
        try:
            return build()
        except ImportError as exc:
            self.metrics.errors.labels(self.metrics.symbol, "ml").inc()
            log.error("machine-learning part switched off: %s (install the ml extra)", exc)
            return None

    @property
    def active(self) -> bool:
        """Whether decisions need feature vectors at all (a model, labels to learn from or to record)."""
        return self.gate.model is not None or self.thresholds is not None or self.recorder is not None

    def strategy(self, base: StrategyThresholds) -> StrategyThresholds:
        return self.thresholds.current if self.thresholds is not None else base

    def apply_config(self, config: RenderedConfig) -> None:
        if self.thresholds is not None:
            self.thresholds.rebase(config.runtime.strategy)

    def new_period(self) -> None:
        self.joiner.new_period()
        if self.regime is not None:
            self.regime.new_period()

    def decide(self, ts: float, evidence: Evidence, signal: Signal, direction: int, mid: float, spread: float,
               realised_vol: float, surface: SurfaceFeatures | None) -> int:
        """The direction after the meta-model; records the decision for labelling."""
        if not direction or not self.active:
            return direction
        features = feature_vector(evidence, signal, direction, realised_vol, mid, spread, surface)
        if ts - self._last_recorded >= self.horizon / DECISIONS_PER_HORIZON:
            self._last_recorded = ts
            self.joiner.add(Decision(ts, mid, spread, features))
        return self.gate.decide(features)

    def on_quote(self, ts: float, mid: float, spread: float, size: float) -> RegimeChange | None:
        """Labels whose horizon has passed, and the regime detector's block; returns a regime change."""
        if self.joiner.pending:
            for labelled in self.joiner.update(ts, mid):
                if self.thresholds is not None:
                    self.thresholds.learn(labelled)
                if self.recorder is not None:
                    self.recorder(labelled)
        if self.regime is None:
            return None
        change = self.regime.update(ts, mid, spread, size)
        m, s = self.metrics, self.metrics.symbol
        if change is not None:
            self.last_regime_change = change.ts
            m.regime_changes.labels(s).inc()
            m.regime_last_change.labels(s).set(change.ts)
        if self.regime.watching is not self._watching:
            self._watching = self.regime.watching
            m.regime_watching.labels(s).set(1.0 if self._watching else 0.0)
        return change

    def size(self, capped: float, ts: float, equity: float, capital: float, realised_vol: float,
             target_vol: float) -> float:
        """The notional to hold: the risk-capped size times the regime's and the bandit's multipliers (≤ 1)."""
        recent = ts - self.last_regime_change < self.settings.regime_cooldown_seconds
        regime = self.settings.regime_size_multiplier if recent else 1.0
        learnt = 1.0
        if self.bandit is not None:
            learnt = self.bandit.choose(realised_vol > target_vol, recent, equity, capital)
        m, s = self.metrics, self.metrics.symbol
        if self.regime is not None:
            m.size_multiplier.labels(s, "regime").set(regime)
        if self.bandit is not None:
            m.size_multiplier.labels(s, "bandit").set(learnt)
        return capped_size(regime * learnt, capped)
