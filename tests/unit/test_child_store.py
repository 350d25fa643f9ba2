"""The informer's store: what the watches delivered, with the operator's own writes applied at once and never
taken back by an older event; who owns what; and which events are news (somebody else's change)."""

from __future__ import annotations

from typing import Any

import pytest

from trading_operator import naming
from trading_operator.child_store import ChildStore

KINDS = ("Deployment", "ConfigMap", "Pod")


def obj(name: str, rv: str, kind: str = "Deployment", owner: str | None = "spy", **extra: Any) -> dict[str, Any]:
    labels = {naming.OWNER_NAME_LABEL: owner} if owner else {}
    return {"kind": kind, "metadata": {"namespace": "ns", "name": name, "resourceVersion": rv, "labels": labels},
            **extra}


def synced_store(*objs: dict[str, Any]) -> ChildStore:
    store = ChildStore(KINDS)
    for kind in KINDS:
        store.replace(kind, [o for o in objs if o["kind"] == kind])
    return store


def version(store: ChildStore, name: str, kind: str = "Deployment") -> str | None:
    held = store.get(kind, "ns", name)
    return None if held is None else str(held["metadata"]["resourceVersion"])


def test_synced_only_when_every_kind_and_namespace_was_listed() -> None:
    store = ChildStore(("Deployment", "Pod"), namespaces=("a", "b"))
    store.replace("Deployment", [], "a")
    store.replace("Deployment", [], "b")
    store.replace("Pod", [], "a")
    assert not store.synced
    store.replace("Pod", [], "b")
    assert store.synced


def test_events_of_others_are_applied_and_news() -> None:
    store = synced_store(obj("spy-trading", "1"))
    change = store.apply("Deployment", "MODIFIED", obj("spy-trading", "2", status={"readyReplicas": 1}))
    assert not change.own
    assert version(store, "spy-trading") == "2"
    assert not store.apply("Deployment", "DELETED", obj("spy-trading", "3")).own
    assert store.get("Deployment", "ns", "spy-trading") is None


def test_an_own_write_holds_at_once_and_an_older_event_does_not_take_it_back() -> None:
    """The deployment controller's status update (rv 2) was made before the operator's patch (rv 3) but is
    delivered after it was applied: the store keeps the patch; the patch's own event is its echo."""
    store = synced_store(obj("spy-trading", "1"))
    store.wrote(obj("spy-trading", "3", spec={"image": "new"}))
    assert version(store, "spy-trading") == "3"
    older = store.apply("Deployment", "MODIFIED", obj("spy-trading", "2"))
    assert not older.own, "somebody else's change: its owner is reconciled"
    assert version(store, "spy-trading") == "3"
    assert store.apply("Deployment", "MODIFIED", obj("spy-trading", "3", spec={"image": "new"})).own
    newer = store.apply("Deployment", "MODIFIED", obj("spy-trading", "4"))
    assert not newer.own
    assert version(store, "spy-trading") == "4"


def test_a_write_whose_event_came_first_does_not_take_the_store_back() -> None:
    """The watch delivered the create (rv 5) and a status update (rv 6) before the create's answer was
    processed: applying the answer then would go back to rv 5 and wait for an event that already came."""
    store = synced_store()
    store.apply("Deployment", "ADDED", obj("spy-trading", "5"))
    store.apply("Deployment", "MODIFIED", obj("spy-trading", "6"))
    store.wrote(obj("spy-trading", "5"))
    assert version(store, "spy-trading") == "6"
    assert not store.apply("Deployment", "MODIFIED", obj("spy-trading", "7")).own
    assert version(store, "spy-trading") == "7"


def test_a_write_that_changed_nothing_awaits_no_event() -> None:
    store = synced_store(obj("spy-trading", "4"))
    store.wrote(obj("spy-trading", "4"))  # a no-op patch: same version, no watch event will follow
    store.apply("Deployment", "MODIFIED", obj("spy-trading", "5"))
    assert version(store, "spy-trading") == "5"


def test_an_own_deletion_holds_until_its_event_and_a_recreation_after_it() -> None:
    store = synced_store(obj("spy-trading-shadow", "1"))
    store.deleted("Deployment", "ns", "spy-trading-shadow")
    assert store.get("Deployment", "ns", "spy-trading-shadow") is None
    assert not store.apply("Deployment", "MODIFIED", obj("spy-trading-shadow", "2")).own  # before the deletion
    assert store.get("Deployment", "ns", "spy-trading-shadow") is None
    store.wrote(obj("spy-trading-shadow", "9"))  # created again before the old one's DELETED arrived
    assert not store.apply("Deployment", "DELETED", obj("spy-trading-shadow", "3")).own
    assert version(store, "spy-trading-shadow") == "9"
    assert store.apply("Deployment", "ADDED", obj("spy-trading-shadow", "9")).own


def test_deleting_what_the_watch_never_showed_awaits_nothing() -> None:
    store = synced_store()
    store.deleted("Deployment", "ns", "unlabelled")
    store.apply("Deployment", "ADDED", obj("unlabelled", "3"))
    assert version(store, "unlabelled") == "3"


def test_a_relist_replaces_the_kind_and_forgets_writes_in_flight() -> None:
    store = synced_store(obj("spy-trading", "1"), obj("spy-config-a", "1", kind="ConfigMap"))
    store.wrote(obj("spy-trading", "8"))
    store.replace("Deployment", [obj("qqq-trading", "9", owner="qqq")])
    assert store.get("Deployment", "ns", "spy-trading") is None
    assert version(store, "spy-config-a", "ConfigMap") == "1"
    store.apply("Deployment", "ADDED", obj("spy-trading", "10"))
    assert version(store, "spy-trading") == "10"


def test_owned_follows_the_owner_label() -> None:
    store = synced_store(obj("spy-a", "1", kind="Pod"), obj("spy-b", "1", kind="Pod"),
                         obj("qqq-a", "1", kind="Pod", owner="qqq"))
    assert [o["metadata"]["name"] for o in store.owned("Pod", "ns", "spy")] == ["spy-a", "spy-b"]
    store.apply("Pod", "MODIFIED", obj("spy-b", "2", kind="Pod", owner="qqq"))
    store.apply("Pod", "DELETED", obj("spy-a", "3", kind="Pod"))
    assert store.owned("Pod", "ns", "spy") == []
    assert [o["metadata"]["name"] for o in store.owned("Pod", "ns", "qqq")] == ["qqq-a", "spy-b"]


@pytest.mark.parametrize("kind", ["Event", "Lease"])
def test_writes_of_kinds_it_does_not_keep_are_ignored(kind: str) -> None:
    store = synced_store()
    store.wrote(obj("x", "1", kind=kind))
    store.deleted(kind, "ns", "x")
    assert store.get(kind, "ns", "x") is None


def test_managed_fields_are_not_kept() -> None:
    store = synced_store()
    store.apply("Deployment", "ADDED", obj("spy-trading", "1"))
    with_fields = obj("spy-trading", "2")
    with_fields["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    store.apply("Deployment", "MODIFIED", with_fields)
    held = store.get("Deployment", "ns", "spy-trading")
    assert held is not None
    assert "managedFields" not in held["metadata"]
    assert held["metadata"]["resourceVersion"] == "2"


def test_a_relist_after_410_rebuilds_the_store_exactly_and_tells_what_changed_meanwhile() -> None:
    """A watch gone (410) is followed by a list: the store then holds exactly what the list holds (nothing lost,
    nothing twice, whatever the broken watch delivered), and what changed while no watch ran is news as the
    events it missed would have been — except the echo of the operator's own write."""
    store = synced_store(obj("kept", "1"), obj("changed", "2"), obj("gone", "3"), obj("ours", "4"),
                         obj("pod", "5", kind="Pod"))
    store.wrote(obj("ours", "10"))
    store.apply("Deployment", "MODIFIED", obj("changed", "11"))  # a late event of the broken watch
    changes = store.replace("Deployment", [obj("kept", "1"), obj("changed", "12"), obj("ours", "10"),
                                           obj("new", "13")])
    assert sorted((c.event_type, c.obj["metadata"]["name"], c.own) for c in changes) == [
        ("ADDED", "new", False), ("DELETED", "gone", False), ("MODIFIED", "changed", False)]
    assert [(o["metadata"]["name"], version(store, o["metadata"]["name"]))
            for o in store.owned("Deployment", "ns", "spy")] == [
        ("changed", "12"), ("kept", "1"), ("new", "13"), ("ours", "10")]
    assert version(store, "pod", kind="Pod") == "5"  # another kind is not touched
    store.apply("Deployment", "MODIFIED", obj("ours", "14"))  # nothing awaited any more: applied as news
    assert version(store, "ours") == "14"


def test_the_first_list_is_no_news() -> None:
    """Every owner is reconciled when first seen: the children the first list shows need no poke each."""
    assert ChildStore(KINDS).replace("Deployment", [obj("spy-trading", "1")]) == []


def test_of_a_pod_only_what_the_planner_reads_is_kept() -> None:
    pod = obj("spy-trading-abc", "1", kind="Pod", spec={"containers": [{"name": "runtime", "env": []}]},
              status={"podIP": "10.0.0.7", "containerStatuses": [{"name": "runtime", "restartCount": 2}]})
    store = synced_store(pod)
    kept = store.get("Pod", "ns", "spy-trading-abc")
    assert kept == {k: v for k, v in pod.items() if k != "spec"}
    assert store.owned("Pod", "ns", "spy") == [kept]
