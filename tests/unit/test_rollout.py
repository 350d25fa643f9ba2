"""Rollout decisions through the planner: analysis verdicts, shadow runs, requests, tuning proposals."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trading_operator import naming
from trading_operator.api import AnalysisPhase, Measurement, RequestAction
from trading_operator.findings import ObjectiveMeasured, RunMeasured, StableMeasured
from trading_operator.planner import plan

from .test_planner import BASE_SPEC, World


def with_new_revision(spec: dict | None = None) -> World:
    """A world with stable revision 1 and revision 2 rolled out, its analysis just started."""
    world = World(spec)
    world.converge()
    assert world.status["stableRevision"] == 1  # the first revision has nothing to compare with
    world.edit_spec({"config": {"strategy": {"entryScore": 0.7}}})
    world.converge()
    return world


def verdict(world: World, phase: str, message: str = "measured") -> None:
    """What the analysis loop writes when a run ends."""
    world.status["analysis"] = {**world.status["analysis"], "phase": phase, "message": message,
                                "finishedAt": "2026-11-25T00:01:00Z"}
    world.step()


def test_a_rolled_out_revision_gets_an_analysis_run_and_is_not_yet_stable():
    world = with_new_revision()
    run = world.status["analysis"]
    assert (run["revision"], run["kind"], run["phase"]) == (2, "Rollout", "Running")
    assert world.status["stableRevision"] == 1
    assert world.status["phase"] == "Progressing"
    assert world.condition("Progressing")["reason"] == "AnalysisRunning"
    assert "AnalysisStarted" in world.reasons()


def test_a_successful_run_promotes_the_revision():
    world = with_new_revision()
    verdict(world, "Successful", "3 measurements passed")
    assert (world.status["stableRevision"], world.status["previousStableRevision"]) == (2, 1)
    assert world.status["phase"] == "Ready"
    assert world.events[-1].reason == "Promoted"
    assert "3 measurements passed" in world.events[-1].message


def test_a_failed_run_rolls_back_and_holds_the_revision_until_a_retry():
    world = with_new_revision()
    verdict(world, "Failed", "tick-to-signal-latency: 0.12 s not below 0.05 s")
    assert world.running_revision() == 1
    assert world.status["abortedRevision"] == 2
    assert world.status["phase"] == "Degraded"
    assert world.status["lastRollback"]["reason"] == "AnalysisFailed: tick-to-signal-latency: 0.12 s not below 0.05 s"
    rolled_back = next(e for e in world.events if e.reason == "RolledBack")
    assert rolled_back.type == "Warning"
    assert "0.12 s" in rolled_back.message
    world.deployment_ready()
    world.step()
    assert world.running_revision() == 1  # not retried by itself
    world.request(RequestAction.RETRY)
    world.step()
    assert world.running_revision() == 2
    assert "abortedRevision" not in world.status
    assert naming.RETRY_ANNOTATION not in world.annotations
    world.deployment_ready()
    world.step()
    assert world.status["analysis"]["phase"] == "Running"  # a fresh run


def test_a_failed_revision_the_spec_leaves_and_comes_back_to_is_analysed_afresh():
    """Its old verdict was acted on (rolled back): coming back to it (the spec returns to it, or a FleetRollout's
    retry hands its change back) starts a new analysis run, not an instant rollback on the old verdict."""
    world = with_new_revision()
    verdict(world, "Failed", "tick-to-signal-latency: 0.12 s not below 0.05 s")
    world.deployment_ready()
    world.step()
    world.edit_spec({"config": None})  # back to revision 1's spec
    world.converge()
    assert (world.status["updateRevision"], world.running_revision()) == (1, 1)
    assert "abortedRevision" not in world.status
    world.edit_spec({"config": {"strategy": {"entryScore": 0.7}}})  # revision 2 again
    world.converge()
    assert world.status["updateRevision"] == 2
    assert world.running_revision() == 2
    run = world.status["analysis"]
    assert (run["revision"], run["phase"]) == (2, "Running")
    assert world.reasons().count("RolledBack") == 1
    verdict(world, "Failed", "tick-to-signal-latency: 0.2 s not below 0.05 s")
    assert world.running_revision() == 1, "the new run's verdict is acted on"
    assert world.reasons().count("RolledBack") == 2


def test_an_inconclusive_run_holds_and_never_rolls_back():
    world = with_new_revision()
    verdict(world, "Inconclusive", "metrics unavailable: 5 query errors in a row")
    world.step()
    assert world.running_revision() == 2
    assert world.status["phase"] == "Paused"
    paused = world.condition("Paused")
    assert paused["reason"] == "AnalysisInconclusive"
    assert "metrics unavailable" in paused["message"]
    assert "RolledBack" not in world.reasons()
    world.request(RequestAction.PROMOTE)
    world.step()
    assert world.status["stableRevision"] == 2


def test_abort_during_a_run_rolls_back():
    world = with_new_revision()
    world.request(RequestAction.ABORT)
    world.step()
    assert world.running_revision() == 1
    assert world.status["abortedRevision"] == 2
    assert "aborted by request" in world.status["lastRollback"]["reason"]


def test_a_shadow_revision_runs_beside_stable_with_trading_off_and_takes_over_on_success():
    world = World({**BASE_SPEC, "rollout": {"shadow": True}})
    world.converge()
    world.edit_spec({"config": {"strategy": {"entryScore": 0.7}}})
    world.step()
    assert world.running_revision() == 1
    shadow = world.children["shadow/Deployment"]
    labels = shadow["spec"]["template"]["metadata"]["labels"]
    assert labels[naming.REVISION_LABEL] == "2"
    assert labels[naming.TRACK_LABEL] == "shadow"
    assert shadow["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "spy-shadow"
    assert "tradingEnabled: false" in world.children["shadow/ConfigMap"]["data"]["switches.yaml"]
    world.deployment_ready("shadow/Deployment")
    world.step()
    run = world.status["analysis"]
    assert (run["kind"], run["revision"], run["baselineRevision"]) == ("Shadow", 2, 1)
    verdict(world, "Successful")
    assert world.running_revision() == 2
    assert "shadow/Deployment" not in world.children
    assert world.status["stableRevision"] == 2


def test_a_failed_shadow_is_removed_and_stable_never_stopped_trading():
    world = World({**BASE_SPEC, "rollout": {"shadow": True}})
    world.converge()
    world.edit_spec({"config": {"strategy": {"entryScore": 0.7}}})
    world.step()
    world.deployment_ready("shadow/Deployment")
    world.step()
    verdict(world, "Failed", "signal-hit-rate: 0.41 vs stable 0.52: worse by more than 0.05")
    assert world.running_revision() == 1
    assert "shadow/Deployment" not in world.children
    assert "shadow/ConfigMap" not in world.children
    assert world.status["abortedRevision"] == 2
    assert "Shadow analysis of revision 2 failed" in next(e.message for e in world.events if e.reason == "RolledBack")


def tuned_world() -> World:
    world = World({**BASE_SPEC, "policies": {"tuning": "hit-rate"}})
    world.converge()
    tuning = world.status["tuning"]
    assert tuning["policy"] == "hit-rate"
    # What the analysis loop writes when it starts a proposal.
    world.status["tuning"] = {**tuning, "candidate": {"strategy.entryScore": 0.7}, "baselineObjective": 0.5,
                              "lastChangeAt": "2026-11-25T00:00:01Z", "changeTimes": ["2026-11-25T00:00:01Z"]}
    world.step()
    world.deployment_ready()
    world.step()
    return world


def test_a_tuning_proposal_is_a_revision_with_its_own_analysis():
    world = tuned_world()
    assert world.running_revision() == 2
    config = world.runtime_config()
    assert "entryScore: 0.7" in config
    assert world.status["analysis"]["kind"] == "Tuning"


def test_an_improving_proposal_is_kept_and_becomes_stable():
    world = tuned_world()
    world.status["analysis"]["measurements"] = [
        {"time": "2026-11-25T00:00:09Z", "metric": "objective", "phase": "Successful", "value": 0.56}]
    verdict(world, "Successful")
    assert world.status["stableRevision"] == 2
    assert world.status["tuning"]["overrides"] == {"strategy.entryScore": 0.7}
    assert world.status["tuning"]["history"][-1]["outcome"] == "Kept"
    assert "TuningKept" in world.reasons()
    # The spec in git is untouched; the stable revision carries the tuned value.
    assert world.spec.get("config") is None
    world.step()
    assert world.running_revision() == 2


def test_a_proposal_that_breaches_an_slo_is_reverted():
    world = tuned_world()
    verdict(world, "Failed", "error-ratio: 0.03 not below 0.01")
    assert world.running_revision() == 1
    assert world.status["tuning"]["history"][-1]["outcome"] == "SLOBreach"
    assert world.status["tuning"]["overrides"] == {}
    assert "candidate" not in world.status["tuning"]
    assert "abortedRevision" not in world.status  # a reverted experiment is not a degraded symbol
    assert world.status["lastRollback"]["reason"].startswith("TuningSLOBreach")


def test_an_unknown_policy_makes_the_spec_invalid():
    world = World({**BASE_SPEC, "policies": {"slo": "nope"}})
    world.step()
    assert world.status["phase"] == "Invalid"
    assert "spec.policies.slo: no SLOPolicy named 'nope'" in world.condition("SpecValid")["message"]
    assert "Deployment" not in world.children


def test_a_self_healing_restart_is_stamped_on_the_pod_template():
    world = World()
    world.converge()
    world.status["background"] = {"restartedAt": "2026-11-25T00:05:00Z", "actions": ["2026-11-25T00:05:00Z"]}
    result = plan(world.observe())
    world.step()
    annotations = world.children["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations[naming.RESTARTED_AT_ANNOTATION] == "2026-11-25T00:05:00Z"
    assert result.actions


def failed(metric: str = "tick-to-signal-latency", value: float = 0.12) -> Measurement:
    return Measurement(time="2026-11-25T00:00:30Z", metric=metric, phase=AnalysisPhase.FAILED, value=value,
                       message=f"{value} s not below 0.05 s")


def test_the_planner_folds_run_findings_into_the_verdict_and_acts_on_it_in_one_plan():
    world = with_new_revision()
    run = world.status["analysis"]
    for _ in range(5):
        world.findings.append(RunMeasured(2, run["startedAt"], (failed(),), "2026-11-25T00:00:30Z"))
    world.step()
    assert world.status["analysis"]["phase"] == "Failed"
    assert world.running_revision() == 1
    assert world.status["abortedRevision"] == 2
    assert world.reasons()[-2:] == ["AnalysisFailed", "RolledBack"]


def test_a_finding_about_a_run_that_has_changed_is_dropped():
    world = with_new_revision()
    for _ in range(5):
        world.findings.append(RunMeasured(2, "2026-11-24T00:00:00Z", (failed(),), "2026-11-25T00:00:30Z"))
    world.step()
    assert world.status["analysis"]["phase"] == "Running"
    assert world.status["analysis"]["measurements"] == []
    assert world.running_revision() == 2


def test_a_background_breach_soon_after_a_promotion_rolls_back_in_the_planner():
    world = with_new_revision()
    verdict(world, "Successful")
    assert (world.status["stableRevision"], world.status["previousStableRevision"]) == (2, 1)
    world.deployment_ready()
    world.step()
    breach_limit = 3  # policies/defaults/analysis.yaml
    for _ in range(breach_limit):
        world.findings.append(StableMeasured(2, (failed(),), "2026-11-25T00:01:00Z"))
        world.step()
    assert world.status["stableRevision"] == 1
    assert world.status["abortedRevision"] == 2
    assert world.status["lastRollback"]["reason"].startswith("SLOBreach: tick-to-signal-latency")
    assert world.running_revision() == 1
    assert world.reasons().count("RolledBack") == 1
    world.deployment_ready()
    world.step()
    assert world.running_revision() == 1  # nothing loops back to the breaching revision


def test_a_measured_objective_starts_a_tuning_proposal_as_a_new_revision():
    world = World({**BASE_SPEC, "policies": {"tuning": "hit-rate"}})
    world.converge()
    world.findings.append(ObjectiveMeasured(1, 0.5, "2026-11-25T00:10:00Z"))
    world.step()
    tuning = world.status["tuning"]
    assert tuning["candidate"]
    assert tuning["baselineObjective"] == 0.5
    assert "TuningProposed" in world.reasons()
    assert world.running_revision() == 2


def test_a_rollback_remounts_the_exact_bytes_of_the_stable_config_and_old_configs_are_pruned():
    world = with_new_revision()
    stable_bytes = world.runtime_config(1)
    assert world.runtime_config() != stable_bytes
    assert "entryScore: 0.7" in world.runtime_config()
    verdict(world, "Failed", "tick-to-signal-latency: 0.12 s not below 0.05 s")
    assert world.running_revision() == 1
    assert world.runtime_config() == stable_bytes
    assert world.children[f"config/{world.deployment_config_name()}"]["immutable"] is True
    world.spec["revisionHistoryLimit"] = 1
    for score in (0.71, 0.72):
        world.edit_spec({"config": {"strategy": {"entryScore": score}}})
        world.step()
        world.deployment_ready()
        world.step()
    configs = {v["metadata"]["labels"][naming.REVISION_LABEL] for k, v in world.children.items()
               if k.startswith("config/")}
    revisions = {str(r["revision"]) for r in world.revisions.values()}
    assert configs <= revisions  # a pruned revision's config goes with it
    assert str(world.running_revision()) in configs


def crash_looping_pod(revision: int, name: str = "spy-trading-abc-1") -> dict:
    return {"metadata": {"name": name, "labels": {naming.REVISION_LABEL: str(revision)}},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{
                "name": "trading", "restartCount": 3, "ready": False,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                                      "message": "back-off 40s restarting failed container=trading"}},
                "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                             "message": "cannot start: runtime.yaml: thresholds invalid"}}}]}}


def test_a_crash_looping_revision_is_rolled_back_at_once_with_the_pod_level_reason():
    world = World()
    world.converge()
    world.edit_spec({"config": {"strategy": {"entryScore": 0.7}}})
    world.step()
    assert world.running_revision() == 2
    world.pods = [crash_looping_pod(2)]
    world.step()
    assert world.running_revision() == 1
    assert world.status["abortedRevision"] == 2
    assert world.status["phase"] == "Degraded"
    assert world.status["lastRollback"]["reason"].startswith("CrashLoopBackOff: pod spy-trading-abc-1")
    assert "cannot start: runtime.yaml: thresholds invalid" in world.status["lastRollback"]["reason"]
    assert world.status["analysis"]["phase"] == "Failed"  # what `opsctl analysis` shows
    assert "CrashLoopBackOff" in world.status["analysis"]["message"]
    assert "CrashLoopBackOff" in world.condition("Degraded")["message"]
    rolled_back = [e for e in world.events if e.reason == "RolledBack"]
    assert len(rolled_back) == 1
    assert "CrashLoopBackOff" in rolled_back[0].message
    world.step()
    assert len([e for e in world.events if e.reason == "RolledBack"]) == 1


def test_a_revision_past_its_progress_deadline_is_rolled_back_with_the_pods_reason():
    world = World()
    world.converge()
    world.edit_spec({"image": "ghcr.io/tradeops/runtime:no-such-tag"})
    world.step()
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "ghcr.io/tradeops/runtime:no-such-tag"'}
    pod = {"metadata": {"name": "spy-trading-def-1", "labels": {naming.REVISION_LABEL: "2"}},
           "status": {"containerStatuses": [{"name": "trading", "restartCount": 0, "state": {"waiting": waiting}}]}}
    world.pods = [pod]
    world.step()
    assert world.running_revision() == 2  # an image pull may still succeed: waits for the deadline
    deployment = world.children["Deployment"]
    assert deployment["spec"]["progressDeadlineSeconds"] == 120
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {"observedGeneration": 1, "conditions": [{
        "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "spy-trading-def" has timed out progressing.'}]}
    world.step()
    assert world.running_revision() == 1
    assert world.status["lastRollback"]["reason"].startswith("ImagePullBackOff: pod spy-trading-def-1")
    assert "progress deadline exceeded" in world.status["lastRollback"]["reason"]


def test_a_first_revision_that_never_becomes_ready_is_degraded_and_nothing_loops():
    world = World()
    world.step()
    world.pods = [crash_looping_pod(1)]
    world.step()
    world.step()
    assert world.status["phase"] == "Degraded"
    degraded = world.condition("Degraded")
    assert degraded["reason"] == "CrashLoopBackOff"
    assert "no stable revision to return to" in degraded["message"]
    assert world.running_revision() == 1
    assert world.reasons().count("CrashLoopBackOff") == 1  # one Event, not one per reconcile
    assert world.status["analysis"]["phase"] == "Failed"
    world.edit_spec({"config": {"strategy": {"entryScore": 0.7}}})  # the fix
    world.pods = []
    world.converge()
    assert world.status["stableRevision"] == 2
    assert world.status["phase"] == "Ready"


def _held(world: World) -> None:
    verdict(world, "Inconclusive", "signal-hit-rate: 3 scored signals, fewer than the 20 needed")
    assert world.status["phase"] == "Paused"


def _paused(world: World) -> None:
    world.edit_spec({"paused": True})
    world.step()
    assert world.status["phase"] == "Paused"


def _successful_not_yet_acted_on(world: World) -> None:
    world.status["analysis"] = {**world.status["analysis"], "phase": "Successful", "message": "3 passed"}


@pytest.mark.parametrize(("before", "phase_before"), [
    (lambda world: None, "Running"),
    (_held, "Inconclusive"),
    (_paused, "Running"),
    (_successful_not_yet_acted_on, "Successful"),
], ids=["analysis-running", "inconclusive-held", "paused-by-spec", "successful-same-reconcile"])
def test_a_revision_that_crash_loops_after_passing_readiness_is_rolled_back_whatever_its_analysis_says(
        before: Callable[[World], None], phase_before: str) -> None:
    world = with_new_revision()
    assert world.status["analysis"]["phase"] == "Running"
    before(world)
    world.pods = [crash_looping_pod(2)]
    world.step()
    assert world.running_revision() == 1
    assert (world.status["stableRevision"], world.status["abortedRevision"]) == (1, 2)
    assert world.status["lastRollback"]["reason"].startswith("CrashLoopBackOff: pod spy-trading-abc-1")
    run = world.status["analysis"]
    assert run["phase"] == "Failed"
    assert run["message"].startswith("never ready: CrashLoopBackOff")
    assert (f"analysis was {phase_before}" in run["message"]) == (phase_before != "Running")
    assert world.condition("Degraded")["reason"] == "RolledBack"
    world.step()
    world.step()
    assert world.reasons().count("RolledBack") == 1  # once, not once per reconcile
    assert world.running_revision() == 1


def test_an_explicit_promote_outranks_a_crash_loop_and_the_stable_one_is_then_reported():
    world = with_new_revision()
    world.pods = [crash_looping_pod(2)]
    world.request(RequestAction.PROMOTE)
    world.step()
    assert world.status["stableRevision"] == 2
    assert "RolledBack" not in world.reasons()
    world.step()
    assert world.condition("Degraded")["reason"] == "CrashLoopBackOff"


def test_a_stable_revision_that_starts_crash_looping_is_reported_once_and_never_rolled_back():
    world = with_new_revision()
    verdict(world, "Successful")
    assert world.status["stableRevision"] == 2
    world.pods = [crash_looping_pod(2)]
    world.step()
    world.step()
    assert (world.running_revision(), world.status["stableRevision"]) == (2, 2)
    assert "abortedRevision" not in world.status
    assert world.status["phase"] == "Degraded"
    degraded = world.condition("Degraded")
    assert degraded["reason"] == "CrashLoopBackOff"
    assert degraded["message"].startswith("Stable revision 2 cannot stay ready (not rolled back")
    assert "thresholds invalid" in degraded["message"]
    warnings = [e for e in world.events if e.reason == "CrashLoopBackOff"]
    assert [e.type for e in warnings] == ["Warning"]  # once, not once per reconcile
    assert "RolledBack" not in world.reasons()
    world.pods = []  # the cause went away (e.g. a dependency came back)
    world.step()
    assert world.status["phase"] == "Ready"
    assert world.condition("Degraded")["reason"] == "AsExpected"


def with_failed_then_stable() -> World:
    """Revision 2 failed its analysis; the spec moved on to revision 3, which is stable: 2 is no longer the
    aborted revision, but still a failed one."""
    world = with_new_revision()
    verdict(world, "Failed", "tick-to-signal-latency: 0.12 s not below 0.05 s")
    world.deployment_ready()
    world.edit_spec({"config": {"strategy": {"entryScore": 0.75}}})
    world.converge()
    verdict(world, "Successful", "10 measurements passed")
    assert (world.status["stableRevision"], world.status.get("abortedRevision")) == (3, None)
    assert [(f["revision"], f["reason"]) for f in world.status["failedRevisions"]] == [
        (2, "AnalysisFailed: tick-to-signal-latency: 0.12 s not below 0.05 s")]
    return world


def test_a_rollback_to_an_older_failed_revision_needs_force():
    world = with_failed_then_stable()
    refused = world.request(RequestAction.ROLLBACK, to_revision=2)
    world.step()
    answer = world.answer(refused)
    assert answer is not None
    assert (answer["outcome"], answer["reason"]) == ("Refused", "AbortedNeedsForce")
    assert "revision 2 is marked failed (AnalysisFailed: tick-to-signal-latency: 0.12 s" in answer["message"]
    assert world.running_revision() == 3
    assert world.status["stableRevision"] == 3


def _forced_back_to_2(world: World) -> None:
    accepted = world.request(RequestAction.ROLLBACK, to_revision=2, force=True)
    world.step()
    assert world.answer(accepted)["outcome"] == "Accepted"  # type: ignore[index]
    assert world.running_revision() == 2
    assert world.status["stableRevision"] == 3  # not stable without an analysis
    assert world.status["forcedRollback"]["revision"] == 2
    world.deployment_ready()
    world.step()
    run = world.status["analysis"]
    assert (run["revision"], run["phase"], run.get("tallies", [])) == (2, "Running", [])  # a fresh run
    assert world.status["phase"] == "Progressing"


def test_a_forced_rollback_to_an_older_failed_revision_that_fails_again_returns_to_stable():
    world = with_failed_then_stable()
    _forced_back_to_2(world)
    verdict(world, "Failed", "error-ratio: 0.2 not below 0.01")
    assert world.running_revision() == 3
    assert world.status["stableRevision"] == 3
    assert world.status.get("abortedRevision") is None  # the spec's revision 3 runs as before
    assert "forcedRollback" not in world.status
    assert [(f["revision"], f["reason"]) for f in world.status["failedRevisions"]] == [
        (2, "AnalysisFailed: error-ratio: 0.2 not below 0.01")]
    world.deployment_ready()
    world.step()
    assert world.running_revision() == 3  # and stays: nothing loops


def test_a_forced_rollback_to_an_older_failed_revision_that_passes_becomes_stable():
    world = with_failed_then_stable()
    _forced_back_to_2(world)
    verdict(world, "Successful", "10 measurements passed")
    assert (world.status["stableRevision"], world.status["previousStableRevision"]) == (2, 3)
    assert world.status["abortedRevision"] == 3  # the spec's revision is held, as after any rollback by request
    assert "forcedRollback" not in world.status
    assert [f["revision"] for f in world.status["failedRevisions"]] == [3]
    world.deployment_ready()
    world.step()
    assert world.running_revision() == 2


def test_a_forced_rollback_ends_when_the_spec_changes():
    world = with_failed_then_stable()
    _forced_back_to_2(world)
    world.edit_spec({"config": {"strategy": {"entryScore": 0.8}}})
    world.step()
    assert "forcedRollback" not in world.status
    assert world.running_revision() == 4


def test_a_healthy_background_measurement_writes_nothing_and_a_breach_or_a_recovery_is_written_at_once():
    """No idle churn: an unchanged symbol's measurement costs no status write; a change of verdict does."""
    world = with_new_revision()
    verdict(world, "Successful")
    world.deployment_ready()
    world.step()
    assert plan(world.observe()).status is None  # at rest
    passed = Measurement(time="2026-11-25T00:01:00Z", metric="tick-to-signal-latency",
                         phase=AnalysisPhase.SUCCESSFUL, value=0.01)
    for _ in range(3):
        world.findings.append(StableMeasured(2, (passed,), "2026-11-25T00:01:00Z"))
        quiet = plan(world.observe())
        assert (quiet.status, quiet.actions) == (None, [])
        world.step()
    world.findings.append(StableMeasured(2, (failed(),), "2026-11-25T00:01:10Z"))
    breach = plan(world.observe())
    assert breach.status is not None
    assert breach.status["background"]["consecutiveBreaches"] == 1
    world.findings.append(StableMeasured(2, (failed(),), "2026-11-25T00:01:10Z"))
    world.step()
    world.findings.append(StableMeasured(2, (passed,), "2026-11-25T00:01:20Z"))
    recovery = plan(world.observe())
    assert recovery.status is not None
    assert recovery.status["background"].get("consecutiveBreaches", 0) == 0


def test_an_analysis_request_is_removed_once_a_measurement_after_it_was_answered():
    """Whoever asked (an alert, a drill) sees the request answered, though a healthy measurement writes nothing."""
    world = with_new_revision()
    verdict(world, "Successful")
    world.deployment_ready()
    world.step()
    world.annotations[naming.ANALYSIS_REQUESTED_ANNOTATION] = "2026-11-25T00:01:00Z"
    unanswered = Measurement(time="2026-11-25T00:01:05Z", metric="tick-to-signal-latency",
                             phase=AnalysisPhase.ERROR, message="Prometheus: timed out")
    passed = Measurement(time="2026-11-25T00:01:05Z", metric="tick-to-signal-latency",
                         phase=AnalysisPhase.SUCCESSFUL, value=0.01)
    for finding in (StableMeasured(2, (passed,), "2026-11-25T00:00:50Z"),  # before the request
                    StableMeasured(2, (unanswered,), "2026-11-25T00:01:05Z")):  # Prometheus away
        world.findings.append(finding)
        world.step()
        assert naming.ANALYSIS_REQUESTED_ANNOTATION in world.annotations
    world.findings.append(StableMeasured(2, (passed,), "2026-11-25T00:01:15Z"))
    world.step()
    assert naming.ANALYSIS_REQUESTED_ANNOTATION not in world.annotations
