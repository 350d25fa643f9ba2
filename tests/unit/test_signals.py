"""The signal combiner and the accuracy tracker."""

from __future__ import annotations

import math

import pytest

from trading_runtime.config import StrategyThresholds
from trading_runtime.signals.accuracy import AccuracyTracker
from trading_runtime.signals.combiner import Evidence, combine

THRESHOLDS = StrategyThresholds(entry_score=0.5, exit_score=0.2, min_confidence=0.6)


@pytest.mark.parametrize(
    ("evidence", "direction"),
    [(Evidence(ofi=2, microprice_tilt=0.8, trade_imbalance=0.7, timeframe_agreement=1, value_area_position=1), 1),
     (Evidence(ofi=-2, microprice_tilt=-0.8, trade_imbalance=-0.7, timeframe_agreement=-1), -1),
     (Evidence(ofi=2, microprice_tilt=-0.8, trade_imbalance=0.7, timeframe_agreement=-1), 0),
     (Evidence(ofi=0.1, microprice_tilt=0.05), 0),
     (Evidence(), 0)],
    ids=["all-long", "all-short", "conflicting", "weak", "nothing"],
)
def test_combiner_directions(evidence, direction):
    assert combine(evidence, THRESHOLDS).direction == direction


def test_toxic_flow_and_dislocation_reduce_confidence():
    strong = Evidence(ofi=2, microprice_tilt=0.8, trade_imbalance=0.7, timeframe_agreement=1)
    clean = combine(strong, THRESHOLDS)
    toxic = combine(Evidence(**{**strong.__dict__, "vpin": 0.9}), THRESHOLDS)
    dislocated = combine(Evidence(**{**strong.__dict__, "dislocated": True}), THRESHOLDS)
    assert toxic.confidence < clean.confidence
    assert dislocated.confidence < clean.confidence
    assert toxic.score == clean.score


def test_thresholds_from_config_gate_the_signal():
    evidence = Evidence(ofi=0.6, microprice_tilt=0.5, trade_imbalance=0.4, timeframe_agreement=0.5)
    score = combine(evidence, THRESHOLDS).score
    lenient = StrategyThresholds(entry_score=score - 0.01, exit_score=0.0, min_confidence=0.5)
    strict = StrategyThresholds(entry_score=score + 0.01, exit_score=0.0, min_confidence=0.5)
    assert combine(evidence, lenient).direction == 1
    assert combine(evidence, strict).direction == 0


def drive(tracker, path, directions, spread=0.01):
    for ts, (mid, direction) in enumerate(zip(path, directions, strict=True)):
        tracker.update(float(ts), mid, spread, direction)


def test_perfect_foresight_scores_one_and_moves_within_the_spread_are_not_scored():
    path = [100, 101, 100, 101, 101.005, 100, 99]
    future = [1, -1, 1, 0, -1, -1, 0]  # the sign of the next move (0 where it is inside the spread)
    tracker = AccuracyTracker(horizon=1.0)
    drive(tracker, path, future)
    report = tracker.report
    assert report.scored == 5  # 101→101.005 is inside the spread; the last point has no future
    assert report.calls == 5
    assert report.hit_rate == 1.0
    assert report.coverage == 1.0


def test_baselines_are_scored_on_the_same_points():
    path = [100, 101, 102, 103, 102, 101, 100]  # up, up, up, down, down, down
    tracker = AccuracyTracker(horizon=1.0)
    drive(tracker, path, [0] * len(path))
    report = tracker.report
    assert report.calls == 0
    assert math.isnan(report.hit_rate)
    assert report.coverage == 0.0
    assert report.scored == 6
    # persistence calls the previous move (the majority's call at the start): wrong only at the turn
    assert report.persistence_hits == 5
    # majority calls the most frequent direction so far: up, until the downs outnumber the ups
    assert report.majority_hits == 3
