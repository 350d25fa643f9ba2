"""The analysis loop's I/O edge: query Prometheus for the work due, record the result, act on verdicts.

Decisions are the pure modules' (`analysis_work`, `analysis`, `healing`, `tuner`, then the planner);
this module only reads the live object, queries, writes status under the object's lock and reconciles."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from trading_operator import metrics, naming, tuner
from trading_operator.analysis import Query, Sample, judge, record
from trading_operator.analysis_work import IDLE_SECONDS, Work, WorkKind, next_work
from trading_operator.api import AnalysisPhase, Measurement, TradingSymbolSpec, TradingSymbolStatus
from trading_operator.conditions import Reason
from trading_operator.context import OperatorContext, reconcile_locked
from trading_operator.healing import Action, assess, rolled_back
from trading_operator.planner import NORMAL, WARNING, parse_status
from trading_operator.rollout import Policies, resolve_policies
from trading_operator.timestamps import now_rfc3339

log = logging.getLogger(__name__)


def _read(body: Mapping[str, Any], context: OperatorContext) -> tuple[TradingSymbolSpec, TradingSymbolStatus,
                                                                          Policies] | None:
    try:
        spec = TradingSymbolSpec.model_validate(body.get("spec") or {})
        return spec, parse_status(dict(body.get("status") or {})), resolve_policies(context.executor.policies, spec)
    except (ValidationError, KeyError):
        return None


async def _measure(context: OperatorContext, queries: list[Query]) -> list[tuple[Sample, Sample | None]]:
    promql = [q.promql for q in queries] + [q.baseline_promql for q in queries if q.baseline_promql]
    samples = await context.metrics.measure(promql)
    baselines = iter(samples[len(queries):])
    return [(samples[i], next(baselines) if q.baseline_promql else None) for i, q in enumerate(queries)]


async def analysis_tick(context: OperatorContext, namespace: str, name: str, body: Mapping[str, Any]) -> float:
    """One look at a TradingSymbol (its live body): measure what is due. Returns seconds until the next look."""
    read = _read(body, context)
    if read is None:
        return IDLE_SECONDS
    spec, status, policies = read
    frozen = naming.TUNING_FROZEN_ANNOTATION in (body.get("metadata", {}).get("annotations") or {})
    work, delay = next_work(namespace, spec, status, policies, frozen, now_rfc3339())
    if work is None:
        return delay
    results = await _measure(context, work.queries)
    async with context.locks[(namespace, name)]:
        ts = await context.executor.get_trading_symbol(namespace, name)
        if ts is None:
            return delay
        fresh = _read(ts, context)
        if fresh is None:
            return delay
        spec, status, policies = fresh
        now = now_rfc3339()
        measurements = [judge(q, sample, base, policies.analysis.no_data, now)
                        for q, (sample, base) in zip(work.queries, results, strict=True)]
        act = {WorkKind.RUN: _record_run, WorkKind.BACKGROUND: _record_background,
               WorkKind.TUNING_BASELINE: _start_proposal}[work.kind]
        if await act(context, ts, spec, status, policies, work, measurements, now):
            await reconcile_locked(context, namespace, name)
    return delay


async def _write(context: OperatorContext, ts: dict[str, Any], status: TradingSymbolStatus) -> None:
    await context.executor.write_status(ts, status.model_dump(by_alias=True, mode="json", exclude_none=True))


async def _record_run(context: OperatorContext, ts: dict[str, Any], spec: TradingSymbolSpec,
                      status: TradingSymbolStatus, policies: Policies, work: Work,
                      measurements: list[Measurement], now: str) -> bool:
    run = status.analysis
    if run is None or run.revision != work.revision or run.started_at != work.started_at \
            or run.phase is not AnalysisPhase.RUNNING:
        return False  # the run changed while we measured
    updated = record(run, measurements, policies.analysis, now)
    await _write(context, ts, status.model_copy(update={"analysis": updated}))
    if updated.phase is AnalysisPhase.RUNNING:
        return False
    metrics.record_verdict(ts["metadata"]["namespace"], spec.symbol, updated.phase.value)
    if updated.phase is AnalysisPhase.INCONCLUSIVE:
        await context.executor.emit_event(ts, WARNING, Reason.ANALYSIS_INCONCLUSIVE,
                                          f"Analysis of revision {run.revision} inconclusive: {updated.message}; "
                                          "not rolled back, held until promote, abort or retry")
    elif updated.phase is AnalysisPhase.FAILED:
        await context.executor.emit_event(ts, WARNING, Reason.ANALYSIS_FAILED,
                                          f"Analysis of revision {run.revision} failed: {updated.message}")
    log.info("analysis of %s revision %d: %s (%s)", spec.symbol, run.revision, updated.phase, updated.message)
    return True


async def _record_background(context: OperatorContext, ts: dict[str, Any], spec: TradingSymbolSpec,
                             status: TradingSymbolStatus, policies: Policies, work: Work,
                             measurements: list[Measurement], now: str) -> bool:
    if status.stable_revision != work.revision or status.current_revision != work.revision:
        return False
    outcome = assess(status, measurements, policies.analysis_policy.background, now)
    if outcome.action is Action.ROLLBACK:
        await _write(context, ts, rolled_back(status, outcome, now))
        await context.executor.emit_event(ts, WARNING, Reason.ROLLED_BACK, outcome.message)
        return True
    await _write(context, ts, status.model_copy(update={"background": outcome.background}))
    if outcome.action is Action.RESTART:
        await context.executor.emit_event(ts, WARNING, Reason.SELF_HEALING_RESTART, outcome.message)
    elif outcome.action is Action.EXHAUSTED:
        await context.executor.emit_event(ts, WARNING, Reason.SELF_HEALING_EXHAUSTED, outcome.message)
    return outcome.action is not Action.NONE or (status.background is not None and status.background.exhausted
                                                 and not outcome.background.exhausted)


async def _start_proposal(context: OperatorContext, ts: dict[str, Any], spec: TradingSymbolSpec,
                          status: TradingSymbolStatus, policies: Policies, work: Work,
                          measurements: list[Measurement], now: str) -> bool:
    state, policy = status.tuning, policies.tuning
    baseline = measurements[0].value if measurements else None
    if state is None or policy is None or state.candidate or status.stable_revision != work.revision:
        return False
    if baseline is None:
        return False  # no objective yet (e.g. the hit rate needs its horizon): look again later
    proposal = tuner.propose(state, policy, spec.config.model_dump(by_alias=True, mode="json"))
    if proposal is None:
        await _write(context, ts, status.model_copy(update={"tuning": state.model_copy(update={"converged": True})}))
        await context.executor.emit_event(ts, NORMAL, Reason.TUNING_PROPOSED,
                                          "Tuning converged: every parameter searched to its minimum step")
        return False
    await _write(context, ts, status.model_copy(update={"tuning": tuner.started(state, proposal, baseline, now)}))
    await context.executor.emit_event(
        ts, NORMAL, Reason.TUNING_PROPOSED,
        f"Proposing {proposal.parameter.path} {proposal.from_value:g} -> {proposal.to_value:g} "
        f"(objective of stable revision {status.stable_revision}: {baseline:.6g})")
    return True
