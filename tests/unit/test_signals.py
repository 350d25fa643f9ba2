"""The signal combiner and the accuracy tracker."""

from __future__ import annotations

import math

import pytest

from trading_runtime.config import StrategyThresholds
from trading_runtime.signals.accuracy import AccuracyTracker, wilson_interval
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


@pytest.mark.parametrize(
    ("skew_z", "term_z", "stressed"),
    [(0.5, -1.0, False), (3.5, 0.0, True), (0.0, -4.0, True), (math.nan, math.nan, False), (math.nan, 2.9, False)],
    ids=["calm", "skew-stress", "term-stress", "warming-up", "just-below"],
)
def test_a_stressed_surface_discounts_confidence_and_can_veto_a_trade(skew_z, term_z, stressed):
    strong = Evidence(ofi=2, microprice_tilt=0.8, trade_imbalance=0.7, timeframe_agreement=1)
    clean = combine(strong, THRESHOLDS)
    surface = combine(Evidence(**{**strong.__dict__, "skew_z": skew_z, "term_z": term_z}), THRESHOLDS)
    assert surface.score == clean.score
    assert surface.confidence == pytest.approx(clean.confidence * (0.8 if stressed else 1.0))
    # Confidence just above minConfidence: the stress discount alone takes the trade away.
    gate = StrategyThresholds(entry_score=0.5, exit_score=0.2, min_confidence=clean.confidence * 0.9)
    assert combine(Evidence(**{**strong.__dict__, "skew_z": skew_z, "term_z": term_z}), gate).direction == \
        (0 if stressed else 1)


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


def test_baselines_are_scored_on_exactly_the_called_points():
    path = [100, 101, 102, 103, 102, 101, 100]  # up, up, up, down, down, down
    calls = [1, 0, -1, 0, -1, 0, 0]  # the strategy calls at 0, 2 and 4 and is flat elsewhere
    tracker = AccuracyTracker(horizon=1.0)
    drive(tracker, path, calls)
    report = tracker.report
    assert report.scored == 6
    assert (report.calls, report.hits) == (3, 2)  # the down call at 2 is wrong
    assert report.coverage == 0.5
    # persistence (the previous move) on the called points: 0 → majority (up) right, 2 → up right,
    # 4 → down right; the majority baseline (up so far) is right at 0 and 2 only
    assert report.persistence_hits == 3
    assert report.majority_hits == 2
    assert report.persistence_hit_rate == 1.0
    assert report.majority_hit_rate == 2 / 3


def test_no_calls_means_no_rates_rather_than_zero():
    tracker = AccuracyTracker(horizon=1.0)
    drive(tracker, [100, 101, 102, 103], [0, 0, 0, 0])
    report = tracker.report
    assert report.scored == 3
    assert report.calls == 0
    assert math.isnan(report.hit_rate)
    assert math.isnan(report.persistence_hit_rate)
    assert all(math.isnan(x) for x in report.hit_rate_ci)


@pytest.mark.parametrize(("hits", "trials", "low", "high"), [
    (50, 100, 0.4038, 0.5962),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
], ids=["half", "none", "all"])
def test_wilson_interval(hits, trials, low, high):
    assert wilson_interval(hits, trials) == pytest.approx((low, high), abs=1e-4)


def test_a_horizon_across_the_overnight_gap_is_not_scored():
    """Minute bars to the close, then the next morning: the last points before the close would be scored
    against the overnight move (the defect: scoring ran across overnight gaps)."""
    tracker = AccuracyTracker(horizon=60.0)
    close = 72_000.0
    for i in range(10):  # the last ten minutes of a session, always calling up, flat prices
        tracker.update(close - 600 + 60 * i, 100.0, 0.01, 1)
    tracker.new_period()  # the engine calls this at the close (sessions.PeriodTracker)
    tracker.update(close + 63_000, 103.0, 0.01, 1)  # a 3 % gap up at the next open
    assert tracker.report.scored == 0
    assert tracker.report.unscored_breaks == 1


def test_a_point_whose_next_tick_comes_a_horizon_late_is_not_scored():
    tracker = AccuracyTracker(horizon=60.0)
    tracker.update(0.0, 100.0, 0.01, 1)
    tracker.update(600.0, 101.0, 0.01, 1)  # ten minutes without data: a hole in the file, not a 60 s move
    assert tracker.report.scored == 0
    assert tracker.report.unscored_breaks == 1


def test_each_point_is_scored_on_the_move_up_to_the_next_point_so_no_two_share_a_move():
    """The horizons tile market time: slot 1's point, taken late at 1.4, is scored at the tick that takes slot
    2's point (2.1), not at 1.4 + 1 (2.5, well into slot 2's move, whose fall would decide both)."""
    tracker = AccuracyTracker(horizon=1.0)
    for ts, mid in [(0.9, 100.0), (1.4, 100.0), (2.1, 101.0), (2.5, 99.0), (3.2, 102.0), (4.0, 103.0)]:
        tracker.update(ts, mid, 0.01, 1)
    assert [(p.slot, p.actual) for p in tracker.decisions] == [(1, 1), (2, 1), (3, 1)]
