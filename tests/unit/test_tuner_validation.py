"""Tuning proposals are validated when they are made: one that breaks a cross-field rule of the runtime
config (entryScore above exitScore) is skipped with its reason and never reaches the planner."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.loader import default_policies
from policies.models import Direction, TunableParameter, TuningObjective, TuningPolicySpec
from trading_operator import tuner
from trading_operator.api import TuningState
from trading_operator.planner import Observed, plan
from trading_runtime.config import RuntimeConfig

NOW = "2026-11-25T10:00:00Z"
POLICY = TuningPolicySpec(
    objective=TuningObjective(query="o{ {{ selector }} }", direction=Direction.MAXIMIZE),
    parameters=[TunableParameter(path="strategy.entryScore", min=0.4, max=0.9, step=0.1, min_step=0.05),
                TunableParameter(path="strategy.exitScore", min=0.1, max=0.6, step=0.1, min_step=0.05)],
)
CONFIG = {"strategy": {"entryScore": 0.55, "exitScore": 0.5}}
"""entryScore 0.55 over exitScore 0.5: stepping entryScore down by 0.1 (inside its bounds) breaks the rule."""


def test_a_proposal_that_breaks_a_cross_field_rule_is_skipped_with_its_reason():
    search = tuner.propose(TuningState(direction=-1), POLICY, CONFIG, NOW)
    assert search.skipped == ("strategy.entryScore 0.55 -> 0.45: exitScore (0.5) must be below entryScore (0.45)",)
    assert search.proposal is not None
    assert (search.proposal.parameter.path, search.proposal.to_value) == ("strategy.entryScore", 0.65)
    invalid = search.proposal.state.history[-1]
    assert (invalid.outcome, invalid.to_value) == ("Invalid", 0.45)
    assert invalid.message == "exitScore (0.5) must be below entryScore (0.45)"


def test_a_search_with_only_invalid_proposals_left_converges_with_every_reason():
    policy = POLICY.model_copy(update={"parameters": [
        TunableParameter(path="strategy.exitScore", min=0.5, max=0.6, step=0.1, min_step=0.1)]})
    search = tuner.propose(TuningState(), policy, CONFIG, NOW)  # exitScore 0.6 > entryScore; 0.4 out of bounds
    assert search.proposal is None
    assert search.state.converged
    assert search.skipped == ("strategy.exitScore 0.5 -> 0.6: exitScore (0.6) must be below entryScore (0.55)",)


def test_kept_overrides_that_a_new_spec_contradicts_are_dropped_with_the_reason():
    state = TuningState(overrides={"strategy.exitScore": 0.4}, candidate={"strategy.entryScore": 0.7})
    config = {"strategy": {"entryScore": 0.35, "exitScore": 0.3}}
    valid = tuner.valid_state(state, POLICY, config, NOW)
    assert valid.overrides == {}
    assert valid.candidate is None
    assert [r.outcome for r in valid.history] == ["Invalid"]
    assert "must be below entryScore (0.35)" in (valid.history[0].message or "")


def test_an_invalid_candidate_is_dropped_and_the_search_moves_on():
    state = TuningState(candidate={"strategy.entryScore": 0.45})
    valid = tuner.valid_state(state, POLICY, CONFIG, NOW)
    assert valid.candidate is None
    assert valid.tried_opposite  # as if the step had not helped: the other direction next
    assert valid.history[-1].outcome == "Invalid"


HIT_RATE = default_policies().tuning["hit-rate"]
BOUNDS = {p.path: p for p in HIT_RATE.parameters}


def _in_bounds(path: str) -> st.SearchStrategy[float]:
    parameter = BOUNDS[path]
    return st.floats(parameter.min, parameter.max).map(lambda v: round(v, 3))


@st.composite
def _tuned_symbols(draw: st.DrawFn) -> tuple[dict[str, Any], TuningState]:
    """A valid spec config, and any overrides and candidate inside the hit-rate policy's bounds."""
    exit_score = draw(st.floats(0.0, 0.85).map(lambda v: round(v, 3)))
    entry_score = draw(st.floats(exit_score + 0.01, 1.0).map(lambda v: round(v, 3)))
    config = {"strategy": {"entryScore": entry_score, "exitScore": exit_score,
                           "minConfidence": draw(st.floats(0.0, 1.0).map(lambda v: round(v, 3)))}}
    paths = list(BOUNDS)
    overrides = {p: draw(_in_bounds(p)) for p in paths if draw(st.booleans())}
    candidate = {p: draw(_in_bounds(p)) for p in paths[:1] if draw(st.booleans())}
    state = TuningState(policy="hit-rate", generation=1, overrides=overrides, candidate=candidate or None,
                        direction=draw(st.sampled_from([1, -1])), parameter_index=draw(st.integers(0, 1)))
    return config, state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tuned_symbols())
def test_for_any_overrides_in_bounds_the_tuner_proposes_a_valid_config_or_skips_and_plan_never_raises(drawn):
    config, state = drawn
    spec = {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/tradeops/runtime:1.0.0",
            "policies": {"tuning": "hit-rate"}, "config": config}
    status = {"tuning": state.model_dump(by_alias=True, mode="json", exclude_none=True)}
    observed = Observed(name="spy", namespace="trading", uid="uid-1", generation=1, spec=spec, status=status,
                        annotations={}, revisions=[], children={}, now=NOW)
    result = plan(observed)  # never raises
    assert result.status is not None
    valid = tuner.valid_state(state, HIT_RATE, RuntimeConfig.model_validate(config).model_dump(
        by_alias=True, mode="json"), NOW)
    base = RuntimeConfig.model_validate(config).model_dump(by_alias=True, mode="json")
    search = tuner.propose(valid.model_copy(update={"candidate": None}), HIT_RATE, base, NOW)
    if search.proposal is not None:
        proposal = search.proposal
        chosen = {**search.proposal.state.overrides, proposal.parameter.path: proposal.to_value}
        assert tuner.config_error(base, chosen, tuner.integer_paths(HIT_RATE)) is None
    else:
        assert search.state.converged
    assert all(": " in reason for reason in search.skipped)
