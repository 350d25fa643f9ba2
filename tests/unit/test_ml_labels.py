"""Feature vectors and labels: a label is joined only after its horizon has passed, never with later data."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from backtest.data import SyntheticSource, synthetic
from backtest.runner import RunSpec
from modelops.dataset import collect
from modelops.train import TrainSpec
from trading_runtime.ml.features import FEATURE_NAMES, Decision, FeatureVector
from trading_runtime.ml.labels import LabelJoiner
from trading_runtime.sessions import calendar_for


def _vector(direction: float) -> FeatureVector:
    values = dict.fromkeys(FEATURE_NAMES, 0.0)
    return FeatureVector(**{**values, "direction": direction})


@given(st.lists(st.tuples(st.floats(0.1, 30.0), st.floats(-1.0, 1.0)), min_size=1, max_size=200),
       st.floats(1.0, 120.0))
def test_no_label_is_joined_before_its_horizon_has_passed(steps, horizon):
    joiner = LabelJoiner(horizon)
    ts, mid = 0.0, 100.0
    for dt, move in steps:
        ts += dt
        mid += move
        for labelled in joiner.update(ts, mid):
            assert labelled.labelled_at >= labelled.decision.ts + horizon
            assert labelled.labelled_at == ts  # the tick that closed the horizon, never a later one
        joiner.add(Decision(ts, mid, 0.02, _vector(1.0)))


def test_the_label_is_the_move_beyond_the_spread_and_the_meta_label_its_agreement_with_the_call():
    joiner = LabelJoiner(60.0)
    joiner.add(Decision(0.0, 100.0, 0.05, _vector(1.0)))
    joiner.add(Decision(1.0, 100.0, 0.05, _vector(-1.0)))
    joiner.add(Decision(2.0, 100.0, 0.50, _vector(1.0)))
    assert joiner.update(59.9, 100.3) == []
    first, second, third = joiner.update(62.0, 100.3)
    assert (first.outcome, first.hit) == (1, True)
    assert (second.outcome, second.hit) == (1, False)
    assert (third.outcome, third.hit) == (0, False)  # within the spread: no label either way


def test_a_horizon_that_ends_in_a_gap_or_a_session_break_is_dropped_and_counted():
    joiner = LabelJoiner(60.0)
    joiner.add(Decision(0.0, 100.0, 0.01, _vector(1.0)))
    assert joiner.update(500.0, 101.0) == []
    joiner.add(Decision(600.0, 100.0, 0.01, _vector(1.0)))
    joiner.new_period()
    assert joiner.dropped == 2
    assert not joiner.pending


def test_the_engines_training_rows_on_a_prefix_are_those_of_the_full_run_before_the_cut():
    """No look-ahead end to end: cut the data, and every row labelled before the cut is unchanged."""
    events = synthetic(SyntheticSource(days=1, session_minutes=40, seed=1001), calendar_for("equity-options"))
    spec: RunSpec = TrainSpec(horizon_seconds=30).run_spec()
    full = collect(events, spec)
    assert len(full) > 20, "the primary signal made too few calls to test anything"
    cut = events.start + (events.end - events.start) / 2
    prefix = collect(events.between(events.start, cut), spec)
    before = full.labelled_at < cut
    assert before.sum() == len(prefix) > 0
    assert (full.x[before] == prefix.x).all()
    assert (full.hit[before] == prefix.hit).all()
    assert (full.labelled_at >= full.decided_at + 30).all()
    assert not math.isnan(float(full.x.sum()))
