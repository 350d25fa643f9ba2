"""Analysis, pure: which queries a run makes, how a measured value is judged, and the run's verdict.

The vocabulary is Argo Rollouts': a run takes `count` measurements of every metric, `interval` apart;
more than `failureLimit` failures of a metric fail the run, more than `inconclusiveLimit` inconclusive
measurements (or more than `consecutiveErrorLimit` query errors in a row) end it Inconclusive — which
never rolls back. Prometheus access is elsewhere (`prometheus.py`); this module sees only numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from policies.models import (
    AnalysisMetric,
    AnalysisPolicySpec,
    Comparison,
    SLOPolicySpec,
    TuningObjective,
    duration_seconds,
)
from policies.templates import render, selector
from trading_operator.api import (
    AnalysisPhase,
    AnalysisRun,
    Measurement,
    MetricTally,
    RolloutSettings,
    TradingSymbolSpec,
    TradingSymbolStatus,
)
from trading_operator.confidence_sequence import mean_sequence
from trading_operator.intervals import difference, wilson, z_for
from trading_operator.pairing import PairedCounts
from trading_operator.timestamps import seconds_between

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
    confidence: float
    measurements_kept: int

    @property
    def z(self) -> float:
        return z_for(self.confidence)


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
        confidence=policy.confidence,
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


def revision_due(measured: bool, spec: TradingSymbolSpec, status: TradingSymbolStatus, last_checked: str | None,
                 now: str, every: float) -> int | None:
    """The current revision, when a periodic check of it is due: the symbol has something to measure, pods run,
    and `every` seconds passed since the last check."""
    if not measured or not status.current_revision or spec.replicas == 0:
        return None
    if last_checked is not None and seconds_between(last_checked, now) < every:
        return None
    return status.current_revision


@dataclass(frozen=True)
class PairedRequest:
    """A paired metric's measurement: the calls of the candidate's pods (the shadow) and of the stable
    revision's, read from `path` on their metrics port."""

    candidate: Scope
    stable: Scope
    path: str


@dataclass(frozen=True)
class Query:
    """The PromQL of one metric's measurement, and how it is judged.

    `promql` is the value (value metrics, the tuning objective) or the events counted (ratio metrics);
    `count_promql` the trials (ratios) or the samples behind the value. Shadow runs add the stable
    revision's (`baseline_*`)."""

    metric: str
    promql: str
    check: AnalysisMetric | None = None
    """None for the tuning objective (measured, not judged against a threshold)."""
    count_promql: str | None = None
    reference_promql: str | None = None
    baseline_promql: str | None = None
    baseline_count_promql: str | None = None
    paired: PairedRequest | None = None
    """A paired metric: read from the pods, not Prometheus (its `promql` is empty)."""

    def expressions(self) -> list[str]:
        """Every PromQL expression of the measurement, in the order `judge` reads their answers."""
        if self.paired is not None:
            return []
        return [e for e in (self.promql, self.count_promql, self.reference_promql, self.baseline_promql,
                            self.baseline_count_promql) if e is not None]


def _window(window: str, seconds: int | None) -> str:
    """The metric's window, shortened to `seconds` (at least 1 s) when the data before is not evidence."""
    if seconds is None or seconds >= duration_seconds(window):
        return window
    return f"{max(seconds, 1)}s"


def _metric_query(name: str, check: AnalysisMetric, scope: Scope, baseline: Scope | None,
                  seconds: int | None) -> Query | None:
    """The metric's query; None for a paired metric without a stable revision running beside the candidate."""
    if check.paired is not None:
        return Query(name, "", check, paired=PairedRequest(scope, baseline, check.paired.path)) if baseline else None
    window = _window(check.window, seconds)

    def promql(template: str | None, where: Scope | None) -> str | None:
        return render(template, where.selector(), window) if template is not None and where is not None else None

    compare = baseline if check.baseline_tolerance is not None else None
    value, count = (check.ratio.events, check.ratio.trials) if check.ratio else (check.query, check.samples)
    assert value is not None  # the model requires one kind
    return Query(name, render(value, scope.selector(), window), check, promql(count, scope),
                 promql(check.ratio.reference if check.ratio else None, scope), promql(value, compare),
                 promql(count, compare))


def queries_for(
    slos: SLOPolicySpec, scope: Scope, baseline: Scope | None = None, objective: TuningObjective | None = None,
    since_seconds: int | None = None,
) -> list[Query]:
    """The queries of one measurement: every SLO with an analysis metric, plus the objective when tuning.

    `since_seconds` shortens every window to the time since the revision's pods (re)started and warmed
    up: what happened before (a start, a restart the operator caused) is not evidence."""
    made = [_metric_query(slo.name, slo.analysis, scope, baseline, since_seconds)
            for slo in slos.slos if slo.analysis is not None]
    queries = [q for q in made if q is not None]
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


def expressions(queries: list[Query]) -> list[str]:
    """The PromQL of every query, flattened: measure them together, then hand the answers to `judge_all`."""
    return [e for q in queries for e in q.expressions()]


def judge_all(queries: list[Query], samples: list[Sample], settings: AnalysisSettings, now: str,
              paired: dict[str, PairedCounts | str] | None = None) -> list[Measurement]:
    """One measurement per query from the answers to `expressions(queries)`, in that order, and for a paired
    query its counts (or why there are none) from `paired`, by metric."""
    answers = iter(samples)
    measured = []
    for query in queries:
        if query.paired is not None:
            measured.append(judge_paired(query, (paired or {}).get(query.metric, "not measured"),
                                         settings.confidence, now))
            continue
        own = [next(answers) for _ in query.expressions()]
        measured.append(judge(query, own, settings.z, now))
    return measured


def judge_paired(query: Query, counts: PairedCounts | str, confidence: float, now: str) -> Measurement:
    """How much worse the candidate's calls are than the stable revision's on the same points: the mean over the
    pairs of (stable right) - (candidate right), judged on its anytime-valid confidence sequence (valid however
    often the growing sample is looked at) against the metric's threshold (the margin); fewer discordant pairs
    than `minSamples` is Inconclusive. `counts` is a reason when the calls could not be read or paired
    (Inconclusive: no evidence either way).

    Retrospective pairs (a point called on replayed history, `pairing.py`) can fail a candidate, never pass it:
    Failed is judged on every pair, Successful on the live pairs alone (with their own `minSamples`); when the
    two disagree — not failed on all, not passed on the live ones — the measurement is Inconclusive."""
    check = query.check
    assert check is not None
    advisory = None if check.required else True
    if isinstance(counts, str):
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.INCONCLUSIVE, advisory=advisory,
                           message=f"no paired calls: {counts}")
    table = (f"stable right on {counts.both + counts.stable_only}, candidate on "
             f"{counts.both + counts.candidate_only} of {counts.pairs} paired calls")
    if counts.retrospective:
        table += f", {counts.retrospective} of them retrospective (called on replayed history)"
    if counts.mismatched:  # points both scored on different ticks: not pairs, and why pairs may come slowly
        table += f"; {counts.mismatched} points scored on different moves"
    if counts.discordant < check.min_samples:
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.INCONCLUSIVE,
                           samples=counts.discordant, advisory=advisory,
                           message=f"{counts.discordant} {check.sample_unit}, fewer than the {check.min_samples} "
                                   f"needed to judge ({table})")
    worse, low, high = _paired_sequence(counts, confidence)
    phase = _against(low, high, check.threshold, check.passes)
    relation = "below" if check.passes is Comparison.BELOW else "above"
    verb = {AnalysisPhase.FAILED: f"not {relation}", AnalysisPhase.SUCCESSFUL: relation}.get(
        phase, f"not surely {relation}")
    judged = f"{counts.discordant} {check.sample_unit}; {confidence:.0%} confidence sequence"
    if phase is AnalysisPhase.SUCCESSFUL and counts.retrospective:  # a pass is the live pairs' to give
        live = counts.live_table
        if live.discordant < check.min_samples:
            return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.INCONCLUSIVE, value=worse,
                               samples=live.discordant, low=low, high=high, advisory=advisory,
                               message=f"worse than stable by {_fmt(worse)} [{_fmt(low)}, {_fmt(high)}] ({table}; "
                                       f"{judged}) {relation} {_fmt(check.threshold)}, but only {live.discordant} "
                                       f"live {check.sample_unit}, fewer than the {check.min_samples} needed to "
                                       "pass: retrospective pairs can fail a candidate, never pass it")
        worse, low, high = _paired_sequence(live, confidence)
        phase = _against(low, high, check.threshold, check.passes)
        verb = relation if phase is AnalysisPhase.SUCCESSFUL else f"not surely {relation}"
        phase = AnalysisPhase.SUCCESSFUL if phase is AnalysisPhase.SUCCESSFUL else AnalysisPhase.INCONCLUSIVE
        judged = f"passed on the {live.pairs} live pairs alone, {live.discordant} {check.sample_unit}; " \
                 f"{confidence:.0%} confidence sequence"
        return Measurement(time=now, metric=query.metric, phase=phase, value=worse, samples=live.discordant,
                           low=low, high=high, advisory=advisory,
                           message=f"worse than stable by {_fmt(worse)} [{_fmt(low)}, {_fmt(high)}] ({table}; "
                                   f"{judged}) {verb} {_fmt(check.threshold)}")
    return Measurement(time=now, metric=query.metric, phase=phase, value=worse, samples=counts.discordant,
                       low=low, high=high, advisory=advisory,
                       message=f"worse than stable by {_fmt(worse)} [{_fmt(low)}, {_fmt(high)}] ({table}; "
                               f"{judged}) {verb} {_fmt(check.threshold)}")


def _paired_sequence(counts: PairedCounts, confidence: float) -> tuple[float, float, float]:
    """The mean of (stable right) - (candidate right) over the pairs, and its confidence sequence."""
    return mean_sequence({1: counts.stable_only, -1: counts.candidate_only, 0: counts.both + counts.neither},
                         1 - confidence)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "no data"
    text = f"{value:.4g}"
    return f"{text} {unit}".rstrip() if unit and unit != "ratio" else text


def _value(sample: Sample) -> float | None:
    return None if sample.value is None or math.isnan(sample.value) else sample.value


def judge(query: Query, samples: list[Sample], z: float, now: str) -> Measurement:
    """One measurement of one metric from the answers to `query.expressions()`."""
    errors = [s.error for s in samples if s.error is not None]
    if errors:
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.ERROR, message=errors[0])
    answers = iter(samples)

    def answer(promql: str | None) -> float | None:
        return _value(next(answers)) if promql is not None else None

    value, count, reference = answer(query.promql), answer(query.count_promql), answer(query.reference_promql)
    base_value, base_count = answer(query.baseline_promql), answer(query.baseline_count_promql)
    check = query.check
    if check is None:  # the tuning objective: measured, not judged
        if value is None:
            return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.INCONCLUSIVE, message="no data")
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.SUCCESSFUL, value=value,
                           message=f"objective {_fmt(value)}")
    advisory = None if check.required else True
    if value is None or count is None:
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.INCONCLUSIVE, samples=count,
                           advisory=advisory, message="no data")
    if count < check.min_samples:
        return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.INCONCLUSIVE, samples=count,
                           advisory=advisory, message=f"{count:.0f} {check.sample_unit}, fewer than the "
                                                      f"{check.min_samples} needed to judge")
    if check.ratio is not None:
        if check.ratio.reference is not None and reference is None:
            return Measurement(time=now, metric=query.metric, phase=AnalysisPhase.INCONCLUSIVE, samples=count,
                               advisory=advisory, message="no data for the reference")
        judged = _ratio(check, value, count, reference, z)
    else:
        judged = _Judged(value, value, value, f"{_fmt(value, check.unit)} over {count:.0f} {check.sample_unit}")
    phase = _against(judged.low, judged.high, check.threshold, check.passes)
    relation = "below" if check.passes is Comparison.BELOW else "above"
    verb = {AnalysisPhase.FAILED: f"not {relation}", AnalysisPhase.SUCCESSFUL: relation}.get(
        phase, f"not surely {relation}")
    straddles = " (the interval straddles it)" if phase is AnalysisPhase.INCONCLUSIVE else ""
    message = f"{judged.text} {verb} {_fmt(check.threshold, check.unit)}{straddles}"
    base = None
    if phase is not AnalysisPhase.FAILED and query.baseline_promql is not None:
        if base_value is None or base_count is None:
            phase, message = AnalysisPhase.INCONCLUSIVE, f"{judged.text} vs stable: no data for the stable revision"
        else:
            base, base_phase, detail = _versus_baseline(check, value, count, base_value, base_count, z)
            if base_phase is not AnalysisPhase.SUCCESSFUL:
                phase, message = base_phase, f"{judged.text} vs stable {detail}"
    return Measurement(time=now, metric=query.metric, phase=phase, value=judged.value, baseline=base,
                       samples=count, low=judged.low, high=judged.high, advisory=advisory, message=message)


@dataclass(frozen=True)
class _Judged:
    value: float
    low: float
    high: float
    text: str


def _ratio(check: AnalysisMetric, events: float, trials: float, reference: float | None, z: float) -> _Judged:
    if reference is None:
        low, high = wilson(events, trials, z)
        value = min(max(events / trials, 0.0), 1.0)
        counts = f"{events:.0f} of {trials:.0f} {check.sample_unit}"
    else:
        value, low, high = difference(events, trials, reference, trials, z)
        counts = f"{events:.0f} vs {reference:.0f} of {trials:.0f} {check.sample_unit}"
    return _Judged(value, low, high, f"{_fmt(value)} ({counts}) [{_fmt(low)}, {_fmt(high)}]")


def _against(low: float, high: float, threshold: float, passes: Comparison) -> AnalysisPhase:
    """Failed only when the whole interval is on the wrong side, Successful only when wholly on the right."""
    if passes is Comparison.BELOW:
        wrong, right = low >= threshold, high < threshold
    else:
        wrong, right = high <= threshold, low > threshold
    return AnalysisPhase.FAILED if wrong else AnalysisPhase.SUCCESSFUL if right else AnalysisPhase.INCONCLUSIVE


def _versus_baseline(check: AnalysisMetric, value: float, count: float, base_value: float, base_count: float,
                     z: float) -> tuple[float | None, AnalysisPhase, str]:
    """Shadow runs: is the candidate worse than the stable revision by more than the tolerance?"""
    tolerance = check.baseline_tolerance or 0.0
    if check.ratio is None:
        worse = value - base_value if check.passes is Comparison.BELOW else base_value - value
        phase = AnalysisPhase.FAILED if worse > tolerance else AnalysisPhase.SUCCESSFUL
        return base_value, phase, f"{_fmt(base_value, check.unit)}: worse by more than " \
                                  f"{_fmt(tolerance, check.unit)}"
    if base_count < check.min_samples:
        return None, AnalysisPhase.INCONCLUSIVE, (f"{base_count:.0f} {check.sample_unit}, fewer than the "
                                                  f"{check.min_samples} needed to compare")
    rate = min(max(base_value / base_count, 0.0), 1.0)
    d, low, high = difference(value, count, base_value, base_count, z)
    if check.passes is Comparison.ABOVE:  # worse means lower
        d, low, high = -d, -high, -low
    phase = _against(low, high, tolerance, Comparison.BELOW)
    verdict = {AnalysisPhase.FAILED: "worse by more than", AnalysisPhase.SUCCESSFUL: "worse by less than"}.get(
        phase, "not surely within")
    return rate, phase, (f"{_fmt(rate)} of {base_count:.0f}: {verdict} {_fmt(tolerance)} "
                         f"(worse by {_fmt(d)} [{_fmt(low)}, {_fmt(high)}])")


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
    """Running, or a verdict with its reasons (the failing values first).

    Any metric can fail a run; only required ones must pass it, and only their inconclusive measurements
    count against `inconclusiveLimit` (an advisory metric that cannot be judged yet neither holds nor ends it)."""
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
    advisory = {m.metric for m in latest.values() if m.advisory}
    required = [t for t in run.tallies if t.metric not in advisory]
    inconclusive = [t for t in required if t.inconclusive > settings.inconclusive_limit]
    if inconclusive:
        why = "; ".join(f"{t.metric}: {latest[t.metric].message if t.metric in latest else ''}"
                        for t in inconclusive)
        return AnalysisPhase.INCONCLUSIVE, (f"more than {settings.inconclusive_limit} inconclusive measurements "
                                            f"({why})")
    # `count` judged measurements of every required metric (too few samples is not evidence), and none ends
    # on a failure: a failure within the limit is measured again.
    judged = all(t.successful + t.failed >= settings.count for t in required) if required else \
        all(t.successful + t.failed + t.inconclusive >= settings.count for t in run.tallies)
    done = run.tallies and judged and not any(m.phase is AnalysisPhase.FAILED for m in latest.values())
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
