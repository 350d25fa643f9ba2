"""What the analysis loop should measure next for a TradingSymbol, if anything — pure.

Three kinds of work, in this order: a running analysis run (a new revision), background analysis of
the stable revision, and the tuning objective of the stable revision before a tuning proposal."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from trading_operator import tuner
from trading_operator.analysis import Query, Scope, objective_query, queries_for
from trading_operator.api import (
    AnalysisKind,
    AnalysisPhase,
    ConditionStatus,
    Phase,
    TradingSymbolSpec,
    TradingSymbolStatus,
)
from trading_operator.conditions import ConditionType
from trading_operator.rollout import Policies
from trading_operator.timestamps import parse_time, seconds_between

IDLE_SECONDS = 10.0
"""Seconds to the next look when nothing time-based is pending and no policy says otherwise. A change of the
TradingSymbol (a run started, a request, a status written) wakes the loop at once (`symbol_scheduler.py`):
this is a safety net, not a poll."""


class WorkKind(enum.StrEnum):
    RUN = "Run"
    BACKGROUND = "Background"
    TUNING_BASELINE = "TuningBaseline"


@dataclass(frozen=True)
class Work:
    kind: WorkKind
    revision: int
    queries: list[Query]
    started_at: str = ""
    """Identity of the run measured (RUN), to drop a result that arrives after the run changed."""


def next_work(namespace: str, spec: TradingSymbolSpec, status: TradingSymbolStatus, last_background: str | None,
              policies: Policies, tuning_frozen: bool, now: str,
              analysis_requested: str | None = None) -> tuple[Work | None, float]:
    """The measurement due now (or None) and the seconds until the next look: until the next measurement
    falls due by time alone, at most the background interval the policy declares (a change of the
    TradingSymbol wakes the loop sooner). `last_background`: when the stable revision was last measured in the
    background (None: not since the operator started; kept by the operator, not in the status, so that a
    measurement that changes nothing writes nothing). `analysis_requested` (a firing SLO alert's request,
    `naming.ANALYSIS_REQUESTED_ANNOTATION`) makes the stable revision's background measurement due now,
    once: the measurement it causes is later than the request."""
    settings = policies.analysis
    background = policies.analysis_policy.background
    rest = float(background.interval_seconds)
    if spec.paused or status.phase in (Phase.INVALID, Phase.TERMINATING):
        return None, rest
    run = status.analysis
    if run is not None and run.phase is AnalysisPhase.RUNNING and run.revision != status.stable_revision:
        waited = seconds_between(run.started_at, now)
        if waited < settings.initial_delay_seconds:
            return None, min(settings.initial_delay_seconds - waited, settings.interval_seconds)
        # Every interval, counted from the run's last measurement: the status write that records one wakes
        # the loop at once, and must not bring the next measurement forward.
        last_measured = max((m.time for m in run.measurements), default=None, key=lambda t: parse_time(t))
        since_last = seconds_between(last_measured, now) if last_measured else math.inf
        if since_last < settings.interval_seconds:
            return None, settings.interval_seconds - since_last
        baseline = (Scope(namespace, spec.symbol, run.baseline_revision)
                    if run.kind is AnalysisKind.SHADOW and run.baseline_revision else None)
        objective = policies.tuning.objective if run.kind is AnalysisKind.TUNING and policies.tuning else None
        # The revision was rolled out when its run started: what its pods did before is not evidence.
        queries = queries_for(policies.slo, Scope(namespace, spec.symbol, run.revision), baseline, objective,
                              since_seconds=int(waited))
        return Work(WorkKind.RUN, run.revision, queries, run.started_at), settings.interval_seconds
    steady = (status.phase in (Phase.READY, Phase.HALTED) and status.stable_revision
              and status.current_revision == status.stable_revision)
    if not steady:
        return None, rest
    stable = Scope(namespace, spec.symbol, status.stable_revision)
    last = last_background
    warmed = warmed_up_seconds(status, background.warmup_seconds, now)
    requested = analysis_requested is not None and (last is None or seconds_between(last, analysis_requested) > 0)
    if last is None or requested or seconds_between(last, now) >= background.interval_seconds:
        if warmed is not None and warmed < 0:
            return None, min(-warmed, background.interval_seconds)
        queries = queries_for(policies.slo, stable, since_seconds=None if warmed is None else int(warmed))
        return Work(WorkKind.BACKGROUND, status.stable_revision, queries), rest
    if _tuning_due(status, policies, tuning_frozen, now):
        assert policies.tuning is not None
        query = objective_query(policies.tuning.objective, stable)
        return Work(WorkKind.TUNING_BASELINE, status.stable_revision, [query]), rest
    until_background = background.interval_seconds - seconds_between(last, now)
    return None, max(0.0, min(until_background, _until_tuning_settles(status, policies, tuning_frozen, now, rest)))


def warmed_up_seconds(status: TradingSymbolStatus, warmup_seconds: int, now: str) -> float | None:
    """Seconds the stable revision's pods have run past their warm-up (negative: still warming up), counted
    from the latest (re)start the operator knows of: its promotion or rollback, a self-healing restart, its
    pods turning Ready. None when it has none of these (nothing to measure from)."""
    ready = next((c for c in status.conditions if c.type == ConditionType.READY
                  and c.status is ConditionStatus.TRUE), None)
    starts = [t for t in (status.stable_since, status.background.restarted_at if status.background else None,
                          ready.last_transition_time if ready else None) if t]
    if not starts:
        return None
    return min(seconds_between(t, now) for t in starts) - warmup_seconds


def _until_tuning_settles(status: TradingSymbolStatus, policies: Policies, frozen: bool, now: str,
                          rest: float) -> float:
    """Seconds until a tuning baseline may fall due by time alone: the stable revision settling, or `rest`
    when only the tuning budget holds it (a window of minutes); infinite when tuning is off or waits for a
    change (a candidate, convergence, a freeze, a breach: each arrives as an event)."""
    state = status.tuning
    if policies.tuning is None or frozen or state is None or state.candidate or state.converged \
            or status.stable_since is None:
        return math.inf
    settling = policies.tuning.settle_seconds - seconds_between(status.stable_since, now)
    return settling if settling > 0 else rest


def _tuning_due(status: TradingSymbolStatus, policies: Policies, frozen: bool, now: str) -> bool:
    state = status.tuning
    if policies.tuning is None or frozen or state is None or state.candidate or state.converged:
        return False
    if status.stable_since is None or seconds_between(status.stable_since, now) < policies.tuning.settle_seconds:
        return False
    if status.background is not None and status.background.consecutive_breaches:
        return False
    allowed, _ = tuner.budget_allows(state, policies.tuning, now)
    return allowed
