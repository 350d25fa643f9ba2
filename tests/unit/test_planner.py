"""The reconcile planner, driven through a tiny in-memory world that applies its plans."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import yaml

from policies.loader import default_policies
from policies.models import RiskPolicySpec
from trading_operator import naming
from trading_operator.api import RequestAction
from trading_operator.executor import revision_from_object
from trading_operator.findings import Finding
from trading_operator.planner import (
    CreateObject,
    DeleteObject,
    EmitEvent,
    Observed,
    PatchObject,
    RemoveAnnotation,
    plan,
)
from trading_operator.user_requests import ANNOTATIONS, RequestPayload, encode

BASE_SPEC: dict[str, Any] = {
    "symbol": "SPY",
    "market": "equity-options",
    "image": "ghcr.io/tradeops/runtime:1.0.0",
}


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def key_of(kind: str, name: str) -> str:
    if kind == "ConfigMap" and "-config-" in name:
        return f"config/{name}"  # a revision's immutable config
    return f"shadow/{kind}" if name.endswith("-shadow") else kind


class World:
    """Objects of one TradingSymbol, changed only by applying plans (and by the test, as 'users')."""

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        self.spec = copy.deepcopy(spec or BASE_SPEC)
        self.status: dict[str, Any] = {}
        self.annotations: dict[str, str] = {}
        self.generation = 1
        self.revisions: dict[str, dict[str, Any]] = {}
        self.children: dict[str, dict[str, Any]] = {}
        self.events: list[EmitEvent] = []
        self.pods: list[dict[str, Any]] = []
        """Pods as the kubelet reports them (set by the test)."""
        self.findings: list[Finding] = []
        """What the analysis loop recorded since the last step (consumed by it)."""
        self.clock = 0
        self.policies = default_policies()
        self.requests_made = 0

    def observe(self) -> Observed:
        self.clock += 1
        return Observed(
            name="spy", namespace="trading", uid="uid-1", generation=self.generation,
            spec=copy.deepcopy(self.spec), status=copy.deepcopy(self.status),
            annotations=dict(self.annotations),
            revisions=[revision_from_object(r) for r in self.revisions.values()],
            children={k: copy.deepcopy(v) for k, v in self.children.items() if not k.startswith("config/")},
            configs={k.removeprefix("config/"): copy.deepcopy(v) for k, v in self.children.items()
                     if k.startswith("config/")},
            now=f"2026-11-25T00:00:{self.clock:02d}Z", findings=tuple(self.findings), pods=copy.deepcopy(self.pods),
            policies=self.policies,
        )

    def step(self) -> list[Any]:
        result = plan(self.observe())
        self.findings = []
        for action in result.actions:
            if isinstance(action, CreateObject):
                kind = action.manifest["kind"]
                if kind == "ControllerRevision":
                    self.revisions[action.manifest["metadata"]["name"]] = copy.deepcopy(action.manifest)
                else:
                    self.children[key_of(kind, action.manifest["metadata"]["name"])] = copy.deepcopy(action.manifest)
            elif isinstance(action, PatchObject):
                key = key_of(action.kind, action.name)
                self.children[key] = merge(self.children[key], action.patch)
            elif isinstance(action, DeleteObject):
                if action.kind == "ControllerRevision":
                    self.revisions.pop(action.name)
                else:
                    self.children.pop(key_of(action.kind, action.name))
            elif isinstance(action, RemoveAnnotation):
                self.annotations.pop(action.key, None)
            elif isinstance(action, EmitEvent):
                self.events.append(action)
        if result.status is not None:
            self.status = result.status
        return result.actions

    def deployment_ready(self, key: str = "Deployment") -> None:
        """What the Deployment controller reports once every pod of the template is ready."""
        deployment = self.children[key]
        replicas = deployment["spec"]["replicas"]
        deployment.setdefault("metadata", {})["generation"] = 1
        deployment["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                                "readyReplicas": replicas, "availableReplicas": replicas}

    def converge(self) -> None:
        self.step()
        self.deployment_ready()
        self.step()

    def request(self, action: RequestAction, revision: int | None = None, **fields: Any) -> str:
        """What opsctl writes: a request bound to what it sees now (the revision it is about, the generation).
        Returns its id."""
        self.requests_made += 1
        run = self.status.get("analysis") or {}
        if revision is None and action in (RequestAction.PROMOTE, RequestAction.ABORT):
            if run.get("phase") in ("Running", "Inconclusive") and run["revision"] != self.status["stableRevision"]:
                revision, fields = run["revision"], {"run": run["startedAt"], **fields}
            else:
                revision = self.status["updateRevision"]
        elif revision is None:
            revision = self.status.get("abortedRevision" if action is RequestAction.RETRY else "currentRevision", 0)
        payload = RequestPayload(id=f"{action.value}-{self.requests_made}", revision=revision,
                                 generation=self.generation, **fields)
        self.annotations[ANNOTATIONS[action]] = encode(payload)
        return payload.id

    def answer(self, request_id: str) -> dict[str, Any] | None:
        """The operator's recorded answer to a request."""
        return next((r for r in self.status.get("requests", []) if r["id"] == request_id), None)

    def promote(self) -> None:
        """What `opsctl promote` asks for."""
        self.request(RequestAction.PROMOTE)
        self.step()

    def edit_spec(self, patch: dict[str, Any]) -> None:
        self.spec = merge(self.spec, patch)
        self.generation += 1

    def running_revision(self) -> int:
        labels = self.children["Deployment"]["spec"]["template"]["metadata"]["labels"]
        return int(labels[naming.REVISION_LABEL])

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type_)

    def deployment_config_name(self) -> str:
        volume = self.children["Deployment"]["spec"]["template"]["spec"]["volumes"][0]
        return str(volume["projected"]["sources"][0]["configMap"]["name"])

    def runtime_config(self, revision: int | None = None) -> str:
        """The runtime.yaml the Deployment's pods mount (of `revision`'s ConfigMap when given)."""
        if revision is None:
            return str(self.children[f"config/{self.deployment_config_name()}"]["data"][naming.CONFIG_KEY])
        return next(str(v["data"][naming.CONFIG_KEY]) for k, v in self.children.items() if k.startswith("config/")
                    and v["metadata"]["labels"][naming.REVISION_LABEL] == str(revision))

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


def test_create_builds_every_child_and_revision_one():
    world = World()
    world.step()
    assert set(world.children) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy",
                                   "ServiceAccount", "Role", "RoleBinding",
                                   f"config/{world.deployment_config_name()}"}
    assert len(world.revisions) == 1
    assert world.status["phase"] == "Progressing"
    assert world.status["currentRevision"] == 1
    assert world.status["stableRevision"] == 0
    assert world.condition("Ready")["status"] == "False"


def test_ready_deployment_makes_the_revision_stable_and_phase_ready():
    world = World()
    world.converge()
    assert world.status["phase"] == "Ready"
    assert world.status["stableRevision"] == 1
    assert world.status["readyReplicas"] == 1
    assert world.condition("Ready")["status"] == "True"


def test_converged_world_plans_nothing():
    world = World()
    world.converge()
    result = plan(world.observe())
    assert result.actions == []
    assert result.status is None


@pytest.mark.parametrize(
    ("patch", "new_revision"),
    [
        ({"image": "ghcr.io/tradeops/runtime:1.1.0"}, True),
        ({"config": {"parameters": {"batchSize": 512}}}, True),
        ({"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}, True),
        ({"replicas": 2}, False),
        ({"tradingEnabled": False}, False),
        ({"rollout": {"analysisCount": 9}}, False),
    ],
    ids=["image", "config", "resources", "replicas", "kill-switch", "rollout-settings"],
)
def test_only_template_changes_create_revisions(patch, new_revision):
    world = World()
    world.converge()
    world.edit_spec(patch)
    world.step()
    assert (len(world.revisions) == 2) is new_revision
    assert world.status["currentRevision"] == (2 if new_revision else 1)


def test_config_change_changes_the_pod_template_hash():
    world = World()
    world.converge()
    before = world.children["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    world.edit_spec({"config": {"strategy": {"entryScore": 0.7}}})
    world.step()
    after = world.children["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert before[naming.CONFIG_HASH_ANNOTATION] != after[naming.CONFIG_HASH_ANNOTATION]
    assert "config.strategy.entryScore 0.6→0.7" in world.events[-1].message


def test_kill_switch_reaches_config_without_rolling_pods():
    world = World()
    world.converge()
    template_before = copy.deepcopy(world.children["Deployment"]["spec"]["template"])
    world.edit_spec({"tradingEnabled": False})
    world.step()
    assert "tradingEnabled: false" in world.children["ConfigMap"]["data"][naming.SWITCHES_KEY]
    assert world.children["Deployment"]["spec"]["template"] == template_before
    assert world.status["phase"] == "Halted"
    assert world.condition("Halted")["status"] == "True"


def test_paused_holds_spec_changes_and_resume_rolls_them_out():
    world = World()
    world.converge()
    world.edit_spec({"paused": True, "image": "ghcr.io/tradeops/runtime:2.0.0"})
    world.step()
    assert world.running_revision() == 1
    assert world.status["updateRevision"] == 2
    assert world.status["phase"] == "Paused"
    assert "spec revision 2 is held" in world.condition("Paused")["message"]
    world.edit_spec({"paused": False})
    world.step()
    assert world.running_revision() == 2


def test_paused_before_first_rollout_creates_no_pods():
    world = World({**BASE_SPEC, "paused": True})
    world.step()
    assert "Deployment" not in world.children
    assert world.status["phase"] == "Paused"


def test_manual_rollback_runs_the_chosen_revision_and_does_not_fight_the_spec():
    world = World()
    world.converge()
    world.edit_spec({"image": "ghcr.io/tradeops/runtime:2.0.0"})
    world.converge()
    assert world.running_revision() == 2
    asked = world.request(RequestAction.ROLLBACK, to_revision=1)
    world.step()
    assert world.answer(asked)["outcome"] == "Accepted"
    assert world.running_revision() == 1
    assert world.status["lastRollback"]["fromRevision"] == 2
    assert world.status["lastRollback"]["toRevision"] == 1
    assert world.status["abortedRevision"] == 2
    assert world.status["phase"] == "Degraded"
    assert naming.ROLLBACK_ANNOTATION not in world.annotations
    # The spec still says revision 2: the operator keeps running 1 until the spec changes.
    world.deployment_ready()
    world.step()
    world.step()
    assert world.running_revision() == 1
    assert world.spec["image"] == "ghcr.io/tradeops/runtime:2.0.0"
    # A new spec is rolled out again and clears the aborted mark.
    world.edit_spec({"image": "ghcr.io/tradeops/runtime:3.0.0"})
    world.step()
    assert world.running_revision() == 3
    assert "abortedRevision" not in world.status


def test_rollback_during_a_rollout_goes_to_stable():
    world = World()
    world.converge()
    world.edit_spec({"image": "ghcr.io/tradeops/runtime:2.0.0"})
    world.step()  # revision 2 rolling, stable still 1
    world.request(RequestAction.ROLLBACK, to_revision=1)
    world.step()
    assert world.running_revision() == 1


@pytest.mark.parametrize(("value", "reason"), [
    (None, "NoSuchRevision"),
    ("banana", "Malformed"),
    ('{"id": "x", "revision": 1}', "Malformed"),
], ids=["missing-number", "not-json", "unbound"])
def test_rollback_to_unknown_revision_is_refused_with_an_event_and_a_condition(value, reason):
    world = World()
    world.converge()
    world.request(RequestAction.ROLLBACK, to_revision=9)
    if value is not None:
        world.annotations[naming.ROLLBACK_ANNOTATION] = value
    world.step()
    assert world.running_revision() == 1
    assert world.events[-1].reason == "RequestRefused"
    assert world.events[-1].type == "Warning"
    refused = world.condition("LastRequest")
    assert (refused["status"], refused["reason"]) == ("False", "RequestRefused")
    assert naming.ROLLBACK_ANNOTATION not in world.annotations
    if value is None:
        assert world.status["requests"][-1]["reason"] == reason
    else:
        assert reason.lower() in world.events[-1].message.lower() or "not a request" in world.events[-1].message


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"config": {"strategy": {"entryScore": 0.2, "exitScore": 0.5}}}, "exitScore (0.5) must be below"),
        ({"resources": {"requests": {"cpu": "4", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
         "requests.cpu (4) exceeds"),
        ({"replicas": 99}, "spec.replicas"),
        ({"config": {"risk": {"capital": 2e7}}},
         "spec.config.risk.capital: 2e+07 exceeds the risk policy's limit 1e+07 (RiskPolicy 'default')"),
        ({"config": {"risk": {"maxDrawdown": 0.5, "targetVolatility": 0.3}}},
         "maxDrawdown: 0.5 exceeds the risk policy's limit 0.15 (RiskPolicy 'default'); "
         "spec.config.risk.targetVolatility: 0.3 exceeds"),
        ({"policies": {"risk": "aggressive"}}, "spec.policies.risk: no RiskPolicy named 'aggressive'"),
    ],
    ids=["exit-above-entry", "requests-above-limits", "replicas-out-of-range", "capital-above-risk-cap",
         "two-limits-above-risk-caps", "unknown-risk-policy"],
)
def test_invalid_spec_is_reported_and_changes_nothing(patch, message):
    world = World()
    world.converge()
    children_before = copy.deepcopy(world.children)
    world.edit_spec(patch)
    actions = world.step()
    assert world.children == children_before
    assert not any(isinstance(a, (CreateObject, PatchObject, DeleteObject)) for a in actions)
    assert world.status["phase"] == "Invalid"
    condition = world.condition("SpecValid")
    assert condition["status"] == "False"
    assert message in condition["message"]
    assert world.reasons()[-1] == "InvalidSpec"
    # Reported once, not on every reconcile.
    world.step()
    assert world.reasons().count("InvalidSpec") == 1


def test_risk_limits_within_the_named_policy_reach_the_runtime_config():
    tight = RiskPolicySpec(max_capital=2e6, max_drawdown=0.05)
    policies = dataclasses.replace(default_policies(), risk={**default_policies().risk, "tight": tight})
    world = World(merge(BASE_SPEC, {"policies": {"risk": "tight"},
                                    "config": {"risk": {"capital": 2e6, "maxDrawdown": 0.05}}}))
    world.policies = policies
    world.converge()
    runtime = yaml.safe_load(world.runtime_config())["runtime"]
    assert runtime["risk"]["capital"] == 2e6
    assert runtime["risk"]["maxDrawdown"] == 0.05
    # The same limits one notch above the tight policy's cap: rejected, the running config kept.
    world.edit_spec({"config": {"risk": {"capital": 2.5e6}}})
    world.step()
    assert world.status["phase"] == "Invalid"
    assert "capital: 2.5e+06 exceeds the risk policy's limit 2e+06 (RiskPolicy 'tight')" in \
        world.condition("SpecValid")["message"]
    assert yaml.safe_load(world.runtime_config())["runtime"]["risk"]["capital"] == 2e6


def test_deleted_child_is_restored_with_an_event():
    world = World()
    world.converge()
    del world.children["Service"]
    world.step()
    assert "Service" in world.children
    assert world.events[-1].reason == "ChildRestored"


def test_hand_edited_child_is_reverted_with_an_event_naming_the_field():
    world = World()
    world.converge()
    world.children["Deployment"]["spec"]["replicas"] = 5
    world.step()
    assert world.children["Deployment"]["spec"]["replicas"] == 1
    assert world.events[-1].reason == "DriftCorrected"
    assert "spec.replicas: 5 (want 1)" in world.events[-1].message


def test_server_defaults_and_canonical_quantities_are_not_drift():
    world = World({**BASE_SPEC, "resources": {"requests": {"cpu": "1000m", "memory": "256Mi"},
                                              "limits": {"cpu": "2", "memory": "1Gi"}}})
    world.converge()
    container = world.children["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"]["cpu"] = "1"
    container["terminationMessagePath"] = "/dev/termination-log"
    world.children["Deployment"]["spec"]["minReadySeconds"] = 0
    assert plan(world.observe()).actions == []


def test_history_is_pruned_to_the_limit_keeping_running_and_stable():
    world = World({**BASE_SPEC, "revisionHistoryLimit": 3})
    world.converge()
    for version in range(2, 7):
        world.edit_spec({"image": f"ghcr.io/tradeops/runtime:{version}.0.0"})
        world.converge()
        world.promote()
    numbers = sorted(int(r["revision"]) for r in world.revisions.values())
    assert numbers == [4, 5, 6]
    assert "RevisionsPruned" in world.reasons()


def test_deleting_plans_no_child_changes():
    world = World()
    world.converge()
    observed = world.observe()
    result = plan(Observed(**{**observed.__dict__, "deleting": True}))
    assert result.actions == []
    assert result.status is not None
    assert result.status["phase"] == "Terminating"
