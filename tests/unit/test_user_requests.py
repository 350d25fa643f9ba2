"""Requests bound to their moment: the pure answers (table-driven), then through the planner the bug users hit
(a promote made while the analysis failed, turned by a later retry into "promoted by request")."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from trading_operator import naming
from trading_operator.api import AnalysisKind, AnalysisPhase, AnalysisRun, RequestAction
from trading_operator.user_requests import ANNOTATIONS, Moment, RequestPayload, answer, decode, encode, judge

from .test_planner import World
from .test_rollout import verdict, with_new_revision

STARTED = "2026-11-25T00:00:30Z"
RUN = AnalysisRun(revision=2, kind=AnalysisKind.ROLLOUT, started_at=STARTED)
# Stable 1, revision 2 of generation 2 rolled out and under analysis.
ANALYSING = Moment(generation=2, current=2, stable=1, under_way=2, run=RUN, aborted=None, paused=False,
                   revisions=frozenset({1, 2}), answered=frozenset())
ABORTED = dataclasses.replace(ANALYSING, current=1, under_way=None, aborted=2,
                              run=RUN.model_copy(update={"phase": AnalysisPhase.FAILED, "message": "latency"}))
STEADY = dataclasses.replace(ANALYSING, current=2, stable=2, under_way=None, run=None)
OLDER_FAILED = dataclasses.replace(STEADY, failed={1: "CrashLoopBackOff: pod spy-trading-1-a ..."})
"""Stable 2; revision 1 failed once (not the spec's revision: not `aborted`)."""


def request(revision: int = 2, generation: int = 2, **fields: Any) -> str:
    return encode(RequestPayload(id="r-1", revision=revision, generation=generation, **fields))


def concluded(phase: AnalysisPhase) -> Moment:
    return dataclasses.replace(ANALYSING, run=RUN.model_copy(update={"phase": phase, "message": "measured"}))


@pytest.mark.parametrize(("action", "value", "moment", "reason"), [
    (RequestAction.PROMOTE, request(run=STARTED), ANALYSING, "Accepted"),
    (RequestAction.PROMOTE, request(), ANALYSING, "Accepted"),  # asked while rolling out: its run is the one
    (RequestAction.ABORT, request(run=STARTED), ANALYSING, "Accepted"),
    (RequestAction.PROMOTE, request(run=STARTED), dataclasses.replace(
        ANALYSING, run=RUN.model_copy(update={"phase": AnalysisPhase.INCONCLUSIVE})), "Accepted"),
    (RequestAction.PROMOTE, request(run=STARTED), concluded(AnalysisPhase.FAILED), "AnalysisConcluded"),
    (RequestAction.ABORT, request(run=STARTED), concluded(AnalysisPhase.SUCCESSFUL), "AnalysisConcluded"),
    (RequestAction.PROMOTE, request(run=STARTED), ABORTED, "AnalysisConcluded"),
    (RequestAction.PROMOTE, request(run="2026-11-25T00:00:01Z"), ANALYSING, "RunChanged"),
    (RequestAction.PROMOTE, request(generation=1), ANALYSING, "GenerationMoved"),
    (RequestAction.PROMOTE, request(revision=3), ANALYSING, "RevisionChanged"),
    (RequestAction.PROMOTE, request(), STEADY, "NothingUnderWay"),
    (RequestAction.PROMOTE, request(), dataclasses.replace(ANALYSING, paused=True), "Paused"),
    (RequestAction.RETRY, request(), ABORTED, "Accepted"),
    (RequestAction.RETRY, request(), ANALYSING, "NotAborted"),
    (RequestAction.RETRY, request(generation=1), ABORTED, "GenerationMoved"),
    (RequestAction.ROLLBACK, request(to_revision=1), ANALYSING, "Accepted"),
    (RequestAction.ROLLBACK, request(to_revision=1), STEADY, "Accepted"),
    (RequestAction.ROLLBACK, request(revision=1, to_revision=2), ABORTED, "AbortedNeedsForce"),
    (RequestAction.ROLLBACK, request(revision=1, to_revision=2, force=True), ABORTED, "Accepted"),
    (RequestAction.ROLLBACK, request(revision=1, to_revision=1), ABORTED, "AlreadyRunning"),
    (RequestAction.ROLLBACK, request(to_revision=1), OLDER_FAILED, "AbortedNeedsForce"),
    (RequestAction.ROLLBACK, request(to_revision=1, force=True), OLDER_FAILED, "Accepted"),
    (RequestAction.ROLLBACK, request(to_revision=1, force=True), dataclasses.replace(OLDER_FAILED, stable=0),
     "NoStableRevision"),
    (RequestAction.ROLLBACK, request(to_revision=1, force=True), dataclasses.replace(OLDER_FAILED, paused=True),
     "Paused"),
    (RequestAction.ROLLBACK, request(to_revision=7), STEADY, "NoSuchRevision"),
    (RequestAction.ROLLBACK, request(revision=3, to_revision=1), STEADY, "RevisionChanged"),
    (RequestAction.ROLLBACK, request(generation=1, to_revision=1), STEADY, "GenerationMoved"),
    (RequestAction.RESTART, request(), STEADY, "Accepted"),
    (RequestAction.RESTART, request(), ANALYSING, "UnderAnalysis"),
    (RequestAction.RESTART, request(revision=1), STEADY, "RevisionChanged"),
    (RequestAction.RESTART, "true", STEADY, "Malformed"),
    (RequestAction.PROMOTE, '{"id": "r-1", "revision": 2}', ANALYSING, "Malformed"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 and not v.startswith("{") else None)
def test_each_request_is_accepted_only_while_its_moment_lasts(action, value, moment, reason):
    found = judge(action, value, moment)
    assert found is not None
    assert (found.reason, found.accepted) == (reason, reason == "Accepted"), found.message
    assert found.annotation == ANNOTATIONS[action]


def test_a_forced_rollback_to_the_aborted_revision_is_a_retry_not_a_promotion():
    found = judge(RequestAction.ROLLBACK, request(revision=1, to_revision=2, force=True), ABORTED)
    assert found is not None
    assert found.forced_retry
    assert "fresh analysis" in found.message


def test_a_forced_rollback_to_an_older_failed_revision_runs_it_under_analysis():
    plain = judge(RequestAction.ROLLBACK, request(to_revision=1), OLDER_FAILED)
    assert plain is not None
    assert "revision 1 is marked failed (CrashLoopBackOff: pod spy-trading-1-a ...)" in plain.message
    found = judge(RequestAction.ROLLBACK, request(to_revision=1, force=True), OLDER_FAILED)
    assert found is not None
    assert (found.forced_analysis, found.forced_retry) == (True, False)
    assert "revision 2 stays stable until it passes" in found.message


def test_a_request_answered_before_is_not_acted_on_again():
    moment = dataclasses.replace(ANALYSING, answered=frozenset({"r-1"}))
    assert judge(RequestAction.PROMOTE, request(run=STARTED), moment) is None
    answers = answer({naming.PROMOTE_ANNOTATION: request(run=STARTED)}, moment)
    assert (answers.new, answers.repeated) == ([], [naming.PROMOTE_ANNOTATION])
    assert answers.annotations() == [naming.PROMOTE_ANNOTATION]  # removed all the same


def test_of_conflicting_requests_the_safer_one_wins():
    both = {naming.PROMOTE_ANNOTATION: request(run=STARTED), naming.ABORT_ANNOTATION: request(run=STARTED)}
    answers = answer(both, ANALYSING)
    assert answers.accepted(RequestAction.ABORT) is not None
    assert answers.accepted(RequestAction.PROMOTE) is None
    promote = next(a for a in answers.new if a.action is RequestAction.PROMOTE)
    assert promote.reason == "Superseded"
    with_restart = answer({naming.RESTART_ANNOTATION: request(revision=2), naming.ROLLBACK_ANNOTATION:
                           request(to_revision=1)}, STEADY)
    assert [a.reason for a in with_restart.new] == ["Accepted", "Superseded"]  # its pods are being replaced


def test_the_payload_round_trips_and_refuses_foreign_fields():
    payload = decode(request(run=STARTED, to_revision=1, force=True))
    assert isinstance(payload, RequestPayload)
    assert (payload.run, payload.to_revision, payload.force) == (STARTED, 1, True)
    assert isinstance(decode('{"id": "r-1", "revision": 2, "generation": 2, "extra": 1}'), str)
    assert isinstance(decode('{"id": "bad id!", "revision": 2, "generation": 2}'), str)


# Through the planner -----------------------------------------------------------------------------------------


def test_a_promote_made_as_the_analysis_failed_is_refused_and_a_later_retry_analyses_again():
    """The reported bug: `opsctl promote` said "requested" while the analysis failed at the same moment; the
    annotation stayed, and the next `opsctl retry` promoted the revision at once, skipping its analysis."""
    world = with_new_revision()
    promote = world.request(RequestAction.PROMOTE)  # opsctl saw the run Running
    verdict(world, "Failed", "tick-to-signal-latency: 0.12 s not below 0.05 s")  # lands in the same reconcile
    assert world.running_revision() == 1
    assert world.status["abortedRevision"] == 2
    refused = world.answer(promote)
    assert refused is not None
    assert (refused["outcome"], refused["reason"]) == ("Refused", "AnalysisConcluded")
    assert naming.PROMOTE_ANNOTATION not in world.annotations
    assert world.condition("LastRequest")["status"] == "False"
    assert any(e.reason == "RequestRefused" and promote in e.message for e in world.events)
    world.deployment_ready()
    world.step()
    retry = world.request(RequestAction.RETRY)
    world.step()
    assert world.answer(retry)["outcome"] == "Accepted"
    world.deployment_ready()
    world.step()
    assert world.status["stableRevision"] == 1  # not promoted by a stale request
    assert world.status["analysis"]["phase"] == "Running"  # analysed afresh
    assert not any("promoted by request" in e.message for e in world.events)


def test_a_promote_whose_annotation_came_back_is_not_acted_on_twice():
    """A request whose annotation survived (its removal failed) is recognised by its id and ignored."""
    world = with_new_revision()
    promote = world.request(RequestAction.PROMOTE)
    value = world.annotations[naming.PROMOTE_ANNOTATION]
    world.step()
    assert world.status["stableRevision"] == 2
    world.edit_spec({"config": {"strategy": {"entryScore": 0.75}}})
    world.generation -= 1  # same generation as the request: only its id tells it apart
    world.deployment_ready()
    world.step()
    world.annotations[naming.PROMOTE_ANNOTATION] = value
    world.step()
    assert [r["id"] for r in world.status["requests"]].count(promote) == 1
    assert world.status["stableRevision"] == 2
    assert naming.PROMOTE_ANNOTATION not in world.annotations


def test_rollback_to_an_aborted_revision_needs_force_and_then_runs_its_analysis():
    world = with_new_revision()
    verdict(world, "Failed", "latency")
    world.deployment_ready()
    world.step()
    plain = world.request(RequestAction.ROLLBACK, to_revision=2)
    world.step()
    assert world.answer(plain)["reason"] == "AbortedNeedsForce"
    assert world.running_revision() == 1
    forced = world.request(RequestAction.ROLLBACK, to_revision=2, force=True)
    world.step()
    assert world.answer(forced)["outcome"] == "Accepted"
    assert world.running_revision() == 2
    assert world.status["stableRevision"] == 1  # not stable without an analysis
    world.deployment_ready()
    world.step()
    run = world.status["analysis"]
    assert (run["revision"], run["phase"]) == (2, "Running")


def test_restart_stamps_the_pod_template_of_the_running_revision():
    world = World()
    world.converge()
    before = world.children["Deployment"]["spec"]["template"]["metadata"].get("annotations", {})
    asked = world.request(RequestAction.RESTART)
    world.step()
    assert world.answer(asked)["outcome"] == "Accepted"
    stamped = world.children["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert stamped[naming.RESTARTED_AT_ANNOTATION] != before.get(naming.RESTARTED_AT_ANNOTATION)
    assert world.running_revision() == 1
    assert len(world.revisions) == 1
    assert "Restarting" in world.reasons()


def test_requests_kept_in_status_are_bounded():
    world = World()
    world.converge()
    for _ in range(15):
        world.request(RequestAction.RESTART)
        world.step()
    assert len(world.status["requests"]) == 10
    assert world.status["requests"][-1]["id"] == "restart-15"


def test_while_paused_a_retry_or_a_forced_rollback_is_refused_not_left_hanging():
    paused = dataclasses.replace(ABORTED, paused=True)
    assert judge(RequestAction.RETRY, request(), paused).reason == "Paused"
    assert judge(RequestAction.ROLLBACK, request(revision=1, to_revision=2, force=True), paused).reason == "Paused"


def test_requests_meeting_an_invalid_spec_are_refused_with_the_reason():
    world = World()
    world.converge()
    asked = world.request(RequestAction.RESTART)
    world.edit_spec({"config": {"strategy": {"entryScore": 0.2, "exitScore": 0.5}}})
    world.step()
    assert world.status["phase"] == "Invalid"
    refused = world.answer(asked)
    assert (refused["outcome"], refused["reason"]) == ("Refused", "SpecInvalid")
    assert "exitScore" in refused["message"]
    assert naming.RESTART_ANNOTATION not in world.annotations
    assert world.condition("LastRequest")["reason"] == "RequestRefused"
