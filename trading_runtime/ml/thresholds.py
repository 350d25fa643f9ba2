"""Online adaptation of the entry threshold from labelled calls, with ADWIN watching for drift.

Each labelled call (trading_runtime/ml/labels.py: only after its horizon passed) updates river's
exponentially weighted hit rate; entryScore moves by `step × (target − hit rate)` — up when calls are worse
than the target, down when better — and never leaves the bounds the config sets (entryScoreMin/Max; the
risk policy bounds those). ADWIN on the hit stream detects a change in the hit rate: the adaptation then
resets to the configured entryScore and slows (the step halves, down to a floor), because what it learnt
belongs to the old regime. exitScore follows to stay below entryScore. Every change is a metric."""

from __future__ import annotations

from trading_runtime.config import MachineLearning, StrategyThresholds
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.labels import Labelled

STEP = 0.05
MIN_STEP = 0.005
FADING = 0.05
WARMUP = 20
"""Calls before the first move: a hit rate of a handful of calls is noise."""


class OnlineThresholds:
    def __init__(self, base: StrategyThresholds, settings: MachineLearning, metrics: RuntimeMetrics) -> None:
        self.base, self.settings, self.metrics = base, settings, metrics
        self.step = STEP
        self.entry = self._bounded(base.entry_score)
        self.drifts = 0
        self._reset_learning()
        self._publish("start")

    def _reset_learning(self) -> None:
        from river import drift, stats  # the `ml` extra: imported only when the adaptation is switched on

        self.hit_rate = stats.EWMean(fading_factor=FADING)
        self.calls = 0
        self.adwin = drift.ADWIN(delta=0.002)

    def _bounded(self, value: float) -> float:
        return min(self.settings.entry_score_max, max(self.settings.entry_score_min, value))

    @property
    def current(self) -> StrategyThresholds:
        """The base thresholds with the adapted entryScore (exitScore kept below it)."""
        exit_score = min(self.base.exit_score, self.entry * 0.75)
        return self.base.model_copy(update={"entry_score": self.entry, "exit_score": exit_score})

    def rebase(self, base: StrategyThresholds) -> None:
        """A hot-reloaded config: start again from its thresholds."""
        self.base = base
        self.entry = self._bounded(base.entry_score)
        self._reset_learning()
        self._publish("config")

    def learn(self, labelled: Labelled) -> None:
        if not labelled.decision.features.direction or not labelled.outcome:
            return  # flat calls and moves within the spread say nothing about the threshold
        hit = labelled.hit
        self.adwin.update(1.0 if hit else 0.0)
        if self.adwin.drift_detected:
            self.drifts += 1
            self.step = max(MIN_STEP, self.step / 2)
            self.entry = self._bounded(self.base.entry_score)
            self._reset_learning()
            self._publish("drift")
            return
        self.hit_rate.update(1.0 if hit else 0.0)
        self.calls += 1
        if self.calls < WARMUP:
            return
        moved = self._bounded(self.entry + self.step * (self.settings.target_hit_rate - self.hit_rate.get()))
        if abs(moved - self.entry) >= 1e-4:
            self.entry = moved
            self._publish("learn")

    def _publish(self, cause: str) -> None:
        m, s = self.metrics, self.metrics.symbol
        m.strategy_threshold.labels(s, "entry_score").set(self.entry)
        m.threshold_changes.labels(s, cause).inc()
