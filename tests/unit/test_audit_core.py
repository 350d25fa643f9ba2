"""The audit trail's pure parts: chain verification (each kind of tampering named at the right entry),
TradingSymbol diffs and switches, who made a change, and Events and revisions as entries."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest

from audit.chain import GENESIS_HASH, Anchor, Entry, Problem, entry_hash, verify
from audit.identity import CHANGED_BY_ANNOTATION, actor_of, stamp
from audit.kinds import Kind
from audit.operator_objects import event_entry, revision_entry
from audit.symbols import Recorded, diff, symbol_entries, view

T0 = datetime.datetime(2026, 11, 2, 14, 30, tzinfo=datetime.UTC)


def chain(n: int) -> list[Entry]:
    entries: list[Entry] = []
    previous = GENESIS_HASH
    for seq in range(1, n + 1):
        moment = T0 + datetime.timedelta(seconds=seq)
        entry = Entry(seq, moment, moment, "alice", "halt", "SPY", json.dumps({"n": seq}), f"k/{seq}", previous, "")
        entry = dataclasses.replace(entry, hash=entry_hash(entry))
        entries.append(entry)
        previous = entry.hash
    return entries


def problems(entries: list[Entry], *anchors: Anchor) -> list[tuple[int, Problem]]:
    return [(f.seq, f.problem) for f in verify(entries, anchors).findings]


def test_an_intact_chain_verifies_and_reports_its_head():
    entries = chain(6)
    result = verify(entries)
    assert result.ok
    assert result.entries == 6
    assert result.head == Anchor(6, entries[-1].hash)


def test_edited_content():
    entries = chain(6)
    entries[2] = dataclasses.replace(entries[2], actor="mallory")
    assert problems(entries) == [(3, Problem.EDITED)]


def test_edited_and_rehashed():
    entries = chain(6)
    edited = dataclasses.replace(entries[2], actor="mallory")
    entries[2] = dataclasses.replace(edited, hash=entry_hash(edited))
    assert problems(entries) == [(3, Problem.EDITED)]


@pytest.mark.parametrize(("removed", "expected"), [(0, [(1, Problem.DELETED)]), (3, [(4, Problem.DELETED)])],
                         ids=["first", "middle"])
def test_deleted(removed, expected):
    entries = chain(6)
    del entries[removed]
    assert problems(entries) == expected


def test_deleted_and_renumbered_to_hide_the_gap():
    entries = chain(6)
    del entries[3]
    entries[3:] = [dataclasses.replace(e, seq=e.seq - 1) for e in entries[3:]]
    assert {p for _, p in problems(entries)} == {Problem.EDITED}
    assert min(seq for seq, _ in problems(entries)) == 4


def test_reordered():
    entries = chain(6)
    entries[2], entries[3] = dataclasses.replace(entries[3], seq=3), dataclasses.replace(entries[2], seq=4)
    found = problems(entries)
    assert {p for _, p in found} == {Problem.REORDERED}
    assert {3, 4} <= {seq for seq, _ in found}


def test_truncated_end_needs_an_anchor():
    entries = chain(6)
    anchor = Anchor(6, entries[-1].hash)
    assert problems(entries[:-1]) == []
    assert problems(entries[:-1], anchor) == [(6, Problem.TRUNCATED)]
    assert problems(entries, anchor) == []
    assert problems(entries, Anchor(6, "f" * 64)) == [(6, Problem.EDITED)]


@pytest.mark.parametrize("text", ["5", "x:" + "a" * 64, "5:" + "a" * 63, "5:" + "g" * 64])
def test_anchor_parsing_refuses_malformed_text(text):
    with pytest.raises(ValueError, match="SEQ:HASH"):
        Anchor.parse(text)


def ts(spec: dict, annotations: dict | None = None, version: str = "1") -> dict:
    return {"metadata": {"name": "spy", "namespace": "trading", "uid": "u1", "resourceVersion": version,
                         "annotations": annotations or {}},
            "spec": {"symbol": "SPY", **spec}, "status": {"phase": "Ready"}}


def test_diff_is_leaf_level_and_ignores_status_and_bookkeeping():
    before = view(ts({"replicas": 1, "config": {"strategy": {"entryScore": 0.6}}}))
    after_obj = ts({"replicas": 1, "config": {"strategy": {"entryScore": 0.7}}}, {"kubectl.kubernetes.io/x": "y"})
    after_obj["status"] = {"phase": "Degraded"}
    changes = diff(before, view(after_obj))
    assert [(c.path, c.before, c.after) for c in changes] == [("spec.config.strategy.entryScore", 0.6, 0.7)]


@pytest.mark.parametrize(("spec", "annotations", "kinds"), [
    ({"tradingEnabled": False}, {"trading.tradeops.io/halt-reason": "test"}, [Kind.SYMBOL_CHANGED, Kind.HALT]),
    ({"tradingEnabled": True}, {}, [Kind.SYMBOL_CHANGED, Kind.UNHALT]),
    ({"paused": True}, {}, [Kind.SYMBOL_CHANGED, Kind.PAUSE]),
    ({}, {"trading.tradeops.io/rollback-to": "2"}, [Kind.SYMBOL_CHANGED, Kind.ROLLBACK_REQUESTED]),
    ({"image": "ghcr.io/tradeops/trading-runtime:1.1"}, {}, [Kind.SYMBOL_CHANGED]),
], ids=["halt", "unhalt", "pause", "rollback", "image"])
def test_switches_become_their_own_entries(spec, annotations, kinds):
    previous = Recorded(view(ts({"tradingEnabled": False} if spec.get("tradingEnabled") else {})), None)
    entries, _ = symbol_entries(ts(spec, annotations, "2"), previous, False, T0)
    assert [e.kind for e in entries] == kinds
    assert len({e.source_key for e in entries}) == len(entries)


def test_nothing_recorded_when_only_status_or_the_stamp_changed():
    previous = Recorded(view(ts({})), None)
    entries, _ = symbol_entries(ts({}, stamp("bob", T0), "3"), previous, False, T0)
    assert entries == []


def test_who_an_opsctl_stamp_then_field_managers_then_unknown():
    stamped = stamp("alice@host via opsctl", T0)
    assert actor_of({"annotations": stamped}, None) == "alice@host via opsctl"
    assert actor_of({"annotations": stamped}, stamped[CHANGED_BY_ANNOTATION]) == "unknown", "an old stamp is no one"
    managers = [{"manager": "kubectl-client-side-apply", "time": "2026-11-01T00:00:00Z"},
                {"manager": "kubectl-edit", "time": "2026-11-02T00:00:00Z"}]
    assert actor_of({"managedFields": managers}, None) == "unknown user via kubectl-edit"
    assert actor_of({"annotations": {CHANGED_BY_ANNOTATION: "not json"}}, None).startswith("unknown (unreadable")


def test_events_about_trading_symbols_only_and_repeats_are_new_entries():
    event = {"metadata": {"uid": "e1", "namespace": "trading"}, "reason": "Promoted", "message": "Revision 3",
             "involvedObject": {"kind": "TradingSymbol", "name": "spy", "namespace": "trading"},
             "lastTimestamp": "2026-11-02T14:31:00Z", "count": 1, "source": {"component": "tradeops-operator"}}
    entry = event_entry(event, {"trading/spy": "SPY"}, T0)
    assert entry is not None
    assert (entry.kind, entry.subject, entry.occurred_at) == (Kind.PROMOTION, "SPY", T0 + datetime.timedelta(minutes=1))
    repeated = event_entry({**event, "count": 2}, {}, T0)
    assert repeated is not None
    assert repeated.source_key != entry.source_key
    assert event_entry({**event, "involvedObject": {"kind": "Pod", "name": "x"}}, {}, T0) is None
    assert revision_entry({"metadata": {"name": "x", "labels": {}}}, T0) is None


def test_kopf_bookkeeping_is_not_a_change_a_person_made():
    progress = '{"started":"2026-12-06T10:41:11Z","purpose":"delete","retries":3,"success":false,"failure":false}'
    annotations = {"trading.tradeops.io/touch-dummy": "2026-12-06T10:41:12Z", "trading.tradeops.io/drain": progress,
                   "trading.tradeops.io/kopf-managed": "yes", "trading.tradeops.io/halt-reason": "kill-switch test"}
    seen = view({"metadata": {"annotations": annotations}, "spec": {}})
    assert seen["annotations"] == {"trading.tradeops.io/halt-reason": "kill-switch test"}
