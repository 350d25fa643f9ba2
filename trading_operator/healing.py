"""Background analysis of the stable revision and the self-healing it leads to — pure. It assesses;
the planner (`rollout.fold_findings`) carries the outcome out.

A breach (`breachLimit` failed measurements in a row) soon after a promotion rolls back to the previous
stable revision; with no recent change it restarts the pods, at most `maxSelfHealing` times per
cooldown window; beyond that the symbol is marked Degraded and
left to people — never a loop."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from policies.models import BackgroundAnalysis, SelfHealingAction
from trading_operator.api import AnalysisPhase, BackgroundState, Measurement, TradingSymbolStatus
from trading_operator.timestamps import seconds_between


class Action(enum.StrEnum):
    NONE = "None"
    ROLLBACK = "Rollback"
    RESTART = "Restart"
    EXHAUSTED = "Exhausted"


@dataclass(frozen=True)
class Outcome:
    background: BackgroundState
    action: Action
    message: str = ""


def assess(status: TradingSymbolStatus, measurements: list[Measurement], policy: BackgroundAnalysis,
           now: str) -> Outcome:
    """Record one background measurement and decide what, if anything, to do."""
    state = _answered(status.background or BackgroundState(), measurements, now)
    failed = [m for m in measurements if m.phase is AnalysisPhase.FAILED]
    recent_actions = [t for t in state.actions if seconds_between(t, now) < policy.cooldown_seconds]
    if not failed:
        state = state.model_copy(update={"consecutive_breaches": 0, "exhausted": False, "actions": recent_actions})
        return Outcome(state, Action.NONE)
    detail = "; ".join(f"{m.metric}: {m.message}" for m in failed)
    breaches = state.consecutive_breaches + 1
    state = state.model_copy(update={"consecutive_breaches": breaches, "last_breach": detail,
                                     "actions": recent_actions})
    if breaches < policy.breach_limit:
        return Outcome(state, Action.NONE)
    since_change = seconds_between(status.stable_since, now) if status.stable_since else None
    if (since_change is not None and since_change < policy.recent_change_seconds
            and status.previous_stable_revision and status.previous_stable_revision != status.stable_revision):
        state = state.model_copy(update={"consecutive_breaches": 0})
        return Outcome(state, Action.ROLLBACK,
                       f"SLO breach on revision {status.stable_revision} {since_change:.0f}s after its promotion "
                       f"({detail}); rolling back to revision {status.previous_stable_revision}")
    if state.exhausted:
        return Outcome(state, Action.NONE)
    if policy.self_healing is SelfHealingAction.NONE or len(recent_actions) >= policy.max_self_healing:
        state = state.model_copy(update={"exhausted": True})
        return Outcome(state, Action.EXHAUSTED,
                       f"SLO breach on revision {status.stable_revision} persists ({detail}); self-healing budget "
                       f"spent ({len(recent_actions)} of {policy.max_self_healing} in {policy.cooldown_seconds}s): "
                       "left to people")
    state = state.model_copy(update={"consecutive_breaches": 0, "actions": [*recent_actions, now],
                                     "restarted_at": now})
    return Outcome(state, Action.RESTART,
                   f"SLO breach on revision {status.stable_revision} with no recent change ({detail}); restarting "
                   f"its pods ({len(recent_actions) + 1} of {policy.max_self_healing})")


def _answered(state: BackgroundState, measurements: list[Measurement], now: str) -> BackgroundState:
    """Whether Prometheus answers, as changes only: an unchanged healthy symbol's measurement writes nothing."""
    if answered(measurements) and state.unanswered_since is not None:
        return state.model_copy(update={"unanswered_since": None, "last_answered_at": now})
    if not answered(measurements) and state.unanswered_since is None:
        return state.model_copy(update={"unanswered_since": now})
    return state


def answered(measurements: list[Measurement]) -> bool:
    """Prometheus answered the measurement (an error of every query is no answer)."""
    return any(m.phase is not AnalysisPhase.ERROR for m in measurements)
