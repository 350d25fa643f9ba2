"""Pure tuner (coordinate search with step halving, budgets) and background self-healing decisions."""

from __future__ import annotations

import pytest

from policies.models import BackgroundAnalysis, Direction, TunableParameter, TuningObjective, TuningPolicySpec
from trading_operator import tuner
from trading_operator.api import (
    AnalysisPhase,
    BackgroundState,
    Measurement,
    TradingSymbolStatus,
    TuningState,
)
from trading_operator.healing import Action, assess

CONFIG = {"strategy": {"entryScore": 0.6, "minConfidence": 0.55}, "parameters": {"batchSize": 256}}
POLICY = TuningPolicySpec(
    objective=TuningObjective(query="o{ {{ selector }} }", direction=Direction.MAXIMIZE, min_improvement=0.01),
    parameters=[
        TunableParameter(path="strategy.entryScore", min=0.4, max=0.8, step=0.1, min_step=0.05),
        TunableParameter(path="parameters.batchSize", min=64, max=512, step=128, min_step=64, integer=True),
    ],
    cooldown_seconds=60, max_changes_per_hour=3,
)


def t(seconds: int) -> str:
    return f"2026-11-25T10:{seconds // 60:02d}:{seconds % 60:02d}Z"


def cycle(state: TuningState, outcome: str, objective: float | None = None) -> tuple[tuner.Proposal, TuningState]:
    proposal = tuner.propose(state, POLICY, CONFIG, t(0)).proposal
    assert proposal is not None
    running = tuner.started(state, proposal, 0.5, t(0))
    return proposal, tuner.conclude(running, POLICY, outcome, objective, 2, CONFIG, t(1))


def test_a_kept_step_is_followed_by_another_in_the_same_direction():
    proposal, state = cycle(TuningState(), "Kept", 0.55)
    assert (proposal.from_value, proposal.to_value) == (0.6, 0.7)
    assert state.overrides == {"strategy.entryScore": 0.7}
    assert state.baseline_objective == 0.55
    following = tuner.propose(state, POLICY, CONFIG, t(0)).proposal
    assert following is not None
    assert (following.from_value, following.to_value) == (0.7, 0.8)


def test_a_reverted_step_tries_the_other_direction_then_halves_the_step():
    _, state = cycle(TuningState(), "Reverted", 0.49)
    assert state.overrides == {}
    proposal, state = cycle(state, "SLOBreach")
    assert (proposal.from_value, proposal.to_value) == (0.6, 0.5)
    proposal = tuner.propose(state, POLICY, CONFIG, t(0)).proposal
    assert proposal is not None
    assert (proposal.from_value, proposal.to_value) == (0.6, 0.65)  # step halved to 0.05
    assert [h.outcome for h in state.history] == ["Reverted", "SLOBreach"]


def test_below_the_minimum_step_the_next_parameter_is_searched_and_then_the_search_converges():
    state = TuningState()
    for _ in range(4):  # 0.1 up/down, 0.05 up/down, all reverted
        _, state = cycle(state, "Reverted")
    proposal = tuner.propose(state, POLICY, CONFIG, t(0)).proposal
    assert proposal is not None
    assert proposal.parameter.path == "parameters.batchSize"
    assert (proposal.from_value, proposal.to_value) == (256, 384)
    for _ in range(4):
        _, state = cycle(state, "Reverted")
    assert state.converged
    assert tuner.propose(state, POLICY, CONFIG, t(0)).proposal is None


def test_proposals_stay_within_bounds():
    state = TuningState(overrides={"strategy.entryScore": 0.8})
    proposal = tuner.propose(state, POLICY, CONFIG, t(0)).proposal
    assert proposal is not None
    assert proposal.to_value == pytest.approx(0.7)  # at the upper bound: the other direction


def test_integer_parameters_are_written_as_integers():
    config = tuner.apply_overrides(CONFIG, {"parameters.batchSize": 383.6}, {"parameters.batchSize"})
    assert config["parameters"]["batchSize"] == 384
    assert CONFIG["parameters"]["batchSize"] == 256  # the spec's config is not touched


@pytest.mark.parametrize(
    ("phase", "objective", "outcome"),
    [(AnalysisPhase.SUCCESSFUL, 0.52, "Kept"), (AnalysisPhase.SUCCESSFUL, 0.505, "Reverted"),
     (AnalysisPhase.FAILED, 0.9, "SLOBreach"), (AnalysisPhase.INCONCLUSIVE, None, "Inconclusive")],
    ids=["improved", "within-min-improvement", "slo-breach-wins-over-objective", "inconclusive"],
)
def test_outcome_of_a_proposal(phase, objective, outcome):
    assert tuner.outcome_of(phase, objective, 0.5, POLICY) == outcome


def test_cooldown_and_change_budget():
    state = TuningState(last_change_at=t(0), change_times=[t(0)])
    assert tuner.budget_allows(state, POLICY, t(30)) == (False, "cooldown: 30s left")
    assert tuner.budget_allows(state, POLICY, t(61))[0]
    spent = TuningState(last_change_at=t(200), change_times=[t(0), t(100), t(200)])
    allowed, why = tuner.budget_allows(spent, POLICY, t(400))
    assert not allowed
    assert "3 proposals in the last hour" in why


def test_a_new_spec_restarts_the_search_but_keeps_history():
    state = TuningState(policy="p", generation=3, overrides={"strategy.entryScore": 0.7},
                        history=[tuner.TuningRecord(time=t(0), parameter="x", from_value=1, to_value=2,
                                                    outcome="Kept")])
    fresh = tuner.for_generation(state, "p", 4)
    assert fresh.overrides == {}
    assert len(fresh.history) == 1
    assert tuner.for_generation(state, "p", 3) is state


# --- Background analysis and self-healing --------------------------------------------------------------

BACKGROUND = BackgroundAnalysis(interval_seconds=10, breach_limit=2, recent_change_seconds=600,
                                max_self_healing=1, cooldown_seconds=600)
FAILED = [Measurement(time=t(0), metric="latency", phase=AnalysisPhase.FAILED, value=0.2,
                      message="0.2 s not below 0.05 s")]
PASSED = [Measurement(time=t(0), metric="latency", phase=AnalysisPhase.SUCCESSFUL, value=0.01)]


def stable(**fields: object) -> TradingSymbolStatus:
    return TradingSymbolStatus(current_revision=3, stable_revision=3, update_revision=3, **fields)


def test_one_failed_measurement_is_not_yet_a_breach():
    outcome = assess(stable(), FAILED, BACKGROUND, t(0))
    assert outcome.action is Action.NONE
    assert outcome.background.consecutive_breaches == 1


def test_a_breach_soon_after_a_promotion_rolls_back_to_the_previous_stable_revision():
    status = stable(previous_stable_revision=2, stable_since=t(0),
                    background=BackgroundState(consecutive_breaches=1))
    outcome = assess(status, FAILED, BACKGROUND, t(120))
    assert outcome.action is Action.ROLLBACK
    assert "120s after its promotion" in outcome.message


def test_a_breach_with_no_recent_change_restarts_then_gives_up_without_looping():
    status = stable(previous_stable_revision=2, stable_since=t(0), background=BackgroundState(consecutive_breaches=1))
    outcome = assess(status, FAILED, BACKGROUND, t(700))
    assert outcome.action is Action.RESTART
    assert outcome.background.restarted_at == t(700)
    status = status.model_copy(update={"background": outcome.background.model_copy(
        update={"consecutive_breaches": 1})})
    outcome = assess(status, FAILED, BACKGROUND, t(720))
    assert outcome.action is Action.EXHAUSTED
    status = status.model_copy(update={"background": outcome.background.model_copy(
        update={"consecutive_breaches": 1})})
    assert assess(status, FAILED, BACKGROUND, t(740)).action is Action.NONE  # no loop


def test_a_passing_measurement_clears_the_breach_and_the_exhausted_mark():
    status = stable(background=BackgroundState(consecutive_breaches=1, exhausted=True))
    outcome = assess(status, PASSED, BACKGROUND, t(0))
    assert outcome.action is Action.NONE
    assert outcome.background.consecutive_breaches == 0
    assert not outcome.background.exhausted


def test_inconclusive_measurements_never_lead_to_an_action():
    few = [Measurement(time=t(0), metric="signal-hit-rate", phase=AnalysisPhase.INCONCLUSIVE, samples=4,
                       message="4 calls, fewer than the 30 needed to judge")]
    status = stable(stable_since=t(0), previous_stable_revision=2)
    for second in range(0, 100, 10):
        outcome = assess(status, few, BACKGROUND, t(second))
        assert outcome.action is Action.NONE
        assert outcome.background.consecutive_breaches == 0
        status = status.model_copy(update={"background": outcome.background})


UNANSWERED = [Measurement(time=t(0), metric="latency", phase=AnalysisPhase.ERROR, message="Prometheus: timed out")]


def test_a_healthy_measurement_of_an_unchanged_symbol_changes_nothing_in_its_status():
    """At rest a measurement is written only when it changes something (no time of measurement in the status)."""
    status = stable(background=BackgroundState(actions=[t(0)], last_answered_at=t(5)))
    for second in (10, 20, 30):
        outcome = assess(status, PASSED, BACKGROUND, t(second))
        assert (outcome.action, outcome.background) == (Action.NONE, status.background)


@pytest.mark.parametrize(("before", "measured", "unanswered_since", "last_answered_at"), [
    (BackgroundState(), UNANSWERED, t(20), None),
    (BackgroundState(unanswered_since=t(10)), UNANSWERED, t(10), None),
    (BackgroundState(unanswered_since=t(10)), PASSED, None, t(20)),
    (BackgroundState(last_answered_at=t(5)), PASSED, None, t(5)),
], ids=["outage-starts", "outage-goes-on-unwritten", "outage-ends", "answered-unwritten"])
def test_whether_prometheus_answers_is_recorded_on_its_changes_only(before, measured, unanswered_since,
                                                                   last_answered_at):
    outcome = assess(stable(background=before), measured, BACKGROUND, t(20))
    assert (outcome.background.unanswered_since, outcome.background.last_answered_at) == \
        (unanswered_since, last_answered_at)
