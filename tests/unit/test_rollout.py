"""Rollout decisions through the planner: analysis verdicts, shadow runs, requests, tuning proposals."""

from __future__ import annotations

from trading_operator import naming
from trading_operator.api import RequestAction
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
    config = world.children["ConfigMap"]["data"]["runtime.yaml"]
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
