"""Analysis, pure: which queries a run makes, how a measured value is judged, and the run's verdict.

The vocabulary is Argo Rollouts': a run takes `count` measurements of every metric, `interval` apart;
more than `failureLimit` failures of a metric fail the run, more than `inconclusiveLimit` inconclusive
measurements (or more than `consecutiveErrorLimit` query errors in a row) end it Inconclusive — which
never rolls back. Prometheus access is elsewhere (`prometheus.py`); this module sees only numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from policies.models import AnalysisMetric, AnalysisPolicySpec, NoData, SLOPolicySpec, TuningObjective
from policies.templates import render, selector
from trading_operator.api import (
    AnalysisPhase,
    AnalysisRun,
    Measurement,
    MetricTally,
    RolloutSettings,
)

OBJECTIVE = "objective"
"""Metric name of the tuning objective in a run's measurements."""


@dataclass(frozen=True)
class AnalysisSettings:
    """The analysis policy with a symbol's overrides applied."""

    interval_seconds: int
    count: int
    initial_delay_seconds: int
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    no_data: NoData
    measurements_kept: int


def settings_for(policy: AnalysisPolicySpec, overrides: RolloutSettings) -> AnalysisSettings:
    def pick(override: int | None, default: int) -> int:
        return default if override is None else override

    return AnalysisSettings(
        interval_seconds=pick(overrides.analysis_interval_seconds, policy.interval_seconds),
        count=pick(overrides.analysis_count, policy.count),
        initial_delay_seconds=policy.initial_delay_seconds,
        failure_limit=pick(overrides.failure_limit, policy.failure_limit),
        inconclusive_limit=pick(overrides.inconclusive_limit, policy.inconclusive_limit),
        consecutive_error_limit=policy.consecutive_error_limit,
        no_data=policy.no_data,
        measurements_kept=policy.measurements_kept,
    )


@dataclass(frozen=True)
class Scope:
    """The series a query covers: one symbol's pods of one revision."""

    namespace: str
    symbol: str
    revision: int

    def selector(self) -> str:
        return selector({"namespace": self.namespace, "symbol": self.symbol, "revision": str(self.revision)})


@dataclass(frozen=True)
class Query:
    """One metric of a measurement: its PromQL, the baseline's (shadow runs) and how it is judged."""

    metric: str
    promql: str
    check: AnalysisMetric | None = None
    """None for the tuning objective (measured, not judged against a threshold)."""
    baseline_promql: str | None = None


def queries_for(
    slos: SLOPolicySpec, scope: Scope, baseline: Scope | None = None, objective: TuningObjective | None = None
) -> list[Query]:
    """The queries of one measurement: every SLO with an analysis metric, plus the objective when tuning."""
    queries = []
    for slo in slos.slos:
        if slo.analysis is None:
            continue
        check = slo.analysis
        baseline_promql = (
            render(check.query, baseline.selector(), check.window)
            if baseline is not None and check.baseline_tolerance is not None
            else None
        )
        queries.append(Query(slo.name, render(check.query, scope.selector(), check.window), check, baseline_promql))
    if objective is not None:
        queries.append(objective_query(objective, scope))
    return queries


def objective_query(objective: TuningObjective, scope: Scope) -> Query:
    return Query(OBJECTIVE, render(objective.query, scope.selector(), objective.window))


@dataclass(frozen=True)
class Sample:
    """What a query returned: a value, no data (value None, no error) or an error."""

    value: float | None = None
    error: str | None = None


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "no data"
    text = f"{value:.4g}"
    return f"{text} {unit}".rstrip() if unit and unit != "ratio" else text


def judge(query: Query, sample: Sample, baseline: Sample | None, no_data: NoData, now: str) -> Measurement:
    """One measurement of one metric."""
    if sample.error is not None:
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.ERROR, message=sample.error)
    value = sample.value
    if value is None or math.isnan(value):
        meaning = (query.check.no_data if query.check and query.check.no_data else no_data)
        phase = {NoData.INCONCLUSIVE: AnalysisPhase.INCONCLUSIVE, NoData.FAILED: AnalysisPhase.FAILED,
                 NoData.SUCCESSFUL: AnalysisPhase.SUCCESSFUL}[meaning]
        return Measurement(time=now, metric=query.metric, phase=phase, message=f"no data (counts as {meaning})")
    check = query.check
    if check is None:
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.SUCCESSFUL, value=value,
                           message=f"objective {_fmt(value)}")
    relation = "below" if check.passes.value == "below" else "above"
    if not check.passed(value):
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.FAILED, value=value,
                           message=f"{_fmt(value, check.unit)} not {relation} {_fmt(check.threshold, check.unit)}")
    base = baseline.value if baseline is not None and baseline.error is None else None
    if base is not None and not math.isnan(base) and not check.within_baseline(value, base):
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.FAILED, value=value, baseline=base,
                           message=f"{_fmt(value, check.unit)} vs stable {_fmt(base, check.unit)}: worse by more "
                                   f"than {_fmt(check.baseline_tolerance, check.unit)}")
    return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.SUCCESSFUL, value=value, baseline=base,
                       message=f"{_fmt(value, check.unit)} {relation} {_fmt(check.threshold, check.unit)}")


def _tally(tally: MetricTally, measurement: Measurement) -> MetricTally:
    phase = measurement.phase
    return tally.model_copy(update={
        "successful": tally.successful + (phase is AnalysisPhase.SUCCESSFUL),
        "failed": tally.failed + (phase is AnalysisPhase.FAILED),
        "inconclusive": tally.inconclusive + (phase is AnalysisPhase.INCONCLUSIVE),
        "errors": tally.errors + (phase is AnalysisPhase.ERROR),
        "consecutive_errors": tally.consecutive_errors + 1 if phase is AnalysisPhase.ERROR else 0,
    })


def verdict(run: AnalysisRun, settings: AnalysisSettings) -> tuple[AnalysisPhase, str]:
    """Running, or a verdict with its reasons (the failing values first)."""
    latest = {m.metric: m for m in run.measurements}
    failed = [t for t in run.tallies if t.failed > settings.failure_limit]
    if failed:
        reasons = [f"{t.metric}: {latest[t.metric].message if t.metric in latest else ''} "
                   f"({t.failed} failed, limit {settings.failure_limit})" for t in failed]
        return AnalysisPhase.FAILED, "; ".join(reasons)
    erroring = [t for t in run.tallies if t.consecutive_errors > settings.consecutive_error_limit]
    if erroring:
        detail = latest[erroring[0].metric].message if erroring[0].metric in latest else ""
        return AnalysisPhase.INCONCLUSIVE, (f"metrics unavailable: {erroring[0].consecutive_errors} query errors "
                                            f"in a row ({detail})")
    inconclusive = [t for t in run.tallies if t.inconclusive > settings.inconclusive_limit]
    if inconclusive:
        names = ", ".join(t.metric for t in inconclusive)
        return AnalysisPhase.INCONCLUSIVE, f"{names}: more than {settings.inconclusive_limit} inconclusive measurements"
    # `count` judged measurements of every metric (no data is not evidence), and none ends on a failure:
    # a failure within the limit is measured again.
    done = run.tallies and all(t.successful + t.failed >= settings.count for t in run.tallies) \
        and not any(m.phase is AnalysisPhase.FAILED for m in latest.values())
    if done:
        values = "; ".join(f"{m.metric}: {m.message}" for m in latest.values())
        return AnalysisPhase.SUCCESSFUL, f"{settings.count} measurements passed ({values})"
    return AnalysisPhase.RUNNING, ""


def record(run: AnalysisRun, measurements: list[Measurement], settings: AnalysisSettings, now: str) -> AnalysisRun:
    """The run after one more measurement of every metric, with its verdict."""
    if run.phase is not AnalysisPhase.RUNNING:
        return run
    tallies = {t.metric: t for t in run.tallies}
    for measurement in measurements:
        tallies[measurement.metric] = _tally(tallies.get(measurement.metric, MetricTally(metric=measurement.metric)),
                                             measurement)
    kept = [*run.measurements, *measurements][-settings.measurements_kept:]
    updated = run.model_copy(update={"tallies": list(tallies.values()), "measurements": kept})
    phase, message = verdict(updated, settings)
    if phase is AnalysisPhase.RUNNING:
        return updated
    return updated.model_copy(update={"phase": phase, "message": message, "finished_at": now})


def measured_mean(run: AnalysisRun, metric: str) -> float | None:
    """Mean of a metric's measured values among the kept measurements (the tuning objective)."""
    values = [m.value for m in run.measurements if m.metric == metric and m.value is not None]
    return sum(values) / len(values) if values else None
