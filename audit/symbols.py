"""TradingSymbol changes as audit entries (pure): what changed (the diff of spec, labels and the operator's
annotations), who changed it, and the switches it flipped (halt/unhalt, pause/resume, a rollback request)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audit.entries import Json, NewEntry
from audit.identity import CHANGED_BY_ANNOTATION, actor_of
from audit.kinds import Kind

GROUP_PREFIX = "trading.tradeops.io/"
HALT_REASON_ANNOTATION = f"{GROUP_PREFIX}halt-reason"
ROLLBACK_ANNOTATION = f"{GROUP_PREFIX}rollback-to"


@dataclass(frozen=True)
class Change:
    path: str
    before: Json
    after: Json

    def as_json(self) -> dict[str, Json]:
        return {"path": self.path, "before": self.before, "after": self.after}


# kopf's own bookkeeping under the operator's prefix: the marker of a prefix it stores progress under
# (kopf/_cogs/configs/conventions.py), the last configuration it handled (its diff base) and the dummy it
# touches to wake a delayed handler; its handlers' progress records are told by their shape.
KOPF_BOOKKEEPING = frozenset({f"{GROUP_PREFIX}kopf-managed", f"{GROUP_PREFIX}last-handled-configuration",
                              f"{GROUP_PREFIX}touch-dummy"})


def _kopf_progress(value: str) -> bool:
    """A handler's progress record kopf keeps under the prefix while it retries (e.g. the drain's)."""
    try:
        record = json.loads(value)
    except ValueError:
        return False
    return isinstance(record, dict) and {"started", "retries", "purpose"} <= set(record)


def view(obj: Mapping[str, Any]) -> dict[str, Json]:
    """What a person changes on a TradingSymbol: spec, labels and the operator's annotations (not status,
    not bookkeeping such as resourceVersion, the changed-by stamp or kopf's own marker of the prefix it uses)."""
    metadata = obj.get("metadata") or {}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if k.startswith(GROUP_PREFIX) and k != CHANGED_BY_ANNOTATION and k not in KOPF_BOOKKEEPING
                   and not _kopf_progress(v)}
    return {"spec": obj.get("spec") or {}, "labels": dict(metadata.get("labels") or {}), "annotations": annotations}


def diff(before: Json, after: Json, path: str = "") -> list[Change]:
    """Leaf-level differences of two JSON values (lists compare whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[Change] = []
        for key in sorted(set(before) | set(after)):
            changes += diff(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return changes
    return [] if before == after else [Change(path, before, after)]


def _switch_kind(change: Change) -> Kind | None:
    if change.path == "spec.tradingEnabled":
        return Kind.UNHALT if change.after in (True, None) else Kind.HALT
    if change.path == "spec.paused":
        return Kind.PAUSE if change.after else Kind.RESUME
    if change.path == f"annotations.{ROLLBACK_ANNOTATION}" and change.after is not None:
        return Kind.ROLLBACK_REQUESTED
    return None


@dataclass(frozen=True)
class Recorded:
    """What the recorder last recorded of an object: its view and the changed-by stamp it carried."""

    view: dict[str, Json]
    stamp: str | None


def symbol_entries(obj: Mapping[str, Any], previous: Recorded | None, deleted: bool,
                   now: datetime.datetime) -> tuple[list[NewEntry], Recorded]:
    """The entries for one observed version of a TradingSymbol (none when nothing a person changes
    changed), and what to remember of it."""
    metadata = obj.get("metadata") or {}
    current = view(obj)
    stamp = (metadata.get("annotations") or {}).get(CHANGED_BY_ANNOTATION)
    remembered = Recorded(current, stamp)
    symbol = str(current["spec"].get("symbol") or metadata.get("name") or "")
    key = f"TradingSymbol/{metadata.get('uid', metadata.get('name'))}/{metadata.get('resourceVersion', '')}"
    where = {"namespace": metadata.get("namespace", ""), "name": metadata.get("name", "")}
    if deleted:
        return [NewEntry(now, actor_of(metadata, None), Kind.SYMBOL_DELETED, symbol, where,
                         f"{key}/deleted")], remembered
    changes = diff(previous.view if previous else {}, current)
    if previous is not None and not changes:
        return [], remembered
    actor = actor_of(metadata, previous.stamp if previous else None)
    kind = Kind.SYMBOL_CHANGED if previous else Kind.SYMBOL_CREATED
    detail = {**where, "diff": [c.as_json() for c in changes], "state": current, "stamp": stamp}
    entries = [NewEntry(now, actor, kind, symbol, detail, key)]
    if previous is not None:
        for change in changes:
            switch = _switch_kind(change)
            if switch is None:
                continue
            extra: dict[str, Json] = {**where, "change": change.as_json()}
            if switch is Kind.HALT:
                extra["reason"] = current["annotations"].get(HALT_REASON_ANNOTATION)
            entries.append(NewEntry(now, actor, switch, symbol, extra, f"{key}/{switch.value}"))
    return entries, remembered
