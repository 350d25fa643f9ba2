"""`spec.model` resolved when a revision is created: the pure pinning decision, and the planner acting on it
(a revision pins its version; a moved alias is a new revision; no revision with an unresolved model)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from tests.unit.test_planner import World
from trading_operator.api import ConditionStatus, ModelRef, PinnedModel, RequestAction
from trading_operator.conditions import Reason
from trading_operator.model_resolution import Lookup, pin, with_model
from trading_operator.planner import Observed, plan

NAME = "tradeops-meta-spy"
CHAMPION = ModelRef(name=NAME)
URI = "http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/1/models/m-{v}/artifacts/model.onnx"


def found(version: int, ref: str = "champion") -> Lookup:
    return Lookup(NAME, ref, f"t{version}", version=version, uri=URI.format(v=version))


def failed(reason: Reason, ref: str = "champion") -> Lookup:
    return Lookup(NAME, ref, "t", failure=reason, message="the registry said no")


def pinned(version: int, ref: str = "champion") -> PinnedModel:
    return PinnedModel(name=NAME, ref=ref, version=version, uri=URI.format(v=version), resolved_at=f"t{version}")


@pytest.mark.parametrize(("ref", "lookup", "last", "version", "status", "reason"), [
    (CHAMPION, found(2), None, 2, ConditionStatus.TRUE, Reason.MODEL_VERSION_RESOLVED),
    (CHAMPION, found(2), pinned(1), 2, ConditionStatus.TRUE, Reason.MODEL_VERSION_RESOLVED),
    (CHAMPION, failed(Reason.MODEL_REGISTRY_UNREACHABLE), pinned(1), 1, ConditionStatus.FALSE,
     Reason.MODEL_REGISTRY_UNREACHABLE),
    (CHAMPION, failed(Reason.MODEL_REGISTRY_UNREACHABLE), None, None, ConditionStatus.FALSE,
     Reason.MODEL_REGISTRY_UNREACHABLE),
    (CHAMPION, None, None, None, ConditionStatus.FALSE, Reason.MODEL_REGISTRY_NOT_CONFIGURED),
    (CHAMPION, None, pinned(3), 3, ConditionStatus.FALSE, Reason.MODEL_REGISTRY_NOT_CONFIGURED),
    (CHAMPION, failed(Reason.MODEL_NOT_FOUND), pinned(1), None, ConditionStatus.FALSE, Reason.MODEL_NOT_FOUND),
    (ModelRef(name=NAME, version=4), failed(Reason.MODEL_REGISTRY_UNREACHABLE, "4"), pinned(1), None,
     ConditionStatus.FALSE, Reason.MODEL_REGISTRY_UNREACHABLE),
    (ModelRef(name=NAME, alias="challenger"), failed(Reason.MODEL_REGISTRY_UNREACHABLE, "challenger"), pinned(1),
     None, ConditionStatus.FALSE, Reason.MODEL_REGISTRY_UNREACHABLE),
], ids=["first-resolution", "alias-moved", "unreachable-keeps-last", "unreachable-first-holds",
        "no-registry-holds", "no-registry-keeps-last", "not-found-holds", "other-version-holds",
        "other-alias-holds"])
def test_pin(ref, lookup, last, version, status, reason):
    pinning = pin(ref, lookup, last)
    assert (pinning.pinned.version if pinning.pinned else None) == version
    assert (pinning.status, pinning.reason) == (status, reason)
    assert NAME in pinning.message


def test_an_unchanged_version_keeps_its_first_resolution():
    assert pin(CHAMPION, dataclasses.replace(found(1), at="later"), pinned(1)).pinned == pinned(1)


def test_with_model_sets_the_runtime_fields_and_leaves_the_input():
    config = {"ml": {"acceptProbability": 0.6}, "strategy": {"entryScore": 0.5}}
    out = with_model(config, pinned(2))
    assert out["ml"] == {"acceptProbability": 0.6, "modelPath": URI.format(v=2), "modelName": NAME,
                         "modelVersion": 2}
    assert config == {"ml": {"acceptProbability": 0.6}, "strategy": {"entryScore": 0.5}}


class ModelWorld(World):
    """The planner's world with a registry whose answer the test sets."""

    def __init__(self, lookup: Lookup | None) -> None:
        super().__init__()
        self.spec["model"] = {"name": NAME, "alias": "champion"}
        self.lookup = lookup
        self.retry: str | None = None

    def observe(self) -> Observed:
        return dataclasses.replace(super().observe(), model=self.lookup)

    def step(self) -> list:
        self.retry = plan(self.observe()).retry
        return super().step()

    def served(self, revision: int | None = None) -> dict:
        return yaml.safe_load(self.runtime_config(revision))["runtime"]["ml"]


def test_the_revision_pins_the_resolved_version_and_a_moved_alias_is_a_new_revision():
    world = ModelWorld(found(1))
    world.converge()
    assert world.status["stableRevision"] == 1
    assert {k: world.served()[k] for k in ("modelVersion", "modelName", "modelPath")} == {
        "modelVersion": 1, "modelName": NAME, "modelPath": URI.format(v=1)}
    assert world.condition("ModelResolved")["status"] == "True"
    assert world.status["model"]["version"] == 1
    world.lookup = found(2)
    world.converge()
    assert world.running_revision() == 2
    assert world.served()["modelVersion"] == 2
    assert world.served(1)["modelVersion"] == 1  # revision 1 still pins version 1
    resolved = [e.message for e in world.events if e.reason == "ModelVersionResolved"]
    assert resolved[-1] == f"{NAME}@champion resolved to version 2 (was version 1)"
    world.step()
    assert len(world.revisions) == 2  # the same answer again creates nothing


def test_rollback_returns_to_the_revision_of_the_old_version_while_the_alias_names_the_new():
    world = ModelWorld(found(1))
    world.converge()
    world.lookup = found(2)
    world.converge()
    world.request(RequestAction.ROLLBACK, to_revision=1)
    world.step()
    world.deployment_ready()
    world.step()
    assert world.running_revision() == 1
    assert world.served()["modelVersion"] == 1
    assert world.status["abortedRevision"] == 2
    assert len(world.revisions) == 2  # champion still names version 2: its revision (aborted), not a new one
    world.lookup = found(3)
    world.converge()
    assert world.running_revision() == 3
    assert world.served()["modelVersion"] == 3


def test_no_revision_while_the_registry_is_unreachable_at_creation_and_one_once_it_answers():
    world = ModelWorld(failed(Reason.MODEL_REGISTRY_UNREACHABLE))
    actions = world.step()
    assert world.revisions == {}
    assert world.children == {}
    assert world.retry is not None
    assert "retrying" in world.retry
    condition = world.condition("ModelResolved")
    assert (condition["status"], condition["reason"]) == ("False", "ModelRegistryUnreachable")
    assert [e.reason for e in actions if hasattr(e, "reason")] == ["ModelRegistryUnreachable"]
    world.step()
    assert world.reasons().count("ModelRegistryUnreachable") == 1  # one Event, not one per retry
    world.lookup = found(1)
    world.converge()
    assert world.retry is None
    assert world.status["stableRevision"] == 1
    assert world.served()["modelVersion"] == 1


def test_an_unreachable_registry_after_a_resolution_keeps_the_pinned_version_and_what_runs():
    world = ModelWorld(found(1))
    world.converge()
    world.lookup = failed(Reason.MODEL_REGISTRY_UNREACHABLE)
    world.step()
    assert world.retry is None  # nothing held: the resync asks again
    assert len(world.revisions) == 1
    assert world.condition("ModelResolved")["reason"] == "ModelRegistryUnreachable"
    assert "keep version 1" in world.condition("ModelResolved")["message"]
    world.edit_spec({"image": "ghcr.io/tradeops/runtime:2.0.0"})  # a new revision pins the last resolution
    world.converge()
    assert world.running_revision() == 2
    assert world.served()["modelVersion"] == 1


def test_a_spec_naming_a_model_twice_is_rejected():
    world = ModelWorld(found(1))
    world.spec["config"] = {"ml": {"modelPath": "/models/spy.onnx"}}
    world.step()
    assert world.status["phase"] == "Invalid"
    assert "modelPath" in world.condition("SpecValid")["message"]


def test_dropping_the_model_drops_its_condition_and_serves_none():
    world = ModelWorld(found(1))
    world.converge()
    del world.spec["model"]
    world.generation += 1
    world.converge()
    assert world.running_revision() == 2
    assert world.served().get("modelPath") is None
    assert "model" not in world.status
    assert "ModelResolved" not in {c["type"] for c in world.status["conditions"]}
