"""What the analysis loop should measure next for a TradingSymbol, if anything — pure.

Three kinds of work, in this order: a running analysis run (a new revision), background analysis of
the stable revision, and the tuning objective of the stable revision before a tuning proposal."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trading_operator import tuner
from trading_operator.analysis import Query, Scope, objective_query, queries_for
from trading_operator.api import AnalysisKind, AnalysisPhase, Phase, TradingSymbolSpec, TradingSymbolStatus
from trading_operator.rollout import Policies
from trading_operator.timestamps import seconds_between

IDLE_SECONDS = 1.0


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


def next_work(namespace: str, spec: TradingSymbolSpec, status: TradingSymbolStatus, policies: Policies,
              tuning_frozen: bool, now: str) -> tuple[Work | None, float]:
    """The measurement due now (or None) and the seconds until the next look."""
    settings = policies.analysis
    if spec.paused or status.phase in (Phase.INVALID, Phase.TERMINATING):
        return None, IDLE_SECONDS
    run = status.analysis
    if run is not None and run.phase is AnalysisPhase.RUNNING and run.revision != status.stable_revision:
        waited = seconds_between(run.started_at, now)
        if waited < settings.initial_delay_seconds:
            return None, min(settings.initial_delay_seconds - waited, settings.interval_seconds)
        baseline = (Scope(namespace, spec.symbol, run.baseline_revision)
                    if run.kind is AnalysisKind.SHADOW and run.baseline_revision else None)
        objective = policies.tuning.objective if run.kind is AnalysisKind.TUNING and policies.tuning else None
        queries = queries_for(policies.slo, Scope(namespace, spec.symbol, run.revision), baseline, objective)
        return Work(WorkKind.RUN, run.revision, queries, run.started_at), settings.interval_seconds
    steady = (status.phase in (Phase.READY, Phase.HALTED) and status.stable_revision
              and status.current_revision == status.stable_revision)
    if not steady:
        return None, IDLE_SECONDS
    stable = Scope(namespace, spec.symbol, status.stable_revision)
    background = policies.analysis_policy.background
    last = status.background.last_measured_at if status.background else None
    if last is None or seconds_between(last, now) >= background.interval_seconds:
        return Work(WorkKind.BACKGROUND, status.stable_revision, queries_for(policies.slo, stable)), IDLE_SECONDS
    if _tuning_due(status, policies, tuning_frozen, now):
        assert policies.tuning is not None
        query = objective_query(policies.tuning.objective, stable)
        return Work(WorkKind.TUNING_BASELINE, status.stable_revision, [query]), IDLE_SECONDS
    return None, IDLE_SECONDS


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
