"""The operator's children as its watches last showed them, with its own writes applied at once (pure).

`informer.py` feeds it from watch streams; `executor.observe` reads from it instead of asking the API for
every child at every reconcile. Two rules keep it from misleading the planner:
- a write of the operator is in the store as the API returned it, at once; the watch's older events of that
  object (changes made before the write) are then skipped until the write's own event arrives — a watch
  delivers one object's events in order, so nothing older can overwrite the write afterwards (and a write whose
  event came first, the store being as new already, is not applied: resourceVersions are only compared for
  equality, never for order, as the API asks);
- what it cannot prevent (another writer changing a child after the store saw it) the writes catch: the
  executor's patches carry the resourceVersion they were planned from, and a 409 re-reads from the API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trading_operator import naming

Obj = dict[str, Any]
Key = tuple[str, str, str]
"""(kind, namespace, name)"""

DELETION = ""
"""Awaited instead of a resourceVersion: the operator deleted the object; its DELETED event is awaited."""
HISTORY = 16
"""The versions of an object the watch delivered last that are remembered: a write whose answer is processed
after the watch already delivered it (and more) must not take the store back."""

POD_FIELDS = frozenset({"apiVersion", "kind", "metadata", "status"})
"""What the store keeps of a pod: the planner (restarts.py, progress.py) reads no more, and a pod's spec is a copy
of its Deployment's template."""


@dataclass(frozen=True)
class Change:
    """What a watch event did to the store."""

    kind: str
    event_type: str
    obj: Obj
    own: bool
    """The echo of the operator's own write (nobody else changed anything)."""


def _key(kind: str, obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return kind, str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _owner(obj: Obj) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    owner = labels.get(naming.OWNER_NAME_LABEL)
    return str(owner) if owner else None


class ChildStore:
    """Objects by (kind, namespace, name), indexed by the TradingSymbol that owns them (its label)."""

    def __init__(self, kinds: Iterable[str], namespaces: Iterable[str | None] = (None,)) -> None:
        """`namespaces`: where each kind is listed (None: the whole cluster at once)."""
        self.kinds = frozenset(kinds)
        self._parts = {(kind, namespace) for kind in self.kinds for namespace in namespaces}
        self._objects: dict[Key, Obj] = {}
        self._by_owner: defaultdict[tuple[str, str, str], set[str]] = defaultdict(set)
        self._awaiting: dict[Key, str] = {}
        """Own writes the watch has not delivered yet: their resourceVersion, or DELETION."""
        self._delivered: dict[Key, tuple[str, ...]] = {}
        """The last HISTORY versions the watch delivered of each object (a tuple: a deque per object cost ten times the
        memory)."""
        self._synced: set[tuple[str, str | None]] = set()

    @property
    def synced(self) -> bool:
        """Every kind has been listed once: the store can answer for all of them."""
        return self._synced == self._parts

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get((kind, namespace, name))

    def owned(self, kind: str, namespace: str, owner: str) -> list[Obj]:
        """The objects of a kind labelled as owned by the TradingSymbol `owner`, by name."""
        names = self._by_owner.get((kind, namespace, owner), ())
        return [self._objects[(kind, namespace, name)] for name in sorted(names)]

    def replace(self, kind: str, items: Iterable[Obj], namespace: str | None = None) -> list[Change]:
        """A (re)list of a kind (in a namespace; None: everywhere): it replaces what the store held of it, own
        writes in flight included (the list is at least as new as the watch that broke). Returns what a relist
        found changed while no watch ran (as the events it missed: ADDED, MODIFIED, DELETED), so that nobody's
        change is lost; the first list is no news (every owner is reconciled when first seen)."""
        def part(key: Key) -> bool:
            return key[0] == kind and namespace in (None, key[1])
        before = {key: self._objects[key] for key in self._objects if part(key)}
        awaited = {key: self._awaiting.pop(key) for key in [k for k in self._awaiting if part(k)]}
        for key in before:
            self._remove(key)
        for key in [k for k in self._delivered if part(k)]:
            del self._delivered[key]
        changes = []
        for obj in items:
            key = _key(kind, obj)
            self._put(key, obj)
            self._seen(key, obj)
            old = before.pop(key, None)
            if old is None or _version(old) != _version(obj):
                changes.append(Change(kind, "MODIFIED" if old else "ADDED", obj, own=awaited.get(key) == _version(obj)))
        changes += [Change(kind, "DELETED", old, own=False) for old in before.values()]
        relisted = (kind, namespace) in self._synced
        self._synced.add((kind, namespace))
        return changes if relisted else []

    def apply(self, kind: str, event_type: str, obj: Obj) -> Change:
        """A watch event (ADDED, MODIFIED, DELETED)."""
        key = _key(kind, obj)
        if event_type == "DELETED":
            self._delivered.pop(key, None)
        else:
            self._seen(key, obj)
        awaited = self._awaiting.get(key)
        if awaited is not None:
            arrived = event_type == "DELETED" if awaited == DELETION else _version(obj) == awaited
            if not arrived:  # older than the operator's write, which the store already holds
                return Change(kind, event_type, obj, own=False)
            del self._awaiting[key]
            if awaited != DELETION:
                return Change(kind, event_type, obj, own=True)
        if event_type == "DELETED":
            self._remove(key)
        else:
            self._put(key, obj)
        return Change(kind, event_type, obj, own=awaited == DELETION)

    def wrote(self, obj: Obj) -> None:
        """The operator created or patched `obj` (the API's answer): it holds from now on."""
        kind = str(obj.get("kind") or "")
        if kind not in self.kinds:
            return
        key = _key(kind, obj)
        if _version(obj) in self._delivered.get(key, ()):  # the watch was first (or the write changed nothing)
            return
        self._put(key, obj)
        self._awaiting[key] = _version(obj)

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        """The operator deleted an object (the API accepted it)."""
        if kind not in self.kinds:
            return
        key = (kind, namespace, name)
        if key in self._objects:  # only what the watch shows gets a DELETED event from it
            self._remove(key)
            self._awaiting[key] = DELETION

    def _seen(self, key: Key, obj: Obj) -> None:
        self._delivered[key] = (*self._delivered.get(key, ())[1 - HISTORY:], _version(obj))

    def _put(self, key: Key, obj: Obj) -> None:
        if key[0] == "Pod":  # the planner reads a pod's metadata and status only
            obj = {k: v for k, v in obj.items() if k in POD_FIELDS}
        if "managedFields" in (meta := obj.get("metadata") or {}):  # server-side apply's bookkeeping: unread
            obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
        previous = self._objects.get(key)
        if previous is not None and _owner(previous) != _owner(obj):
            self._unindex(key, previous)
        self._objects[key] = obj
        owner = _owner(obj)
        if owner is not None:
            self._by_owner[(key[0], key[1], owner)].add(key[2])

    def _remove(self, key: Key) -> None:
        previous = self._objects.pop(key, None)
        if previous is not None:
            self._unindex(key, previous)

    def _unindex(self, key: Key, obj: Obj) -> None:
        owner = _owner(obj)
        if owner is None:
            return
        names = self._by_owner.get((key[0], key[1], owner))
        if names is not None:
            names.discard(key[2])
            if not names:
                del self._by_owner[(key[0], key[1], owner)]
