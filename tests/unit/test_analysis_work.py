"""What the analysis loop measures next: a run after its delay, the stable revision, a tuning baseline."""

from __future__ import annotations

import pytest

from policies.loader import default_policies
from trading_operator.analysis_work import WorkKind, next_work
from trading_operator.api import (
    AnalysisKind,
    AnalysisPhase,
    AnalysisRun,
    BackgroundState,
    Condition,
    ConditionStatus,
    Measurement,
    Phase,
    TradingSymbolSpec,
    TradingSymbolStatus,
    TuningState,
)
from trading_operator.rollout import resolve_policies

SPEC = TradingSymbolSpec.model_validate({"symbol": "SPY", "market": "equity-options",
                                         "image": "ghcr.io/tradeops/runtime:1.0.0"})
TUNED = SPEC.model_copy(update={"policies": SPEC.policies.model_copy(update={"tuning": "hit-rate"})})


def at(seconds: int) -> str:
    return f"2026-11-25T10:{seconds // 60:02d}:{seconds % 60:02d}Z"


def steady(**fields: object) -> TradingSymbolStatus:
    base: dict[str, object] = {"phase": Phase.READY, "current_revision": 2, "stable_revision": 2,
                               "update_revision": 2}
    return TradingSymbolStatus.model_validate({**base, **fields})


def work(spec: TradingSymbolSpec, status: TradingSymbolStatus, now: str, frozen: bool = False,
         last: str | None = None):
    return next_work("prod", spec, status, last, resolve_policies(default_policies(), spec), frozen, now)


def test_a_running_analysis_waits_for_its_initial_delay_then_measures_every_metric_of_its_revision():
    status = TradingSymbolStatus(phase=Phase.PROGRESSING, current_revision=3, stable_revision=2,
                                 analysis=AnalysisRun(revision=3, kind=AnalysisKind.ROLLOUT, started_at=at(0)))
    # The shipped policy: the first measurement 2 s in, then every second.
    assert work(SPEC, status, at(1)) == (None, 1)
    found, delay = work(SPEC, status, at(2))
    assert found is not None
    assert found.kind is WorkKind.RUN
    assert delay == 1
    assert [q.metric for q in found.queries] == ["tick-to-signal-latency", "error-ratio", "availability",
                                                 "signal-hit-rate"]
    assert all('revision="3"' in q.promql for q in found.queries)
    assert found.started_at == at(0)


def test_a_running_analysis_is_measured_an_interval_after_its_last_measurement():
    """The status write that records a measurement wakes the loop at once: it must wait out the interval."""
    measured = AnalysisRun(revision=3, kind=AnalysisKind.ROLLOUT, started_at=at(0), measurements=[
        Measurement(time=at(4), metric="error-ratio", phase=AnalysisPhase.SUCCESSFUL),
        Measurement(time=at(6), metric="error-ratio", phase=AnalysisPhase.SUCCESSFUL)])
    status = TradingSymbolStatus(phase=Phase.PROGRESSING, current_revision=3, stable_revision=2, analysis=measured)
    interval = resolve_policies(default_policies(), SPEC).analysis.interval_seconds
    assert work(SPEC, status, at(6)) == (None, interval)
    found, delay = work(SPEC, status, at(6 + interval))
    assert found is not None
    assert found.kind is WorkKind.RUN
    assert delay == interval


@pytest.mark.parametrize(("status", "last", "now", "delay"), [
    (steady(), at(0), at(3), 7),
    (steady(phase=Phase.INVALID), None, at(0), 10),
    (TradingSymbolStatus(phase=Phase.PROGRESSING, current_revision=3, stable_revision=2), None, at(0), 10),
], ids=["until-the-next-background-measurement", "invalid", "rolling-without-a-run"])
def test_with_nothing_due_the_next_look_is_when_time_makes_something_due(status, last, now, delay):
    """Not a poll every second: changes wake the loop (symbol_scheduler); time alone at the declared interval."""
    assert work(SPEC, status, now, last=last) == (None, delay)


def test_a_settling_tuned_symbol_is_looked_at_when_it_has_settled():
    settle = resolve_policies(default_policies(), TUNED).tuning.settle_seconds
    status = steady(stable_since=at(0), tuning=TuningState(policy="hit-rate", generation=1))
    found, delay = work(TUNED, status, at(1), last=at(0))
    assert found is None
    assert delay == min(9, settle - 1)


def test_a_shadow_run_also_queries_the_stable_baseline():
    status = TradingSymbolStatus(phase=Phase.PROGRESSING, current_revision=2, stable_revision=2,
                                 analysis=AnalysisRun(revision=3, kind=AnalysisKind.SHADOW, started_at=at(0),
                                                      baseline_revision=2))
    found, _ = work(SPEC, status, at(10))
    assert found is not None
    assert 'revision="2"' in (found.queries[0].baseline_promql or "")


def test_the_stable_revision_is_measured_every_background_interval():
    found, _ = work(SPEC, steady(), at(0))
    assert found is not None
    assert found.kind is WorkKind.BACKGROUND
    assert work(SPEC, steady(), at(5), last=at(0))[0] is None
    later = work(SPEC, steady(), at(10), last=at(0))[0]
    assert later is not None
    assert later.kind is WorkKind.BACKGROUND


def test_paused_invalid_or_rolling_symbols_are_not_measured():
    assert work(SPEC.model_copy(update={"paused": True}), steady(), at(0))[0] is None
    assert work(SPEC, steady(phase=Phase.INVALID), at(0))[0] is None
    rolling = TradingSymbolStatus(phase=Phase.PROGRESSING, current_revision=3, stable_revision=2)
    assert work(SPEC, rolling, at(0))[0] is None


def tuning_status(**tuning: object) -> TradingSymbolStatus:
    return steady(stable_since=at(0), tuning=TuningState(policy="hit-rate", **tuning))


MEASURED = at(400)
"""The stable revision's last background measurement in the tuning cases."""


def test_a_tuning_baseline_is_measured_once_settled_out_of_cooldown_and_not_frozen():
    found, _ = work(TUNED, tuning_status(), at(405), last=MEASURED)
    assert found is not None
    assert found.kind is WorkKind.TUNING_BASELINE
    assert [q.metric for q in found.queries] == ["objective"]
    assert work(TUNED, tuning_status(), at(405), frozen=True, last=MEASURED)[0] is None
    assert work(TUNED, tuning_status(), at(100), last=MEASURED)[0] is None  # settleSeconds is 300
    assert work(TUNED, tuning_status(last_change_at=at(100)), at(405), last=MEASURED)[0] is None  # cooldown
    assert work(TUNED, tuning_status(candidate={"strategy.entryScore": 0.7}), at(405), last=MEASURED)[0] is None
    assert work(TUNED, tuning_status(converged=True), at(405), last=MEASURED)[0] is None


def test_a_disabled_tuning_policy_never_proposes():
    status = tuning_status()
    assert work(SPEC, status, at(405), last=MEASURED)[0] is None  # `default` tuning is off


def ready_since(seconds: int) -> list[Condition]:
    return [Condition(type="Ready", status=ConditionStatus.TRUE, reason="AllReplicasReady",
                      last_transition_time=at(seconds))]


@pytest.mark.parametrize(
    ("status", "now", "window"),
    [
        (steady(stable_since=at(0)), 10, None),
        (steady(stable_since=at(0)), 32, "[12s]"),
        (steady(stable_since=at(0)), 120, "[30s]"),
        (steady(stable_since=at(0), background=BackgroundState(restarted_at=at(100))), 115, None),
        (steady(stable_since=at(0), background=BackgroundState(restarted_at=at(100))), 125, "[5s]"),
        (steady(stable_since=at(0), conditions=ready_since(200)), 230, "[10s]"),
        (steady(), 0, "[30s]"),
    ],
    ids=["promoted-still-warming-up", "promoted-warm-window-since", "long-promoted-whole-window",
         "restarted-by-the-operator-still-warming-up", "measured-from-the-restart-plus-warm-up",
         "measured-from-pods-turning-ready", "no-start-known-whole-window"],
)
def test_background_analysis_excludes_the_start_and_warm_up_of_the_stable_pods(status, now, window):
    found, delay = work(SPEC, status, at(now))
    if window is None:
        assert found is None
        assert 0 < delay <= 10
    else:
        assert found is not None
        assert found.kind is WorkKind.BACKGROUND
        assert all(window in q.promql for q in found.queries if q.metric != "signal-hit-rate")


def test_an_alerts_request_measures_the_stable_revision_now_once():
    status = steady()
    policies = resolve_policies(default_policies(), SPEC)
    # Between intervals, nothing is due; an alert's request at 00:03 makes the stable revision due at once.
    assert next_work("prod", SPEC, status, at(0), policies, False, at(5))[0] is None
    found, _ = next_work("prod", SPEC, status, at(0), policies, False, at(5), analysis_requested=at(3))
    assert found is not None
    assert (found.kind, found.revision) == (WorkKind.BACKGROUND, 2)
    # The measurement it caused (at 00:05) answers it: the request does not measure again.
    assert next_work("prod", SPEC, status, at(5), policies, False, at(6), analysis_requested=at(3))[0] is None
    # A revision that is rolling out is not "stable" analysis: the request waits for its run's verdict.
    rolling = TradingSymbolStatus(phase=Phase.PROGRESSING, current_revision=3, stable_revision=2,
                                  analysis=AnalysisRun(revision=3, kind=AnalysisKind.ROLLOUT, started_at=at(0)))
    found, _ = next_work("prod", SPEC, rolling, at(0), policies, False, at(10), analysis_requested=at(3))
    assert found is not None
    assert found.kind is WorkKind.RUN
