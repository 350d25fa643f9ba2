"""Pure analysis: judging one value, tallying a run, the verdict (Argo Rollouts semantics)."""

from __future__ import annotations

import pytest

from policies.loader import default_policies
from policies.models import AnalysisMetric, AnalysisPolicySpec, Comparison, NoData
from trading_operator.analysis import (
    OBJECTIVE,
    Query,
    Sample,
    Scope,
    judge,
    measured_mean,
    queries_for,
    record,
    settings_for,
)
from trading_operator.api import AnalysisKind, AnalysisPhase, AnalysisRun, RolloutSettings

NOW = "2026-11-25T00:00:00Z"
LATENCY = AnalysisMetric(query="q{ {{ selector }} }", passes=Comparison.BELOW, threshold=0.05,
                         baseline_tolerance=0.01, unit="s")
HIT_RATE = AnalysisMetric(query="h{ {{ selector }} }", passes=Comparison.ABOVE, threshold=-0.05,
                          no_data=NoData.SUCCESSFUL)
SETTINGS = settings_for(AnalysisPolicySpec(count=3, failure_limit=1, inconclusive_limit=2,
                                           consecutive_error_limit=2), RolloutSettings())


def latency(value: float | None = None, error: str | None = None, baseline: float | None = None):
    query = Query("latency", "q", LATENCY, "qb" if baseline is not None else None)
    return judge(query, Sample(value, error), Sample(baseline) if baseline is not None else None,
                 NoData.INCONCLUSIVE, NOW)


@pytest.mark.parametrize(
    ("value", "error", "baseline", "phase", "message"),
    [
        (0.01, None, None, AnalysisPhase.SUCCESSFUL, "0.01 s below 0.05 s"),
        (0.2, None, None, AnalysisPhase.FAILED, "0.2 s not below 0.05 s"),
        (0.05, None, None, AnalysisPhase.FAILED, "0.05 s not below 0.05 s"),
        (None, None, None, AnalysisPhase.INCONCLUSIVE, "no data (counts as inconclusive)"),
        (float("nan"), None, None, AnalysisPhase.INCONCLUSIVE, "no data"),
        (None, "Prometheus down", None, AnalysisPhase.ERROR, "Prometheus down"),
        (0.03, None, 0.01, AnalysisPhase.FAILED, "vs stable 0.01 s: worse by more than 0.01 s"),
        (0.015, None, 0.01, AnalysisPhase.SUCCESSFUL, "below"),
    ],
    ids=["passes", "fails", "threshold-is-strict", "no-data", "nan", "error", "worse-than-stable",
         "within-stable-tolerance"],
)
def test_judging_one_measurement(value, error, baseline, phase, message):
    measured = latency(value, error, baseline)
    assert measured.phase is phase
    assert message in measured.message


def test_no_data_meaning_can_be_set_per_metric():
    query = Query("hit-rate", "h", HIT_RATE)
    assert judge(query, Sample(), None, NoData.INCONCLUSIVE, NOW).phase is AnalysisPhase.SUCCESSFUL


def run_of(*phases_per_round: list) -> AnalysisRun:
    run = AnalysisRun(revision=2, kind=AnalysisKind.ROLLOUT, started_at=NOW)
    for measurements in phases_per_round:
        run = record(run, measurements, SETTINGS, NOW)
    return run


def test_enough_passing_measurements_make_a_successful_run():
    run = run_of([latency(0.01)], [latency(0.01)])
    assert run.phase is AnalysisPhase.RUNNING
    run = record(run, [latency(0.02)], SETTINGS, NOW)
    assert run.phase is AnalysisPhase.SUCCESSFUL
    assert run.finished_at == NOW
    assert "latency: 0.02 s below 0.05 s" in run.message


def test_failures_beyond_the_limit_fail_the_run_with_the_values():
    run = run_of([latency(0.2)], [latency(0.3)])
    assert run.phase is AnalysisPhase.FAILED
    assert "0.3 s not below 0.05 s" in run.message
    assert "2 failed, limit 1" in run.message


def test_a_run_does_not_succeed_on_a_failing_last_measurement():
    run = run_of([latency(0.01)], [latency(0.01)], [latency(0.2)])
    assert run.phase is AnalysisPhase.RUNNING  # one failure is within the limit: measure again
    assert record(run, [latency(0.01)], SETTINGS, NOW).phase is AnalysisPhase.SUCCESSFUL
    assert record(run, [latency(0.2)], SETTINGS, NOW).phase is AnalysisPhase.FAILED


def test_query_errors_in_a_row_end_the_run_inconclusive_never_failed():
    run = run_of(*[[latency(error="connection refused")]] * 3)
    assert run.phase is AnalysisPhase.INCONCLUSIVE
    assert "3 query errors in a row" in run.message
    assert "connection refused" in run.message


def test_an_answer_resets_the_consecutive_error_count():
    run = run_of([latency(error="x")], [latency(error="x")], [latency(0.01)], [latency(error="x")])
    assert run.phase is AnalysisPhase.RUNNING
    assert run.tallies[0].errors == 3
    assert run.tallies[0].consecutive_errors == 1


def test_too_many_inconclusive_measurements_end_the_run_inconclusive():
    run = run_of([latency()], [latency()], [latency()])
    assert run.phase is AnalysisPhase.INCONCLUSIVE


def test_a_finished_run_records_nothing_more():
    run = run_of([latency(0.2)], [latency(0.2)])
    assert record(run, [latency(0.01)], SETTINGS, NOW) == run


def test_kept_measurements_are_bounded():
    settings = settings_for(AnalysisPolicySpec(count=100, measurements_kept=4), RolloutSettings())
    run = AnalysisRun(revision=2, kind=AnalysisKind.ROLLOUT, started_at=NOW)
    for i in range(10):
        run = record(run, [latency(0.001 * i)], settings, NOW)
    assert len(run.measurements) == 4
    assert run.tallies[0].successful == 10


def test_spec_overrides_win_over_the_policy():
    settings = settings_for(AnalysisPolicySpec(count=5, failure_limit=1),
                            RolloutSettings(analysis_count=2, failure_limit=0))
    assert (settings.count, settings.failure_limit, settings.interval_seconds) == (2, 0, 2)


def test_queries_are_scoped_to_namespace_symbol_and_revision():
    slo = default_policies().slo["default"]
    queries = queries_for(slo, Scope("prod", "SPY", 3), baseline=Scope("prod", "SPY", 2))
    names = [q.metric for q in queries]
    assert names == ["tick-to-signal-latency", "error-ratio", "availability", "signal-hit-rate"]
    latency_query = queries[0]
    assert 'namespace="prod", revision="3", symbol="SPY"' in latency_query.promql
    assert latency_query.baseline_promql is not None
    assert 'revision="2"' in latency_query.baseline_promql
    assert queries[2].baseline_promql is None  # availability has no baseline tolerance


def test_the_tuning_objective_is_measured_as_its_mean():
    run = AnalysisRun(revision=2, kind=AnalysisKind.TUNING, started_at=NOW)
    objective = Query(OBJECTIVE, "o")
    for value in (0.5, 0.7, None):
        run = record(run, [judge(objective, Sample(value), None, NoData.INCONCLUSIVE, NOW)],
                     settings_for(AnalysisPolicySpec(count=10), RolloutSettings()), NOW)
    assert measured_mean(run, OBJECTIVE) == pytest.approx(0.6)
