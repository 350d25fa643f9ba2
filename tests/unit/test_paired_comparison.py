"""The paired comparison of a shadow run: pairing two revisions' calls on the same points and the judgement of
the candidate against stable on a confidence sequence (signal-calls-vs-stable)."""

from __future__ import annotations

import pytest

from policies.models import AnalysisMetric, AnalysisPolicySpec, Comparison, PairedDecisions
from trading_operator.analysis import PairedRequest, Query, Scope, judge_all, judge_paired, settings_for
from trading_operator.api import AnalysisPhase, RolloutSettings
from trading_operator.decisions import pick_pod
from trading_operator.pairing import Calls, PairedCounts, pair, parse_calls
from trading_runtime.signals.accuracy import AccuracyTracker

NOW = "2026-12-06T12:00:00Z"
CONFIDENCE = 0.95
PAIRED = AnalysisMetric(paired=PairedDecisions(), min_samples=8, sample_unit="discordant calls",
                        passes=Comparison.BELOW, threshold=0.05, required=False, unit="ratio")
QUERY = Query("signal-calls-vs-stable", "", PAIRED,
              paired=PairedRequest(Scope("ns", "SPY", 2), Scope("ns", "SPY", 1), "/decisions"))


def test_pairs_are_the_points_both_revisions_scored_and_both_called():
    candidate = Calls(3.0, {1: (1, 1), 2: (-1, 1), 3: (1, -1), 4: (0, 1), 5: (1, 1), 6: (-1, -1), 9: (1, 1)})
    stable = Calls(3.0, {1: (1, 1), 2: (1, 1), 3: (-1, -1), 4: (1, 1), 5: (-1, 1), 6: (1, 1), 7: (1, 1)})
    counts = pair(candidate, stable)
    # 1: both right; 2: stable only; 3: stable only; 4: candidate flat (no pair); 5: candidate only;
    # 6: realised signs differ (one of them missed a tick); 7, 9: scored by one only
    assert counts == PairedCounts(both=1, candidate_only=1, stable_only=2, neither=0, mismatched=1)
    assert (counts.pairs, counts.discordant) == (4, 3)


def test_revisions_with_different_horizons_are_not_paired():
    with pytest.raises(ValueError, match="horizons differ"):
        pair(Calls(3.0, {}), Calls(60.0, {}))


@pytest.mark.parametrize(("body", "why"), [
    ([], "not a JSON object"), ({"points": []}, "needs horizonSeconds"),
    ({"horizonSeconds": 0, "points": []}, "needs horizonSeconds > 0"),
    ({"horizonSeconds": 3, "points": [[1, 2, 1]]}, "not a point"),
    ({"horizonSeconds": 3, "points": [[1, 1, 0]]}, "not a point"),
    ({"horizonSeconds": 3, "points": [[1, 1]]}, "not a point"),
], ids=["not-an-object", "no-horizon", "zero-horizon", "direction-2", "actual-0", "short-point"])
def test_an_answer_that_is_not_scored_calls_is_refused(body, why):
    with pytest.raises(ValueError, match=why):
        parse_calls(body)


def test_the_runtime_answer_parses_to_its_points():
    tracker = AccuracyTracker(horizon=1.0)
    for ts, mid in enumerate([100.0, 101.0, 100.0, 102.0]):
        tracker.update(float(ts), mid, 0.01, 1)
    body = {"horizonSeconds": tracker.horizon,
            "points": [[p.slot, p.direction, p.actual] for p in tracker.decisions]}
    assert parse_calls(body) == Calls(1.0, {0: (1, 1), 1: (1, -1), 2: (1, 1)})


def test_two_trackers_on_the_same_ticks_take_the_same_points_whenever_they_started():
    """Points sit at the first tick at or after each multiple of the horizon in market time, so a process that
    started later scores the same points as one that ran all along (their slots pair)."""
    ticks = [(1000.0 + 0.7 * i, 100.0 + (i % 7) * 0.3) for i in range(60)]
    early, late = AccuracyTracker(horizon=3.0), AccuracyTracker(horizon=3.0)
    for ts, mid in ticks:
        early.update(ts, mid, 0.01, 1)
        if ts >= 1010.0:
            late.update(ts, mid, 0.01, 1)
    late_points = {p.slot: p for p in late.decisions}
    assert late_points
    assert all(p == late_points[p.slot] for p in early.decisions if p.slot in late_points)
    assert min(late_points) == 337  # 1011 = 337 × 3: the first multiple at or after the late start


@pytest.mark.parametrize(("counts", "phase", "text"), [
    # every call flipped on a market where stable is right 90 % of the time: a dozen pairs decide
    (PairedCounts(both=0, candidate_only=1, stable_only=12, neither=0), AnalysisPhase.FAILED,
     "worse than stable by 0.8462"),
    # the same, on too few pairs for the sequence to tell (past the floor of 8 discordant calls)
    (PairedCounts(both=0, candidate_only=1, stable_only=9, neither=0), AnalysisPhase.INCONCLUSIVE,
     "not surely below 0.05"),
    # the same code: the same calls, nothing to tell them apart
    (PairedCounts(both=120, candidate_only=0, stable_only=0, neither=20), AnalysisPhase.INCONCLUSIVE,
     "0 discordant calls, fewer than the 8 needed to judge"),
    (PairedCounts(both=10, candidate_only=0, stable_only=7, neither=1, mismatched=3), AnalysisPhase.INCONCLUSIVE,
     "7 discordant calls, fewer than the 8 needed to judge (stable right on 17, candidate on 10 of 18 paired "
     "calls; 3 points scored on different moves)"),
    # disagreeing, but evenly, on many pairs: surely no worse beyond the margin
    (PairedCounts(both=1500, candidate_only=15, stable_only=15, neither=300), AnalysisPhase.SUCCESSFUL,
     "worse than stable by 0 "),
    # somewhat worse on a fixed-sample interval (Newcombe's excluded the margin at 20 discordant calls), not
    # on a sequence that must hold at every look
    (PairedCounts(both=40, candidate_only=3, stable_only=17, neither=10), AnalysisPhase.INCONCLUSIVE,
     "not surely below 0.05"),
], ids=["flipped", "flipped-too-few", "identical", "too-few-discordant", "even", "worse-not-yet-sure"])
def test_the_candidate_fails_only_when_surely_worse_than_stable_by_more_than_the_margin(counts, phase, text):
    measured = judge_paired(QUERY, counts, CONFIDENCE, NOW)
    assert measured.phase is phase, measured.message
    assert text in measured.message
    assert measured.advisory is True
    if phase is AnalysisPhase.FAILED:
        assert measured.low is not None
        assert measured.low > 0.05
        assert "95% confidence sequence" in measured.message


def test_calls_that_cannot_be_read_are_inconclusive_never_failed():
    measured = judge_paired(QUERY, "no Ready pod of the candidate revision 2", CONFIDENCE, NOW)
    assert measured.phase is AnalysisPhase.INCONCLUSIVE
    assert measured.message == "no paired calls: no Ready pod of the candidate revision 2"


def test_judge_all_takes_paired_counts_by_metric_and_reads_no_prometheus_answer_for_them():
    settings = settings_for(AnalysisPolicySpec(), RolloutSettings())
    flipped = PairedCounts(both=0, candidate_only=3, stable_only=27, neither=0)
    [measured] = judge_all([QUERY], [], settings, NOW, {"signal-calls-vs-stable": flipped})
    assert measured.phase is AnalysisPhase.FAILED
    [unmeasured] = judge_all([QUERY], [], settings, NOW)
    assert unmeasured.phase is AnalysisPhase.INCONCLUSIVE


def _pod(name: str, revision: int, *, shadow: bool = False, ready: bool = True, ip: str = "10.0.0.1"):
    labels = {"trading.tradeops.io/revision": str(revision)}
    if shadow:
        labels["trading.tradeops.io/track"] = "shadow"
    return {"metadata": {"name": name, "labels": labels},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_the_calls_are_read_from_a_ready_pod_of_the_revision_on_its_own_track():
    pods = [_pod("a", 2, shadow=True, ready=False), _pod("b", 2), _pod("c", 1), _pod("d", 2, shadow=True)]
    candidate = pick_pod(pods, 2, shadow=True)
    stable = pick_pod(pods, 1, shadow=False)
    assert candidate is not None
    assert candidate["metadata"]["name"] == "d"  # "a" is not Ready, "b" is revision 2 on the main track
    assert stable is not None
    assert stable["metadata"]["name"] == "c"
    assert pick_pod(pods, 3, shadow=False) is None
