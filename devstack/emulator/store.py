"""Object storage with one resourceVersion counter, a bounded event history and watch subscriptions.

Everything here is synchronous and runs on the server's event loop, so a list snapshot and a watch
subscription taken in one call can never miss an event in between."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trading_operator.timestamps import now_rfc3339

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" if cluster-scoped), name


@dataclass
class WatchEvent:
    resource_version: int
    group: str
    plural: str
    type: str
    object: Obj
    old: Obj | None = None
    """The previous version for MODIFIED (to tell selector watches that an object entered or left them)."""
    _line: bytes | None = None

    def line(self) -> bytes:
        """The event as one JSON line, serialised once for every watcher."""
        if self._line is None:
            self._line = json.dumps({"type": self.type, "object": self.object}).encode() + b"\n"
        return self._line


@dataclass
class Subscription:
    group: str
    plural: str
    accepts: Callable[[Obj], bool]
    queue: asyncio.Queue[WatchEvent | TooOldError | None] = field(default_factory=asyncio.Queue)
    """Events in order; None ends the watch (the server is shutting down), a TooOldError ends it with 410 Gone
    (the history it follows was compacted)."""


class TooOldError(Exception):
    """The requested resourceVersion is older than the kept history (410 Gone)."""


def visible(event: WatchEvent, accepts: Callable[[Obj], bool]) -> WatchEvent | None:
    """The event as a watch with this filter sees it: as the API server does, an object modified into
    the selection is ADDED and one modified out of it is DELETED."""
    now = accepts(event.object)
    if event.type != "MODIFIED" or event.old is None:
        return event if now else None
    before = accepts(event.old)
    if now and before:
        return event
    if now or before:
        return WatchEvent(event.resource_version, event.group, event.plural, "ADDED" if now else "DELETED",
                          event.object)
    return None


class Store:
    """Objects keyed by (group, plural, namespace, name); versions are strings of one global counter.

    Stored objects are never mutated in place (writers build new dicts), so reads, watch events and the
    history can share them without copying."""

    def __init__(self, history: int = 10000) -> None:
        self.objects: dict[Key, Obj] = {}
        self.by_resource: dict[tuple[str, str], dict[Key, Obj]] = collections.defaultdict(dict)
        self.by_owner: dict[str, set[Key]] = collections.defaultdict(set)
        """Keys of the objects naming each owner uid in their ownerReferences (garbage collection, controllers)."""
        self.revision = 0
        self.compacted = 0
        """Every event up to this resourceVersion is forgotten (`compact`): a watch from before it gets 410."""
        self.history: collections.deque[WatchEvent] = collections.deque(maxlen=history)
        self.subscriptions: list[Subscription] = []
        self.listeners: list[Callable[[WatchEvent], None]] = []
        """In-process observers (controllers, kubelets) called with every event, after it is stored. They
        must not write from the call: they queue work for later."""

    def _bump(self) -> str:
        self.revision += 1
        return str(self.revision)

    def get(self, key: Key) -> Obj | None:
        return self.objects.get(key)

    def items(self, group: str, plural: str, namespace: str | None = None) -> Iterator[tuple[Key, Obj]]:
        for key, obj in list(self.by_resource.get((group, plural), {}).items()):
            if namespace is None or key[2] == namespace:
                yield key, obj

    def owned_by(self, uid: str) -> list[tuple[Key, Obj]]:
        """The objects that name `uid` in their ownerReferences."""
        return [(key, self.objects[key]) for key in list(self.by_owner.get(uid, ())) if key in self.objects]

    def _index(self, key: Key, obj: Obj | None, old: Obj | None) -> None:
        for ref in (old or {}).get("metadata", {}).get("ownerReferences") or []:
            self.by_owner[ref.get("uid", "")].discard(key)
        for ref in (obj or {}).get("metadata", {}).get("ownerReferences") or []:
            self.by_owner[ref.get("uid", "")].add(key)
        if obj is None:
            self.by_resource[(key[0], key[1])].pop(key, None)
        else:
            self.by_resource[(key[0], key[1])][key] = obj

    def put(self, key: Key, obj: Obj, created: bool) -> Obj:
        """Store a new version (taking ownership of `obj`) and publish ADDED/MODIFIED."""
        stored = obj
        meta = stored.setdefault("metadata", {})
        if created:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            meta.setdefault("generation", 1)
        meta["resourceVersion"] = self._bump()
        old = self.objects.get(key)
        self.objects[key] = stored
        self._index(key, stored, old)
        self._publish(key, "ADDED" if created else "MODIFIED", stored, old)
        return stored

    def remove(self, key: Key) -> Obj | None:
        obj = self.objects.pop(key, None)
        if obj is None:
            return None
        self._index(key, None, obj)
        gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": self._bump()}}
        self._publish(key, "DELETED", gone)
        return gone

    def _publish(self, key: Key, type_: str, obj: Obj, old: Obj | None = None) -> None:
        event = WatchEvent(self.revision, key[0], key[1], type_, obj, old)
        self.history.append(event)
        for listener in self.listeners:
            listener(event)
        for sub in self.subscriptions:
            if sub.group == key[0] and sub.plural == key[1]:
                seen = visible(event, sub.accepts)
                if seen is not None:
                    sub.queue.put_nowait(seen)

    def subscribe(self, group: str, plural: str, accepts: Callable[[Obj], bool], since: int | None) \
            -> tuple[list[WatchEvent], Subscription]:
        """Events to replay (after `since`, or the current state as ADDED when None) and a live
        subscription — taken atomically."""
        if since is None:
            replay = [WatchEvent(self.revision, group, plural, "ADDED", obj)
                      for _, obj in self.items(group, plural) if accepts(obj)]
        else:
            if since < self._oldest():
                raise TooOldError(f"too old resource version: {since} ({self._oldest()})")
            candidates = (visible(e, accepts) for e in self.history
                          if e.resource_version > since and e.group == group and e.plural == plural)
            replay = [e for e in candidates if e is not None]
        sub = Subscription(group, plural, accepts)
        self.subscriptions.append(sub)
        return replay, sub

    def _oldest(self) -> int:
        """The oldest resourceVersion a watch can start from: every event after it is kept."""
        full = len(self.history) == self.history.maxlen
        return max(self.compacted, self.history[0].resource_version - 1 if full and self.history else 0)

    def compact(self) -> None:
        """Forget the event history, as etcd's compaction does: every open watch ends with 410 Gone (the ERROR
        event a real API server sends a watcher its watch cache has left behind) and a watch from an older
        resourceVersion is refused with it, so a client must list again."""
        self.history.clear()
        self.compacted = self.revision
        for sub in self.subscriptions:
            sub.queue.put_nowait(TooOldError(f"too old resource version: the history before {self.revision} "
                                             "was compacted"))

    def close_watches(self) -> None:
        """End every open watch stream."""
        for sub in self.subscriptions:
            sub.queue.put_nowait(None)

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
