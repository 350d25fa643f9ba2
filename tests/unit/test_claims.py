"""One symbol, one trader: who owns a symbol (pure), and what the planner does for a later claimant."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from tests.unit.test_planner import World
from trading_operator import claims
from trading_operator.claims import Claim
from trading_operator.planner import CreateObject, DeleteObject, EmitEvent, Observed

T0, T1 = "2026-12-06T08:00:00Z", "2026-12-06T08:00:01Z"


@pytest.mark.parametrize(("name", "symbol", "others", "owner"), [
    ("spy", "SPY", [], None),
    ("spy-2", "SPY", [Claim("spy", "SPY", T0)], "spy"),
    ("spy", "SPY", [Claim("spy-2", "SPY", T1)], None),
    ("a-spy", "SPY", [Claim("spy", "SPY", T0)], "spy"),
    ("spy-2", "SPY", [Claim("spy", "SPY", T1)], "spy"),
    ("spy", "SPY", [Claim("a-spy", "SPY", T0)], "a-spy"),
    ("spy-2", "SPY", [Claim("spy", " spy ", T0)], "spy"),
    ("spy-2", "SPY", [Claim("qqq", "QQQ", T0)], None),
    ("spy-2", "SPY", [Claim("spy", "SPY", "")], None),
    ("spy-2", "SPY", [Claim("spy", "SPY", T0, terminating=True)], "spy"),
    ("spy-3", "SPY", [Claim("spy-2", "SPY", T1), Claim("spy", "SPY", T0)], "spy"),
], ids=["alone", "older-owns", "newer-waits", "later-name-first-still-waits", "same-second-name-decides",
        "same-second-other-name-first", "symbol-normalised", "other-symbol", "undated-sorts-last",
        "terminating-owner-still-owns", "first-of-three"])
def test_the_first_claimant_owns_the_symbol(name: str, symbol: str, others: list[Claim], owner: str | None) -> None:
    mine = Claim(name, symbol, T1)
    found = claims.rival_owner(name, symbol, [mine, *others])
    assert (found.name if found else None) == owner


@pytest.mark.parametrize(("obj", "expected"), [
    ({"metadata": {"name": "spy", "creationTimestamp": T0}, "spec": {"symbol": "spy"}}, Claim("spy", "SPY", T0)),
    ({"metadata": {"name": "spy", "deletionTimestamp": T1}, "spec": {"symbol": "SPY"}},
     Claim("spy", "SPY", "", terminating=True)),
    ({"metadata": {"name": "spy"}, "spec": {}}, None),
    ({"metadata": {"name": "spy"}, "spec": {"symbol": 3}}, None),
    ({"metadata": {}, "spec": {"symbol": "SPY"}}, None),
    ({"metadata": {"name": "spy", "creationTimestamp": T0}, "spec": {"symbol": "QQQ"}, "status": {"symbol": "SPY"}},
     Claim("spy", "SPY", T0)),
], ids=["normalised", "terminating", "no-symbol", "not-a-string", "no-name", "the-symbol-it-trades"])
def test_a_trading_symbol_object_makes_its_claim(obj: dict[str, Any], expected: Claim | None) -> None:
    assert claims.claim_of(obj) == expected


def test_a_released_symbol_wakes_every_other_claimant_of_it_only() -> None:
    present = [Claim("spy-2", "SPY", T1), Claim("spy-3", "spy", T1), Claim("qqq", "QQQ", T0), Claim("spy", "SPY", T0)]
    assert claims.waiting(present, "SPY", released_by="spy") == ["spy-2", "spy-3"]


class ClaimWorld(World):
    """A World whose TradingSymbol shares its namespace with other claimants (set by the test)."""

    def __init__(self, name: str, created: str, others: list[Claim]) -> None:
        super().__init__()
        self.name, self.created, self.others = name, created, others

    def observe(self) -> Observed:
        mine = Claim(self.name, self.spec["symbol"], self.created)
        return dataclasses.replace(super().observe(), name=self.name, claims=(mine, *self.others))


def test_a_later_claimant_starts_nothing_and_says_who_owns_the_symbol() -> None:
    world = ClaimWorld("spy-2", T1, [Claim("spy", "SPY", T0)])
    actions = world.step()
    assert not [a for a in actions if isinstance(a, CreateObject)]
    assert world.children == {}
    assert world.revisions == {}
    assert world.status["phase"] == "Pending"
    conflict = world.condition("Conflict")
    assert (conflict["status"], conflict["reason"]) == ("True", "SymbolConflict")
    assert "TradingSymbol spy" in conflict["message"]
    assert "SPY in namespace trading" in conflict["message"]
    assert world.condition("Ready")["status"] == "False"
    [event] = world.events
    assert (event.type, event.reason) == ("Warning", "SymbolConflict")
    assert "TradingSymbol spy" in event.message
    world.step()
    world.step()
    assert world.reasons() == ["SymbolConflict"], "the Event is emitted once, not at every reconcile"


def test_the_owner_runs_as_before_and_gets_no_conflict_condition() -> None:
    world = ClaimWorld("spy", T0, [Claim("spy-2", "SPY", T1)])
    world.converge()
    assert world.status["phase"] == "Ready"
    assert "Conflict" not in {c["type"] for c in world.status["conditions"]}
    assert "SymbolConflict" not in world.reasons()


def test_when_the_owner_is_gone_the_claimant_starts_and_the_conflict_turns_false() -> None:
    world = ClaimWorld("spy-2", T1, [Claim("spy", "SPY", T0, terminating=True)])
    world.step()
    assert "being deleted" in world.condition("Conflict")["message"]
    assert world.children == {}
    world.others = []  # spy drained and gone
    world.converge()
    assert world.status["phase"] == "Ready"
    assert world.status["currentRevision"] == 1
    conflict = world.condition("Conflict")
    assert (conflict["status"], conflict["reason"]) == ("False", "SymbolOwned")
    assert world.reasons().count("SymbolOwned") == 1
    world.step()
    assert world.reasons().count("SymbolOwned") == 1


def test_a_running_claimant_that_finds_an_older_one_stops_its_pods() -> None:
    """It started in the moment before it saw the older claimant (or the older one changed its symbol to this one):
    its Deployment goes, so at most one trader runs; the owner runs on."""
    world = ClaimWorld("spy-2", T1, [])
    world.converge()
    assert "Deployment" in world.children
    world.others = [Claim("spy", "SPY", T0)]
    actions = world.step()
    assert [(a.kind, a.name) for a in actions if isinstance(a, DeleteObject)] == [("Deployment", "spy-2-trading")]
    assert "Deployment" not in world.children
    assert world.status["phase"] == "Pending"
    assert world.status["replicas"] == 0
    assert world.events[-1].reason == "SymbolConflict"
    assert "stopped the pods it ran" in world.events[-1].message
    world.step()
    assert not [a for a in world.step() if isinstance(a, DeleteObject | CreateObject)]
    assert world.reasons().count("SymbolConflict") == 1


def test_a_changed_symbol_that_got_past_the_api_server_is_refused_and_nothing_running_changes() -> None:
    """Defence in depth behind the CRD's `self == oldSelf` rule: the symbol traded is the one first accepted."""
    world = ClaimWorld("spy", T0, [])
    world.converge()
    assert world.status["symbol"] == "SPY"
    before = copy.deepcopy(world.children)
    world.spec = {**world.spec, "symbol": "QQQ"}
    actions = world.step()
    assert not [a for a in actions if not isinstance(a, EmitEvent)], "nothing is created, updated or deleted"
    assert world.children == before
    assert world.status["phase"] == "Invalid"
    assert world.status["symbol"] == "SPY"
    valid = world.condition("SpecValid")
    assert (valid["status"], valid["reason"]) == ("False", "SymbolImmutable")
    assert "spec.symbol QQQ differs from SPY" in valid["message"]
    assert world.reasons()[-1] == "SymbolImmutable"
    world.step()
    assert world.reasons().count("SymbolImmutable") == 1, "the Event is emitted once"
    world.spec = {**world.spec, "symbol": "SPY"}  # put back: accepted again
    world.converge()
    assert world.status["phase"] == "Ready"
    assert world.condition("SpecValid")["status"] == "True"
