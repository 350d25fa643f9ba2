"""Market regime changes the runtime detected, as a condition, an Event and a retraining request — pure.

The runtime exports its detector's state (`tradeops_regime_watching`, 1 past the warm-up, and
`tradeops_regime_last_change_timestamp_seconds`); the analysis loop measures the running revision's series
from Prometheus (`queries`, when `due`) and records a `RegimeMeasured` finding; the planner alone folds the
latest one (`fold`): a change later than the one the status last announced is a `RegimeChanged` Event — once
per change, whatever the number of reconciles or of pods that saw it — and, when the risk policy's
`regimeRetraining` allows it, a retraining Job (retraining.py) for the symbol's `spec.model`, at most one per
cooldown. The `RegimeChange` condition is True while the runtime keeps sizing tightened after the change."""

from __future__ import annotations

from typing import Literal

from policies.models import RegimeRetraining, RiskPolicySpec
from trading_operator import retraining
from trading_operator.analysis import Scope, revision_due
from trading_operator.api import ConditionStatus, RegimeState, RetrainingJob, TradingSymbolSpec, TradingSymbolStatus
from trading_operator.builders import Owner
from trading_operator.conditions import ConditionType, Reason, get_condition, set_condition
from trading_operator.findings import RegimeMeasured
from trading_operator.plans import NORMAL, WARNING, CreateObject, Observed, Plan
from trading_operator.timestamps import parse_time, seconds_between

CHECK_SECONDS = 30.0
"""How often the running revision's regime series are measured."""
SAME_CHANGE_SECONDS = 60.0
"""Changes this close are one (replicas of a symbol see the same market and fire blocks apart)."""


def watches(spec: TradingSymbolSpec) -> bool:
    return spec.config.ml.regime_detection


def due(spec: TradingSymbolSpec, status: TradingSymbolStatus, last_checked: str | None, now: str) -> int | None:
    """The revision whose regime series to measure now, if any."""
    return revision_due(watches(spec), spec, status, last_checked, now, CHECK_SECONDS)


def queries(namespace: str, symbol: str, revision: int) -> list[str]:
    """(pods reporting a detector, pods watching, the latest change) of one revision."""
    scope = Scope(namespace, symbol, revision).selector()
    watching = f"tradeops_regime_watching{{{scope}}}"
    return [f"count({watching})", f"sum({watching})", f"max(tradeops_regime_last_change_timestamp_seconds{{{scope}}})"]


def _epoch(timestamp: str) -> float:
    return parse_time(timestamp).timestamp()


def fold(result: Plan, observed: Observed, spec: TradingSymbolSpec, status: TradingSymbolStatus,
         risk: RiskPolicySpec | None) -> TradingSymbolStatus:
    """The RegimeChange condition, the Event of a new change and its retraining request (no detection: none)."""
    if not watches(spec):
        if get_condition(status.conditions, ConditionType.REGIME_CHANGE) is None:
            return status
        return status.model_copy(update={
            "conditions": [c for c in status.conditions if c.type != ConditionType.REGIME_CHANGE]})
    if status.regime is not None:
        status = status.model_copy(update={"regime": _follow_job(result, observed, status.regime)})
    latest = next((f for f in reversed(observed.findings) if isinstance(f, RegimeMeasured)
                   and f.revision == status.current_revision), None)
    previous = get_condition(status.conditions, ConditionType.REGIME_CHANGE)
    if latest is None and previous is not None:
        return status
    state = status.regime or RegimeState()
    now = _epoch(observed.now)
    known = _epoch(state.last_change_at) if state.last_change_at else None
    change = latest.last_change if latest is not None and not latest.error else None
    if change is not None and (known is None or change > known + SAME_CHANGE_SECONDS):
        state = _announce(result, observed, spec, status.current_revision, state, change, risk)
        known = change
    verdict = _verdict(latest, spec, state, known, now)
    message = f"Revision {status.current_revision}: {verdict[2]}"
    conditions = set_condition(status.conditions, ConditionType.REGIME_CHANGE, verdict[0], verdict[1], message,
                               observed.generation, observed.now)
    return status.model_copy(update={"conditions": conditions,
                                     "regime": state if state != RegimeState() else status.regime})


def _announce(result: Plan, observed: Observed, spec: TradingSymbolSpec, revision: int, state: RegimeState,
              change: float, risk: RiskPolicySpec | None) -> RegimeState:
    """The Event of a new change, and the retraining it requests when the policy allows."""
    ml = spec.config.ml
    at = retraining.iso(change)
    result.event(WARNING, Reason.REGIME_CHANGED,
                 f"Regime change at {at} detected by the pods of revision {revision}: sizing × "
                 f"{ml.regime_size_multiplier:g} for {ml.regime_cooldown_seconds:g} s")
    state = state.model_copy(update={"last_change_at": at})
    policy = risk.regime_retraining if risk is not None else RegimeRetraining()
    why_not = _why_no_retraining(observed, spec, state, policy)
    if why_not is not None or spec.model is None or observed.tracking_uri is None:
        if policy.enabled:
            result.event(NORMAL, Reason.RETRAINING_SKIPPED, f"Regime change at {at}: no retraining: {why_not}")
        return state
    owner = Owner(observed.name, observed.namespace, observed.uid)
    job = retraining.build_job(owner, spec.symbol, spec.market.value, spec.model.name, observed.tracking_uri,
                               change, policy)
    result.actions.append(CreateObject(job))
    name = job["metadata"]["name"]
    result.event(NORMAL, Reason.RETRAINING_REQUESTED,
                 f"Regime change at {at}: Job {name} retrains {spec.model.name} and registers it as challenger "
                 f"(next retraining not before {retraining.iso(_epoch(observed.now) + policy.cooldown_seconds)})")
    return state.model_copy(update={"retraining": RetrainingJob(job=name, model=spec.model.name,
                                                                requested_at=observed.now, change_at=at)})


def _follow_job(result: Plan, observed: Observed, state: RegimeState) -> RegimeState:
    """The outcome of the latest retraining Job, announced once when it ends."""
    pending = state.retraining
    if pending is None or pending.outcome is not None:
        return state
    job = next((j for j in observed.jobs if j.get("metadata", {}).get("name") == pending.job), None)
    ended = retraining.outcome(job) if job is not None else None
    if ended is None:
        return state
    kind, why = ended
    if kind == "Succeeded":
        result.event(NORMAL, Reason.RETRAINING_SUCCEEDED,
                     f"Job {pending.job} finished: a new version of {pending.model} is registered as challenger "
                     "(opsctl model describe, then opsctl model promote to roll it out)")
        outcome: Literal["Succeeded", "Failed"] = "Succeeded"
    else:
        result.event(WARNING, Reason.RETRAINING_FAILED,
                     f"Job {pending.job} failed ({why or 'no reason given'}): no new version of {pending.model}; "
                     "its pod's log says why")
        outcome = "Failed"
    return state.model_copy(update={"retraining": pending.model_copy(update={"outcome": outcome})})


def _why_no_retraining(observed: Observed, spec: TradingSymbolSpec, state: RegimeState,
                       policy: RegimeRetraining) -> str | None:
    if not policy.enabled:
        return "off in the risk policy"
    if spec.model is None:
        return "the spec names no registered model (spec.model)"
    if observed.tracking_uri is None:
        return "no MLflow tracking server configured (MLFLOW_TRACKING_URI)"
    last = state.retraining
    if last is not None and seconds_between(last.requested_at, observed.now) < policy.cooldown_seconds:
        until = _epoch(last.requested_at) + policy.cooldown_seconds
        return (f"Job {last.job} was requested at {last.requested_at}; the risk policy allows one per "
                f"{policy.cooldown_seconds} s (next after {retraining.iso(until)})")
    return None


def _verdict(latest: RegimeMeasured | None, spec: TradingSymbolSpec, state: RegimeState, known: float | None,
             now: float) -> tuple[ConditionStatus, Reason, str]:
    cooldown = spec.config.ml.regime_cooldown_seconds
    if known is not None and now - known < cooldown:
        retrain = f"; retraining Job {state.retraining.job}" if state.retraining and \
            state.retraining.change_at == state.last_change_at else ""
        return (ConditionStatus.TRUE, Reason.REGIME_CHANGED,
                f"regime changed at {state.last_change_at}: sizing × {spec.config.ml.regime_size_multiplier:g} "
                f"until {retraining.iso(known + cooldown)}{retrain}")
    if latest is None:
        return ConditionStatus.UNKNOWN, Reason.NO_DATA, "not measured yet"
    if latest.error:
        return ConditionStatus.UNKNOWN, Reason.NO_DATA, f"no data: {latest.error}"
    if not latest.pods or latest.watching is None:
        return (ConditionStatus.UNKNOWN, Reason.NO_DATA,
                "no data: no pod of the revision reports tradeops_regime_watching")
    pods, watching = int(latest.pods), int(latest.watching)
    if watching < pods:
        return (ConditionStatus.UNKNOWN, Reason.REGIME_LEARNING,
                f"{pods - watching} of {pods} pods still learn the market (warm-up or after a change)")
    since = f" since {state.last_change_at}" if state.last_change_at else ""
    return ConditionStatus.FALSE, Reason.REGIME_STABLE, f"{pods} of {pods} pods watch: no regime change{since}"
