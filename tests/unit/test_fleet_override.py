"""The fleet change on a TradingSymbol: how it merges over the spec, and that the TradingSymbol planner runs
it without rewriting the spec, and returns to the spec's own revision when it is taken away."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_planner import World
from trading_operator.fleet_override import (
    FLEET_CHANGE_ANNOTATION,
    FleetOverride,
    apply_override,
    merge_patch,
    read_override,
)

NEW_IMAGE = "ghcr.io/tradeops/runtime:2.0.0"


@pytest.mark.parametrize(("target", "patch", "merged"), [
    ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}}),
    ({"a": {"x": 1}}, {"a": None}, {}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"a": {"x": 1}}, {"a": {"x": 1}}),
    ({}, {"a": {"b": None}}, {"a": {}}),
], ids=["add", "nested", "null-removes", "list-replaces", "scalar-to-map", "null-in-new-map"])
def test_merge_patch_is_rfc_7386(target: dict[str, Any], patch: dict[str, Any], merged: dict[str, Any]) -> None:
    assert merge_patch(target, patch) == merged


def test_the_change_goes_on_top_of_the_spec_and_leaves_it_alone() -> None:
    spec: dict[str, Any] = {"image": "old", "config": {"strategy": {"entryScore": 0.6, "exitScore": 0.9}}}
    override = FleetOverride(rollout="r", change="h", image="new", config={"strategy": {"entryScore": 0.65}})
    assert apply_override(spec, override) == {"image": "new",
                                              "config": {"strategy": {"entryScore": 0.65, "exitScore": 0.9}}}
    assert spec["image"] == "old"
    assert spec["config"]["strategy"]["entryScore"] == 0.6
    assert apply_override(spec, None) is spec


@pytest.mark.parametrize(("value", "problem"), [
    ("not json", "value: Invalid JSON"),
    ('{"change": "h"}', "rollout: Field required"),
    ('{"rollout": "r", "change": "h", "replicas": 3}', "replicas: Extra inputs are not permitted"),
], ids=["not-json", "no-rollout", "unknown-field"])
def test_an_annotation_that_is_not_a_fleet_change_is_an_error(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        read_override({FLEET_CHANGE_ANNOTATION: value})


def test_the_trading_symbol_runs_the_change_and_returns_to_its_spec_when_it_is_taken_away() -> None:
    world = World()
    world.converge()
    spec_before = dict(world.spec)
    override = FleetOverride(rollout="runtime-2", change="abc", image=NEW_IMAGE)
    world.annotations[FLEET_CHANGE_ANNOTATION] = override.to_annotation()
    world.step()
    assert world.status["updateRevision"] == 2
    assert world.status["fleetChange"] == "runtime-2@abc"
    world.deployment_ready()
    world.step()
    container = world.children["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == NEW_IMAGE
    assert world.spec == spec_before  # git's spec is never rewritten
    del world.annotations[FLEET_CHANGE_ANNOTATION]
    world.step()
    assert world.status["updateRevision"] == 1  # the spec's own revision, found again by its hash
    assert "fleetChange" not in world.status
    assert world.running_revision() == 1


def test_a_hand_edited_annotation_makes_the_symbol_invalid_and_changes_nothing() -> None:
    world = World()
    world.converge()
    world.annotations[FLEET_CHANGE_ANNOTATION] = "{broken"
    actions = world.step()
    assert world.status["phase"] == "Invalid"
    assert FLEET_CHANGE_ANNOTATION in next(c for c in world.status["conditions"] if c["type"] == "SpecValid")["message"]
    assert world.running_revision() == 1
    assert not [a for a in actions if type(a).__name__ in {"CreateObject", "PatchObject", "DeleteObject"}]
