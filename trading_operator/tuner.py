"""The auto-tuner, pure: coordinate search with step halving over the parameters a tuning policy allows.

One parameter at a time: step it one way; a proposal that improves the objective (and passes every SLO
in its analysis) is kept and the search goes on in that direction; one that does not is reverted and
the other direction is tried; when both fail the step is halved, and below the minimum step the next
parameter is searched. Each proposal is a revision with its own analysis; the history says why."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from policies.models import Direction, TunableParameter, TuningPolicySpec
from trading_operator.api import AnalysisPhase, TuningRecord, TuningState
from trading_operator.timestamps import parse_time
from trading_runtime.config import RuntimeConfig

HISTORY_KEPT = 20


def config_value(config: dict[str, Any], path: str) -> float:
    """A numeric value of the runtime config (camelCase path)."""
    node: Any = config
    for part in path.split("."):
        node = node[part]
    return float(node)


def apply_overrides(config: dict[str, Any], overrides: dict[str, float], integer_paths: set[str]) -> dict[str, Any]:
    """A copy of the config with the tuned values set."""
    out: dict[str, Any] = _deep_copy(config)
    for path, value in sorted(overrides.items()):
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = round(value) if path in integer_paths else value
    return out


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def integer_paths(policy: TuningPolicySpec) -> set[str]:
    return {p.path for p in policy.parameters if p.integer}


def for_generation(state: TuningState | None, policy_name: str, generation: int) -> TuningState:
    """The tuning state for this spec: a new spec (or policy) restarts the search from git's values."""
    if state is None or state.generation != generation or state.policy != policy_name:
        history = state.history if state is not None else []
        return TuningState(policy=policy_name, generation=generation, history=history)
    return state


@dataclass(frozen=True)
class Proposal:
    parameter: TunableParameter
    from_value: float
    to_value: float
    state: TuningState
    """The search state to store with the proposal (direction/step may have moved past bounds)."""


def _clamp(value: float, parameter: TunableParameter) -> float:
    value = min(max(value, parameter.min), parameter.max)
    return float(round(value)) if parameter.integer else round(value, 10)


def _advance(state: TuningState, policy: TuningPolicySpec) -> TuningState:
    """After a proposal that was not kept: the other direction, then half the step, then the next parameter."""
    if state.parameter_index >= len(policy.parameters):
        return state.model_copy(update={"converged": True})
    if not state.tried_opposite:
        return state.model_copy(update={"direction": -state.direction, "tried_opposite": True})
    parameter = policy.parameters[state.parameter_index]
    step = (state.step or parameter.step) / 2
    if step < parameter.min_step:
        index = state.parameter_index + 1
        return state.model_copy(update={"parameter_index": index, "step": None, "direction": 1,
                                        "tried_opposite": False, "converged": index >= len(policy.parameters)})
    return state.model_copy(update={"step": step, "direction": 1, "tried_opposite": False})


@dataclass(frozen=True)
class Search:
    """The next proposal (None: the search has converged), and the proposals skipped on the way."""

    proposal: Proposal | None
    state: TuningState
    """The search state: skipped proposals in its history, converged when nothing is left."""
    skipped: tuple[str, ...] = ()
    """`path from -> to: why` of each proposal skipped because its config would be invalid."""


def config_error(base_config: dict[str, Any], overrides: dict[str, float], integers: set[str]) -> str | None:
    """Why the config with these overrides breaks a rule of the runtime config (cross-field rules included,
    the ones `plan()` enforces when it builds the revision), or None when it is valid."""
    try:
        RuntimeConfig.model_validate(apply_overrides(base_config, overrides, integers))
    except ValidationError as error:
        return "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
    return None


def _skipped(state: TuningState, path: str, before: float, after: float, why: str, now: str) -> TuningState:
    record = TuningRecord(time=now, parameter=path, from_value=before, to_value=after, outcome="Invalid",
                          message=why)
    return state.model_copy(update={"history": [*state.history, record][-HISTORY_KEPT:]})


def propose(state: TuningState, policy: TuningPolicySpec, base_config: dict[str, Any], now: str) -> Search:
    """The next valid proposal; one whose config would be invalid is skipped with its reason, as if it had
    not helped (the search moves on), so it never reaches the planner."""
    skipped: list[str] = []
    integers = integer_paths(policy)
    for _ in range(4 * len(policy.parameters) * 64):  # bounded: every path below ends in converged
        if state.converged or state.parameter_index >= len(policy.parameters):
            break
        parameter = policy.parameters[state.parameter_index]
        current = state.overrides.get(parameter.path, config_value(base_config, parameter.path))
        step = state.step or parameter.step
        target = _clamp(current + state.direction * step, parameter)
        if target != current:
            why = config_error(base_config, {**state.overrides, parameter.path: target}, integers)
            if why is None:
                return Search(Proposal(parameter, current, target, state), state, tuple(skipped))
            skipped.append(f"{parameter.path} {current:g} -> {target:g}: {why}")
            state = _skipped(state, parameter.path, current, target, why, now)
        state = _advance(state, policy)  # at a bound or invalid: as if the step had not helped
    return Search(None, state.model_copy(update={"converged": True}), tuple(skipped))


def valid_state(state: TuningState, policy: TuningPolicySpec, base_config: dict[str, Any], now: str) -> TuningState:
    """The state with its kept overrides and candidate dropped where they make the config invalid (a state
    written before proposals were validated, or kept overrides that a new spec contradicts)."""
    integers = integer_paths(policy)
    if state.overrides and (why := config_error(base_config, state.overrides, integers)) is not None:
        for path, value in sorted(state.overrides.items()):
            state = _skipped(state, path, config_value(base_config, path), value, why, now)
        state = state.model_copy(update={"overrides": {}, "candidate": None})
    if state.candidate and (why := config_error(base_config, {**state.overrides, **state.candidate},
                                                integers)) is not None:
        for path, value in sorted(state.candidate.items()):
            before = state.overrides.get(path, config_value(base_config, path))
            state = _skipped(state, path, before, value, why, now)
        state = _advance(state, policy).model_copy(update={"candidate": None})
    return state


def improved(objective: float | None, baseline: float | None, policy: TuningPolicySpec) -> bool:
    if objective is None or baseline is None:
        return False
    margin = policy.objective.min_improvement
    if policy.objective.direction is Direction.MAXIMIZE:
        return objective > baseline + margin
    return objective < baseline - margin


def outcome_of(phase: AnalysisPhase, objective: float | None, baseline: float | None,
               policy: TuningPolicySpec) -> str:
    if phase is AnalysisPhase.FAILED:
        return "SLOBreach"
    if phase is not AnalysisPhase.SUCCESSFUL:
        return "Inconclusive"
    return "Kept" if improved(objective, baseline, policy) else "Reverted"


def conclude(state: TuningState, policy: TuningPolicySpec, outcome: str, objective: float | None, revision: int,
             base_config: dict[str, Any], now: str) -> TuningState:
    """Record a proposal's outcome: keep its values, or revert them and move the search on."""
    candidate = state.candidate or {}
    parameter = policy.parameters[min(state.parameter_index, len(policy.parameters) - 1)]
    path = parameter.path
    before = state.overrides.get(path, config_value(base_config, path))
    entry = TuningRecord(time=now, parameter=path, from_value=before, to_value=candidate.get(path, before),
                         revision=revision, baseline=state.baseline_objective, objective=objective, outcome=outcome)
    history = [*state.history, entry][-HISTORY_KEPT:]
    if outcome == "Kept":
        return state.model_copy(update={"overrides": {**state.overrides, **candidate}, "candidate": None,
                                        "baseline_objective": objective, "tried_opposite": False,
                                        "history": history})
    moved = _advance(state, policy)
    return moved.model_copy(update={"candidate": None, "history": history})


def budget_allows(state: TuningState, policy: TuningPolicySpec, now: str) -> tuple[bool, str]:
    """Cooldown and change budget: may a proposal start now? (False, why) when not."""
    moment = parse_time(now)
    if state.last_change_at is not None:
        since = (moment - parse_time(state.last_change_at)).total_seconds()
        if since < policy.cooldown_seconds:
            return False, f"cooldown: {policy.cooldown_seconds - since:.0f}s left"
    recent = [t for t in state.change_times if moment - parse_time(t) < datetime.timedelta(hours=1)]
    if len(recent) >= policy.max_changes_per_hour:
        return False, f"change budget spent: {len(recent)} proposals in the last hour"
    return True, ""


def started(state: TuningState, proposal: Proposal, baseline: float, now: str) -> TuningState:
    """The state once a proposal starts."""
    moment = parse_time(now)
    recent = [t for t in proposal.state.change_times if moment - parse_time(t) < datetime.timedelta(hours=1)]
    return proposal.state.model_copy(update={
        "candidate": {proposal.parameter.path: proposal.to_value},
        "baseline_objective": baseline,
        "last_change_at": now,
        "change_times": [*recent, now],
    })
