"""The analysis loop's I/O edge: query Prometheus (and, for a shadow run's paired metric, the pods' scored
calls) for the work due and record what it measured.

It decides nothing and writes no status: each measurement is judged (`analysis.judge`), recorded as a
finding (`findings.py`) and handed to a reconcile, where the planner alone turns findings into verdicts,
promotions, rollbacks, restarts and tuning proposals (`rollout.fold_findings`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from trading_operator import metrics, model_health, naming, regime_watch
from trading_operator.analysis import expressions, judge_all
from trading_operator.analysis_work import IDLE_SECONDS, Work, WorkKind, next_work
from trading_operator.api import Measurement, TradingSymbolSpec, TradingSymbolStatus
from trading_operator.context import OperatorContext, reconcile
from trading_operator.decisions import DecisionsProbe
from trading_operator.findings import (
    Finding,
    ModelServingMeasured,
    ObjectiveMeasured,
    RegimeMeasured,
    RunMeasured,
    StableMeasured,
)
from trading_operator.planner import parse_status
from trading_operator.rollout import Policies, resolve_policies
from trading_operator.timestamps import now_rfc3339, parse_time

log = logging.getLogger(__name__)


def _read(body: Mapping[str, Any], context: OperatorContext) -> tuple[TradingSymbolSpec, TradingSymbolStatus,
                                                                          Policies] | None:
    try:
        spec = TradingSymbolSpec.model_validate(body.get("spec") or {})
        return spec, parse_status(dict(body.get("status") or {})), resolve_policies(context.executor.policies, spec)
    except (ValidationError, KeyError):
        return None


def _analysis_requested(annotations: Mapping[str, str], symbol: str) -> str | None:
    """The time of an alert's analysis request; a value that is no time is ignored (and said), not a crash."""
    value = annotations.get(naming.ANALYSIS_REQUESTED_ANNOTATION)
    if value is None:
        return None
    try:
        parse_time(value)
    except ValueError:
        log.warning("%s: ignoring %s=%r: not an RFC 3339 time", symbol, naming.ANALYSIS_REQUESTED_ANNOTATION, value)
        return None
    return value


async def _check_model(context: OperatorContext, namespace: str, name: str, spec: TradingSymbolSpec,
                       status: TradingSymbolStatus) -> bool:
    """Record whether the running revision's pods serve their model, when due (model_health.py)."""
    key = (namespace, name)
    revision = model_health.due(spec, status, context.model_checks.get(key), now_rfc3339())
    if revision is None:
        return False
    pods, serving = await context.metrics.measure(model_health.queries(namespace, spec.symbol, revision))
    now = now_rfc3339()
    context.model_checks[key] = now
    context.findings.add(key, ModelServingMeasured(revision, pods.value, serving.value, now,
                                                   pods.error or serving.error or ""))
    return True


async def _check_regime(context: OperatorContext, namespace: str, name: str, spec: TradingSymbolSpec,
                        status: TradingSymbolStatus) -> bool:
    """Record the running revision's regime detectors, when due (regime_watch.py)."""
    key = (namespace, name)
    revision = regime_watch.due(spec, status, context.regime_checks.get(key), now_rfc3339())
    if revision is None:
        return False
    pods, watching, last = await context.metrics.measure(regime_watch.queries(namespace, spec.symbol, revision))
    now = now_rfc3339()
    context.regime_checks[key] = now
    context.findings.add(key, RegimeMeasured(revision, pods.value, watching.value, last.value, now,
                                             pods.error or watching.error or last.error or ""))
    return True


def finding_of(work: Work, measurements: list[Measurement], now: str) -> Finding:
    """The record of one measurement of `work`."""
    if work.kind is WorkKind.RUN:
        return RunMeasured(work.revision, work.started_at, tuple(measurements), now)
    if work.kind is WorkKind.BACKGROUND:
        return StableMeasured(work.revision, tuple(measurements), now)
    return ObjectiveMeasured(work.revision, measurements[0].value if measurements else None, now)


async def analysis_tick(context: OperatorContext, namespace: str, name: str, body: Mapping[str, Any]) -> float:
    """One look at a TradingSymbol (its live body): measure what is due, record it, let the planner act on it.
    Returns seconds until the next look."""
    read = _read(body, context)
    if read is None:
        return IDLE_SECONDS
    spec, status, policies = read
    annotations = body.get("metadata", {}).get("annotations") or {}
    frozen = naming.TUNING_FROZEN_ANNOTATION in annotations
    model_checked = await _check_model(context, namespace, name, spec, status)
    model_checked = await _check_regime(context, namespace, name, spec, status) or model_checked
    key = (namespace, name)
    requested = _analysis_requested(annotations, spec.symbol)
    work, delay = next_work(namespace, spec, status, context.background_checks.get(key), policies, frozen,
                            now_rfc3339(), requested)
    if work is None:
        if model_checked:
            await reconcile(context, namespace, name)
        return delay
    samples = await context.metrics.measure(expressions(work.queries))
    paired = await DecisionsProbe(context.executor.kube).measure_all(namespace, name, work.queries) \
        if any(q.paired for q in work.queries) else {}
    now = now_rfc3339()
    measurements = judge_all(work.queries, samples, policies.analysis, now, paired)
    context.findings.add(key, finding_of(work, measurements, now))
    if work.kind is WorkKind.BACKGROUND:
        context.background_checks[key] = now
        metrics.background_measured(namespace, name, parse_time(now).timestamp())
    log.debug("%s revision %d: %s measured", spec.symbol, work.revision, work.kind)
    await reconcile(context, namespace, name)
    if work.kind is WorkKind.BACKGROUND:
        # A measurement that changed nothing wrote nothing, so no event brings the next look: what falls due
        # next (a tuning baseline, say) is asked now, or it would wait behind the next background measurement.
        following, after = next_work(namespace, spec, status, now, policies, frozen, now_rfc3339(), requested)
        return 0.0 if following is not None else after
    return delay
