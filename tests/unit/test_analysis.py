"""Pure analysis: judging one value, tallying a run, the verdict (Argo Rollouts semantics)."""

from __future__ import annotations

import pytest

from policies.loader import default_policies
from policies.models import AnalysisMetric, AnalysisPolicySpec, Comparison, RatioQueries
from trading_operator.analysis import (
    OBJECTIVE,
    Query,
    Sample,
    Scope,
    expressions,
    judge,
    judge_all,
    measured_mean,
    queries_for,
    record,
    settings_for,
)
from trading_operator.api import AnalysisKind, AnalysisPhase, AnalysisRun, RolloutSettings
from trading_operator.intervals import z_for

NOW = "2026-11-25T00:00:00Z"
Z = z_for(0.9)
LATENCY = AnalysisMetric(ratio=RatioQueries(events="slow{ {{ selector }} }", trials="ticks{ {{ selector }} }"),
                         passes=Comparison.BELOW, threshold=0.05, baseline_tolerance=0.02, min_samples=100,
                         sample_unit="ticks over 50 ms", unit="ratio")
AVAILABILITY = AnalysisMetric(ratio=RatioQueries(events="up{ {{ selector }} }", trials="n{ {{ selector }} }"),
                              passes=Comparison.ABOVE, threshold=0.9, min_samples=20, sample_unit="scrapes",
                              required=False)
HIT_RATE = AnalysisMetric(ratio=RatioQueries(events="h{ {{ selector }} }", trials="c{ {{ selector }} }",
                                             reference="b{ {{ selector }} }"),
                          passes=Comparison.ABOVE, threshold=-0.05, min_samples=30, sample_unit="calls",
                          required=False)
P95 = AnalysisMetric(query="p95{ {{ selector }} }", samples="n{ {{ selector }} }", passes=Comparison.BELOW,
                     threshold=0.05, min_samples=50, unit="s")
SETTINGS = settings_for(AnalysisPolicySpec(count=3, failure_limit=1, inconclusive_limit=2,
                                           consecutive_error_limit=2), RolloutSettings())


def measure(check: AnalysisMetric, *values: float | None, error: str | None = None, metric: str = "latency",
            baseline: bool = False):
    """Judge one measurement of `check` given the answers to its expressions, in order."""
    query = Query(metric, "v", check, "n", "r" if check.ratio and check.ratio.reference else None,
                  "bv" if baseline else None, "bn" if baseline else None)
    answers = [Sample(v) for v in values]
    if error is not None:
        answers[0] = Sample(error=error)
    assert len(answers) == len(query.expressions())
    return judge(query, answers, Z, NOW)


def latency(slow: float | None = None, ticks: float | None = 1000, error: str | None = None):
    return measure(LATENCY, slow, ticks, error=error)


@pytest.mark.parametrize(
    ("check", "values", "phase", "message"),
    [
        (LATENCY, (3, 1000), AnalysisPhase.SUCCESSFUL, "0.003 (3 of 1000 ticks over 50 ms)"),
        (LATENCY, (900, 1000), AnalysisPhase.FAILED, "0.9 (900 of 1000 ticks over 50 ms)"),
        (LATENCY, (5, 20), AnalysisPhase.INCONCLUSIVE, "20 ticks over 50 ms, fewer than the 100 needed"),
        (LATENCY, (20, 20), AnalysisPhase.INCONCLUSIVE, "fewer than the 100 needed"),
        (LATENCY, (6, 120), AnalysisPhase.INCONCLUSIVE, "not surely below 0.05 (the interval straddles it)"),
        (LATENCY, (60, 1200), AnalysisPhase.INCONCLUSIVE, "straddles"),
        (LATENCY, (None, None), AnalysisPhase.INCONCLUSIVE, "no data"),
        (LATENCY, (float("nan"), 1000), AnalysisPhase.INCONCLUSIVE, "no data"),
        (AVAILABILITY, (30, 30), AnalysisPhase.SUCCESSFUL, "1 (30 of 30 scrapes)"),
        (AVAILABILITY, (29, 30), AnalysisPhase.INCONCLUSIVE, "straddles"),
        (AVAILABILITY, (5, 6), AnalysisPhase.INCONCLUSIVE, "6 scrapes, fewer than the 20 needed"),
        (AVAILABILITY, (10, 30), AnalysisPhase.FAILED, "not above 0.9"),
        (HIT_RATE, (2, 4, 4), AnalysisPhase.INCONCLUSIVE, "4 calls, fewer than the 30 needed"),
        (HIT_RATE, (20, 40, 22), AnalysisPhase.INCONCLUSIVE, "straddles"),
        (HIT_RATE, (300, 600, 420), AnalysisPhase.FAILED, "-0.2 (300 vs 420 of 600 calls)"),
        (HIT_RATE, (330, 600, 300), AnalysisPhase.SUCCESSFUL, "0.05 (330 vs 300 of 600 calls)"),
        (P95, (0.01, 500), AnalysisPhase.SUCCESSFUL, "0.01 s over 500 samples below 0.05 s"),
        (P95, (0.2, 500), AnalysisPhase.FAILED, "0.2 s over 500 samples not below 0.05 s"),
        (P95, (0.05, 500), AnalysisPhase.FAILED, "not below"),
        (P95, (0.2, 10), AnalysisPhase.INCONCLUSIVE, "10 samples, fewer than the 50 needed"),
    ],
    ids=["latency-clearly-good", "latency-clearly-bad", "few-ticks", "few-ticks-all-slow-is-not-failed",
         "latency-straddling", "latency-at-threshold-straddles", "no-data", "nan", "availability-good",
         "one-missed-scrape-of-thirty-straddles", "few-scrapes", "availability-clearly-bad", "few-calls",
         "hit-rate-straddling", "hit-rate-clearly-below-baseline", "hit-rate-clearly-good", "p95-good",
         "p95-bad", "p95-threshold-is-strict", "p95-few-samples"],
)
def test_judging_one_measurement(check, values, phase, message):
    measured = measure(check, *values)
    assert measured.phase is phase, measured.message
    assert message in measured.message


def test_a_ratio_measurement_records_its_counts_and_interval():
    measured = latency(50, 1000)
    assert measured.value == pytest.approx(0.05)
    assert measured.samples == 1000
    assert measured.low is not None
    assert measured.high is not None
    assert measured.low < 0.05 < measured.high
    assert measured.advisory is None
    assert measure(AVAILABILITY, 30, 30).advisory is True


def test_a_query_error_is_an_error_never_a_verdict():
    measured = latency(error="Prometheus down")
    assert measured.phase is AnalysisPhase.ERROR
    assert measured.message == "Prometheus down"


@pytest.mark.parametrize(
    ("candidate", "stable", "phase", "message"),
    [
        ((2, 1000), (1, 1000), AnalysisPhase.SUCCESSFUL, "below 0.05"),
        ((45, 1000), (1, 1000), AnalysisPhase.FAILED, "worse by more than 0.02"),
        ((15, 1000), (1, 1000), AnalysisPhase.INCONCLUSIVE, "not surely within 0.02"),
        ((2, 1000), (0, 10), AnalysisPhase.INCONCLUSIVE, "10 ticks over 50 ms, fewer than the 100 needed"),
        ((2, 1000), (None, None), AnalysisPhase.INCONCLUSIVE, "no data for the stable revision"),
        ((900, 1000), (None, None), AnalysisPhase.FAILED, "not below 0.05"),
    ],
    ids=["like-stable", "clearly-worse-than-stable", "maybe-worse", "stable-has-too-few-samples",
         "stable-has-no-data", "failing-on-its-own-needs-no-stable"],
)
def test_shadow_runs_compare_with_the_stable_revision_by_interval(candidate, stable, phase, message):
    measured = measure(LATENCY, *candidate, *stable, baseline=True)
    assert measured.phase is phase, measured.message
    assert message in measured.message


def test_measurements_are_judged_from_the_flattened_answers_in_order():
    queries = [Query("latency", "v1", LATENCY, "n1"), Query("availability", "v2", AVAILABILITY, "n2"),
               Query(OBJECTIVE, "o")]
    assert expressions(queries) == ["v1", "n1", "v2", "n2", "o"]
    measured = judge_all(queries, [Sample(900), Sample(1000), Sample(30), Sample(30), Sample(0.6)], SETTINGS, NOW)
    assert [m.phase for m in measured] == [AnalysisPhase.FAILED, AnalysisPhase.SUCCESSFUL,
                                           AnalysisPhase.SUCCESSFUL]
    assert measured[2].value == 0.6


def run_of(*phases_per_round: list) -> AnalysisRun:
    run = AnalysisRun(revision=2, kind=AnalysisKind.ROLLOUT, started_at=NOW)
    for measurements in phases_per_round:
        run = record(run, measurements, SETTINGS, NOW)
    return run


def test_enough_passing_measurements_make_a_successful_run():
    run = run_of([latency(10)], [latency(10)])
    assert run.phase is AnalysisPhase.RUNNING
    run = record(run, [latency(20)], SETTINGS, NOW)
    assert run.phase is AnalysisPhase.SUCCESSFUL
    assert run.finished_at == NOW
    assert "latency: 0.02 (20 of 1000 ticks over 50 ms)" in run.message


def test_failures_beyond_the_limit_fail_the_run_with_the_values():
    run = run_of([latency(200)], [latency(300)])
    assert run.phase is AnalysisPhase.FAILED
    assert "0.3 (300 of 1000 ticks over 50 ms)" in run.message
    assert "not below 0.05" in run.message
    assert "2 failed, limit 1" in run.message


def test_a_run_does_not_succeed_on_a_failing_last_measurement():
    run = run_of([latency(10)], [latency(10)], [latency(200)])
    assert run.phase is AnalysisPhase.RUNNING  # one failure is within the limit: measure again
    assert record(run, [latency(10)], SETTINGS, NOW).phase is AnalysisPhase.SUCCESSFUL
    assert record(run, [latency(200)], SETTINGS, NOW).phase is AnalysisPhase.FAILED


def test_a_handful_of_bad_samples_never_fails_a_run():
    run = run_of(*[[latency(30, 30)]] * 3)  # every tick slow, but only 30 of them each time
    assert run.phase is AnalysisPhase.INCONCLUSIVE
    assert "fewer than the 100 needed" in run.message
    assert run.tallies[0].failed == 0


def test_query_errors_in_a_row_end_the_run_inconclusive_never_failed():
    run = run_of(*[[latency(error="connection refused")]] * 3)
    assert run.phase is AnalysisPhase.INCONCLUSIVE
    assert "3 query errors in a row" in run.message
    assert "connection refused" in run.message


def test_an_answer_resets_the_consecutive_error_count():
    run = run_of([latency(error="x")], [latency(error="x")], [latency(10)], [latency(error="x")])
    assert run.phase is AnalysisPhase.RUNNING
    assert run.tallies[0].errors == 3
    assert run.tallies[0].consecutive_errors == 1


def test_too_many_inconclusive_measurements_end_the_run_inconclusive():
    run = run_of([latency()], [latency()], [latency()])
    assert run.phase is AnalysisPhase.INCONCLUSIVE


def availability(up: float, scrapes: float):
    return measure(AVAILABILITY, up, scrapes, metric="availability")


def test_an_advisory_metric_that_cannot_be_judged_neither_holds_nor_ends_a_run():
    run = run_of(*[[latency(10), availability(8, 8)]] * 3)
    assert run.phase is AnalysisPhase.SUCCESSFUL
    assert "availability: 8 scrapes, fewer than the 20 needed" in run.message


def test_an_advisory_metric_clearly_failing_fails_the_run():
    run = run_of(*[[latency(10), availability(5, 30)]] * 2)
    assert run.phase is AnalysisPhase.FAILED
    assert run.message.startswith("availability: ")


def test_a_run_of_advisory_metrics_only_ends_after_count_measurements():
    run = run_of([availability(8, 8)], [availability(8, 8)])
    assert run.phase is AnalysisPhase.RUNNING
    assert record(run, [availability(8, 8)], SETTINGS, NOW).phase is AnalysisPhase.SUCCESSFUL


def test_a_finished_run_records_nothing_more():
    run = run_of([latency(200)], [latency(200)])
    assert record(run, [latency(10)], SETTINGS, NOW) == run


def test_kept_measurements_are_bounded():
    settings = settings_for(AnalysisPolicySpec(count=100, measurements_kept=4), RolloutSettings())
    run = AnalysisRun(revision=2, kind=AnalysisKind.ROLLOUT, started_at=NOW)
    for i in range(10):
        run = record(run, [latency(i)], settings, NOW)
    assert len(run.measurements) == 4
    assert run.tallies[0].successful == 10


def test_spec_overrides_win_over_the_policy():
    settings = settings_for(AnalysisPolicySpec(count=5, failure_limit=1, interval_seconds=2),
                            RolloutSettings(analysis_count=2, failure_limit=0))
    assert (settings.count, settings.failure_limit, settings.interval_seconds) == (2, 0, 2)


def test_queries_are_scoped_to_namespace_symbol_and_revision():
    slo = default_policies().slo["default"]
    queries = queries_for(slo, Scope("prod", "SPY", 3), baseline=Scope("prod", "SPY", 2))
    names = [q.metric for q in queries]
    assert names == ["tick-to-signal-latency", "error-ratio", "availability", "signal-hit-rate",
                     "signal-calls-vs-stable"]
    paired = queries[4].paired
    assert paired is not None
    assert queries[4].expressions() == []  # read from the pods, not Prometheus
    assert (paired.candidate.revision, paired.stable.revision, paired.path) == (3, 2, "/decisions")
    # Without a stable revision beside the candidate (a rollout, background analysis) there is nothing to pair.
    assert "signal-calls-vs-stable" not in [q.metric for q in queries_for(slo, Scope("prod", "SPY", 3))]
    latency_query = queries[0]
    assert 'namespace="prod", revision="3", symbol="SPY"' in latency_query.promql
    assert latency_query.baseline_promql is not None
    assert 'revision="2"' in latency_query.baseline_promql
    assert queries[2].baseline_promql is None  # availability has no baseline tolerance


def test_the_tuning_objective_is_measured_as_its_mean():
    run = AnalysisRun(revision=2, kind=AnalysisKind.TUNING, started_at=NOW)
    objective = Query(OBJECTIVE, "o")
    for value in (0.5, 0.7, None):
        run = record(run, [judge(objective, [Sample(value)], Z, NOW)],
                     settings_for(AnalysisPolicySpec(count=10), RolloutSettings()), NOW)
    assert measured_mean(run, OBJECTIVE) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("since", "window"), [(None, "[30s]"), (12, "[12s]"), (0, "[1s]"), (600, "[30s]")],
    ids=["whole-window", "since-start", "at-least-a-second", "never-longer-than-the-window"],
)
def test_windows_are_shortened_to_the_time_since_the_pods_started(since, window):
    slo = default_policies().slo["default"]
    latency_query = queries_for(slo, Scope("prod", "SPY", 3), since_seconds=since)[0]
    assert window in latency_query.promql
    assert latency_query.count_promql is not None
    assert window in latency_query.count_promql
