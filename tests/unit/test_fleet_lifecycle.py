"""The FleetRollout lifecycle, table-tested through the pure planner: retry of a stopped rollout (bound to the
generation and the failed wave, answered once), pause and resume, and the annotation taken off a Completed
rollout's symbols once their own spec carries the change."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsctl.errors import ExitCode, OpsctlError
from opsctl.fleet_cli import paused_patch, plan_abort, plan_retry
from trading_operator.fleet_api import FleetRolloutSpec
from trading_operator.fleet_override import FleetOverride
from trading_operator.fleet_planner import (
    ConsumeAbort,
    ConsumeRetry,
    FleetObserved,
    ObservedSymbol,
    change_hash,
    plan_waves,
)
from trading_operator.plans import EmitEvent

from .test_fleet_planner import (
    ABORTED,
    ANALYSING,
    NAMES,
    OURS,
    PROMOTED,
    SPEC,
    TS_SPEC,
    cleared,
    reasons,
    run,
    settled,
    started,
    states,
    symbol,
    touched,
)

NOW = "2026-12-06T00:05:00Z"


def observed(symbols: list[ObservedSymbol], status: dict[str, Any], spec: dict[str, Any] | None = None,
             retry: str | None = None, abort: bool | str = False, generation: int = 1) -> FleetObserved:
    value = abort_request() if abort is True else abort or None
    return FleetObserved("wave", generation, spec or SPEC, status, symbols, NOW, value, retry)


def abort_request(wave: int = 3, generation: int = 1, id_: str = "abort-1") -> str:
    return json.dumps({"id": id_, "generation": generation, "wave": wave})


def request(wave: int = 3, generation: int = 1, id_: str = "retry-1") -> str:
    return json.dumps({"id": id_, "generation": generation, "wave": wave})


def stopped(phase: str = "Failed") -> dict[str, Any]:
    """Wave 3 of 4 failed (on c) and every symbol the change reached runs its own revision again."""
    return {**started(3, dict.fromkeys("abcd", "RolledBack")), "phase": phase, "message": "wave 3 failed on c",
            "conditions": [{"type": "RolledBack", "status": "True", "reason": "FleetRolledBack", "message": "",
                            "lastTransitionTime": NOW, "observedGeneration": 1}]}


def back_home() -> list[ObservedSymbol]:
    return [symbol(n) for n in NAMES]


def last_answer(status: dict[str, Any]) -> tuple[str, str]:
    answer = status["requests"][-1]
    return answer["outcome"], answer["reason"]


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == type_), None)


# retry ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["Failed", "Aborted"])
def test_a_retry_starts_the_failed_wave_again_with_the_waves_before_it(phase: str) -> None:
    actions, status = run(observed(back_home(), stopped(phase), retry=request()))
    assert ConsumeRetry() in actions
    assert touched(actions) == ["a", "b", "c", "d"]
    assert (status["phase"], status["currentWave"]) == ("Progressing", 3)
    assert states(status) == {**dict.fromkeys("abcd", "Progressing"), **dict.fromkeys(NAMES[4:], "Pending")}
    assert condition(status, "RolledBack") is None, "the timer looks again (it stops on RolledBack=True)"
    assert last_answer(status) == ("Accepted", "Accepted")
    assert reasons(actions) == ["FleetRolloutRetried"]
    assert "waves 1–3" in status["requests"][-1]["message"]


def test_after_a_retry_the_waves_go_on_as_before() -> None:
    _, status = run(observed(back_home(), stopped(), retry=request()))
    retried = [symbol(n, PROMOTED if n in "abc" else ANALYSING, OURS) for n in "abcd"]
    actions, status = run(observed([*retried, *(symbol(n) for n in NAMES[4:])], status))
    assert touched(actions) == []
    assert states(status)["d"] == "Progressing"
    everyone = [symbol(n, PROMOTED, OURS) for n in "abcd"] + [symbol(n) for n in NAMES[4:]]
    actions, status = run(observed(everyone, status))
    assert touched(actions) == list(NAMES[4:])
    assert status["currentWave"] == 4


def test_a_retried_symbol_failing_again_fails_the_rollout_again() -> None:
    _, status = run(observed(back_home(), stopped(), retry=request()))
    world = [symbol("a", PROMOTED, OURS), symbol("b", PROMOTED, OURS), symbol("c", ABORTED, OURS),
             symbol("d", ANALYSING, OURS), *(symbol(n) for n in NAMES[4:])]
    actions, status = run(observed(world, status))
    assert status["phase"] == "Failed"
    assert cleared(actions) == ["a", "b", "c", "d"]
    assert reasons(actions) == ["WaveFailed"]


@pytest.mark.parametrize(("stored", "spec", "value", "abort", "reason"), [
    ({**started(3, {"a": "Succeeded"}), "phase": "Progressing"}, SPEC, request(), False, "NotFailed"),
    ({**started(4, dict.fromkeys(NAMES, "Succeeded")), "phase": "Completed"}, SPEC, request(4), False,
     "NotFailed"),
    (stopped(), SPEC, request(generation=0), False, "GenerationMoved"),
    (stopped(), SPEC, request(wave=2), False, "WaveChanged"),
    (stopped(), {**SPEC, "paused": True}, request(), False, "Paused"),
    (stopped(), SPEC, request(), True, "Superseded"),
    ({**stopped(), "symbols": started(3, {"a": "RolledBack", "b": "RollingBack"})["symbols"]}, SPEC, request(),
     False, "RollingBack"),
], ids=["still-progressing", "completed", "spec-changed", "another-wave", "paused", "abort-at-once",
        "still-rolling-back"])
def test_a_retry_that_no_longer_applies_is_refused_with_the_reason(stored: dict[str, Any], spec: dict[str, Any],
                                                                    value: str, abort: bool, reason: str) -> None:
    world = back_home() if stored["phase"] == "Failed" else [symbol(n, PROMOTED, OURS) for n in NAMES]
    actions, status = run(observed(world, stored, spec, retry=value, abort=abort))
    without = plan_waves(observed(world, stored, spec, abort=abort))
    assert ConsumeRetry() in actions
    assert [a for a in actions if not isinstance(a, ConsumeRetry | EmitEvent)] == \
        [a for a in without.actions if not isinstance(a, EmitEvent)], "a refused retry changes nothing"
    assert last_answer(status) == ("Refused", reason)
    assert "RequestRefused" in reasons(actions)
    assert status["phase"] == (without.status or stored)["phase"]


def test_a_malformed_retry_is_refused_and_removed() -> None:
    actions, status = run(observed(back_home(), stopped(), retry="{not json"))
    assert ConsumeRetry() in actions
    assert touched(actions) == []
    assert "requests" not in status or status["requests"] == []
    assert reasons(actions) == ["RequestRefused"]


def test_a_retry_is_answered_once() -> None:
    _, status = run(observed(back_home(), stopped(), retry=request()))
    again = plan_waves(observed([symbol(n, ANALYSING, OURS) for n in "abcd"] + [symbol(n) for n in NAMES[4:]],
                                status, retry=request()))
    assert ConsumeRetry() in again.actions
    assert touched(again.actions) == []
    assert "FleetRolloutRetried" not in reasons(again.actions)
    assert again.status is None or len(again.status["requests"]) == 1


def test_a_retry_of_an_invalid_rollout_is_refused() -> None:
    actions, status = run(observed(back_home(), {}, {**SPEC, "steps": ["50%", "25%"]}, retry=request(1)))
    assert status["phase"] == "Invalid"
    assert last_answer(status) == ("Refused", "NotFailed")
    assert ConsumeRetry() in actions


# abort ---------------------------------------------------------------------------------------------------

def running() -> tuple[list[ObservedSymbol], dict[str, Any]]:
    """Wave 2 under way: a promoted, b analysing."""
    world = [symbol("a", PROMOTED, OURS), symbol("b", ANALYSING, OURS), *(symbol(n) for n in NAMES[2:])]
    return world, started(2, {"a": "Succeeded", "b": "Progressing"})


def test_an_abort_for_the_generation_running_stops_it_and_is_recorded() -> None:
    world, stored = running()
    actions, status = run(observed(world, stored, abort=abort_request(wave=2)))
    assert status["phase"] == "Aborted"
    assert ConsumeAbort() in actions
    assert cleared(actions) == ["a", "b"]
    assert last_answer(status) == ("Accepted", "Accepted")
    assert status["requests"][-1]["action"] == "abort"
    assert reasons(actions) == ["FleetRolloutAborted"]


@pytest.mark.parametrize(("stored", "value", "reason"), [
    (running()[1], abort_request(generation=0), "GenerationMoved"),
    (stopped(), abort_request(), "NotRunning"),
    ({**started(4, dict.fromkeys(NAMES, "Succeeded")), "phase": "Completed"}, abort_request(4), "NotRunning"),
], ids=["spec-changed", "already-failed", "completed"])
def test_an_abort_that_no_longer_applies_is_refused_and_changes_nothing(stored: dict[str, Any], value: str,
                                                                         reason: str) -> None:
    world = running()[0] if stored["phase"] == "Progressing" else \
        back_home() if stored["phase"] == "Failed" else [symbol(n, PROMOTED, OURS) for n in NAMES]
    actions, status = run(observed(world, stored, abort=value))
    without = plan_waves(observed(world, stored))
    assert ConsumeAbort() in actions
    assert [a for a in actions if not isinstance(a, ConsumeAbort | EmitEvent)] == \
        [a for a in without.actions if not isinstance(a, EmitEvent)], "a refused abort changes nothing"
    assert last_answer(status) == ("Refused", reason)
    assert "RequestRefused" in reasons(actions)
    assert status["phase"] == (without.status or stored)["phase"]


def test_an_abort_is_answered_once() -> None:
    world, stored = running()
    _, status = run(observed(world, stored, abort=abort_request(wave=2)))
    again = plan_waves(observed(world, status, abort=abort_request(wave=2)))
    assert ConsumeAbort() in again.actions
    assert "FleetRolloutAborted" not in reasons(again.actions)
    assert again.status is None or len(again.status["requests"]) == 1


@pytest.mark.parametrize("value", ["2026-12-06T00:00:00Z", "{not json", '{"id": "x", "wave": 1}'],
                         ids=["timestamp-of-old-opsctl", "not-json", "no-generation"])
def test_a_malformed_abort_is_refused_and_removed(value: str) -> None:
    world, stored = running()
    actions, status = run(observed(world, stored, abort=value))
    assert ConsumeAbort() in actions
    assert status["phase"] == "Progressing"
    assert touched(actions) == cleared(actions) == []
    assert reasons(actions) == ["RequestRefused"]


def test_an_abort_of_an_invalid_rollout_is_refused() -> None:
    actions, status = run(observed(back_home(), {}, {**SPEC, "steps": ["50%", "25%"]}, abort=abort_request(0)))
    assert status["phase"] == "Invalid"
    assert last_answer(status) == ("Refused", "NotRunning")
    assert ConsumeAbort() in actions


# pause and resume ----------------------------------------------------------------------------------------

def test_a_paused_rollout_starts_no_wave_and_resumes_where_it_stood() -> None:
    world = [symbol("a", PROMOTED, OURS), *(symbol(n) for n in NAMES[1:])]
    actions, status = run(observed(world, started(1, {"a": "Progressing"}), {**SPEC, "paused": True}))
    assert touched(actions) == []
    assert status["phase"] == "Paused"
    assert status["message"] == "paused before wave 2/4 (spec.paused)"
    progressing = condition(status, "Progressing")
    assert progressing is not None
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "FleetRolloutPaused")
    assert reasons(actions) == ["WaveSucceeded", "FleetRolloutPaused"]
    assert plan_waves(observed(world, status, {**SPEC, "paused": True})).actions == [], "said once"
    actions, status = run(observed(world, status))
    assert touched(actions) == ["b"]
    assert status["phase"] == "Progressing"
    assert reasons(actions) == ["WaveStarted", "FleetRolloutResumed"]


def test_a_rollout_created_paused_touches_nothing() -> None:
    actions, status = run(observed(back_home(), {}, {**SPEC, "paused": True}))
    assert touched(actions) == []
    assert (status["phase"], status["currentWave"]) == ("Paused", 0)
    assert status["message"] == "paused before wave 1/4 (spec.paused)"


def test_a_paused_wave_finishes_and_a_failure_still_rolls_back() -> None:
    busy = [symbol("a", PROMOTED, OURS), symbol("b", ANALYSING, OURS), *(symbol(n) for n in NAMES[2:])]
    _, status = run(observed(busy, started(2, {"a": "Succeeded", "b": "Progressing"}), {**SPEC, "paused": True}))
    assert status["phase"] == "Paused"
    assert "b" in status["message"]
    failing = [symbol("a", PROMOTED, OURS), symbol("b", ABORTED, OURS), *(symbol(n) for n in NAMES[2:])]
    actions, status = run(observed(failing, status, {**SPEC, "paused": True}))
    assert status["phase"] == "Failed"
    assert cleared(actions) == ["a", "b"]


# a Completed rollout's annotation ------------------------------------------------------------------------

COMMITTED_SPEC = {**TS_SPEC, "image": "ghcr.io/tradeops/trading-runtime:2.0.0"}


def completed(committed: str) -> list[ObservedSymbol]:
    """Every symbol promoted the change; those named in `committed` also carry it in their own spec."""
    return [symbol(n, PROMOTED, OURS, spec=COMMITTED_SPEC if n in committed else None) for n in NAMES]


def test_the_annotation_comes_off_a_symbol_whose_spec_carries_the_change() -> None:
    stored = {**started(4, dict.fromkeys(NAMES, "Succeeded")), "phase": "Completed"}
    actions, status = run(observed(completed("ab"), stored))
    assert cleared(actions) == ["a", "b"]
    assert touched(actions) == []
    assert states(status) == {**dict.fromkeys("ab", "Committed"), **dict.fromkeys(NAMES[2:], "Succeeded")}
    assert status["phase"] == "Completed"
    assert reasons(actions) == ["FleetChangeCommitted"]
    # Taken off: the symbol runs its spec, the same revision, and the rollout leaves it alone from then on.
    home = [symbol(n, settled(2), None, spec=COMMITTED_SPEC) if n in "ab" else s
            for n, s in zip(NAMES, completed(""), strict=True)]
    again = plan_waves(observed(home, status))
    assert again.actions == []
    assert again.status is None


@pytest.mark.parametrize(("config", "spec_config", "comes_off"), [
    ({"strategy": {"entryScore": 0.65}}, {"strategy": {"entryScore": 0.65, "exitScore": 0.3}}, True),
    ({"strategy": {"entryScore": 0.65}}, {"strategy": {"entryScore": 0.6}}, False),
    ({"strategy": {"entryScore": 0.65}}, {}, False),
], ids=["committed", "committed-otherwise", "not-committed"])
def test_a_config_change_comes_off_only_when_the_spec_says_the_same(config: dict[str, Any],
                                                                     spec_config: dict[str, Any],
                                                                     comes_off: bool) -> None:
    spec = {**SPEC, "change": {"config": config}}
    ours = FleetOverride(rollout="wave", change=change_hash(FleetRolloutSpec.model_validate(spec)), config=config)
    world = [symbol(n, settled(2, ours.ref), ours, spec={**TS_SPEC, "config": spec_config}) for n in NAMES]
    stored = {**started(4, dict.fromkeys(NAMES, "Succeeded")), "change": ours.change, "phase": "Completed"}
    actions, status = run(observed(world, stored, spec))
    assert cleared(actions) == (sorted(NAMES) if comes_off else [])
    assert set(states(status).values()) == {"Committed" if comes_off else "Succeeded"}


def test_nothing_comes_off_before_the_rollout_completes() -> None:
    world = [symbol("a", PROMOTED, OURS, spec=COMMITTED_SPEC), symbol("b", ANALYSING, OURS),
             *(symbol(n) for n in NAMES[2:])]
    actions, status = run(observed(world, started(2, {"a": "Succeeded", "b": "Progressing"})))
    assert cleared(actions) == []
    assert states(status)["a"] == "Succeeded"


# opsctl fleet retry: what it sends, and what it refuses itself ------------------------------------------

def rollout(phase: str, paused: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": "up", "generation": 3}, "spec": {**SPEC, "paused": paused},
            "status": {"phase": phase, "currentWave": 2}}


def test_opsctl_binds_a_retry_to_the_generation_and_the_stopped_wave() -> None:
    request_ = plan_retry(rollout("Failed"))
    assert (request_.generation, request_.wave) == (3, 2)
    assert request_.id.startswith("retry-")
    assert plan_retry(rollout("Failed")).id != request_.id, "a fresh id each time"


@pytest.mark.parametrize(("obj", "problem"), [
    (rollout("Progressing"), "nothing to retry: the rollout is Progressing"),
    (rollout("Completed"), "nothing to retry: the rollout is Completed"),
    (rollout("Aborted", paused=True), "the rollout is paused: `opsctl fleet resume up` first"),
    ({**rollout("Failed"), "status": {"phase": "Failed", "currentWave": 2,
                                      "symbols": [{"name": "b", "wave": 1, "state": "RollingBack"}]}},
     "the change is still being taken back from b"),
], ids=["progressing", "completed", "paused", "rolling-back"])
def test_opsctl_refuses_a_retry_that_cannot_apply(obj: dict[str, Any], problem: str) -> None:
    with pytest.raises(OpsctlError) as refused:
        plan_retry(obj)
    assert refused.value.code is ExitCode.REJECTED
    assert problem in str(refused.value)


def test_opsctl_binds_an_abort_to_the_generation_it_saw() -> None:
    request_ = plan_abort(rollout("Progressing"))
    assert (request_.generation, request_.wave) == (3, 2)
    assert request_.id.startswith("abort-")


@pytest.mark.parametrize("phase", ["Completed", "Failed", "Aborted", "Invalid"])
def test_opsctl_refuses_an_abort_of_a_stopped_rollout(phase: str) -> None:
    with pytest.raises(OpsctlError) as refused:
        plan_abort(rollout(phase))
    assert refused.value.code is ExitCode.REJECTED
    assert f"nothing to abort: the rollout is already {phase}" in str(refused.value)


@pytest.mark.parametrize(("annotations", "tail"), [
    (None, [{"op": "add", "path": "/metadata/annotations", "value": {"trading.tradeops.io/by": "x"}}]),
    ({"other": "kept"}, [{"op": "add", "path": "/metadata/annotations/trading.tradeops.io~1by", "value": "x"}]),
], ids=["no-annotations-yet", "other-annotations-untouched"])
def test_a_pause_is_a_json_patch_that_tests_the_generation_first(annotations: dict[str, str] | None,
                                                                  tail: list[dict[str, Any]]) -> None:
    obj = rollout("Progressing")
    obj["metadata"] = {**obj["metadata"], "annotations": annotations}
    assert paused_patch(obj, True, {"trading.tradeops.io/by": "x"}) == [
        {"op": "test", "path": "/metadata/generation", "value": 3},
        {"op": "add", "path": "/spec/paused", "value": True}, *tail]
