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
    queue: asyncio.Queue[WatchEvent] = field(default_factory=asyncio.Queue)


class TooOldError(Exception):
    """The requested resourceVersion is older than the kept history (410 Gone)."""


class Store:
    """Objects keyed by (group, plural, namespace, name); versions are strings of one global counter.

    Stored objects are never mutated in place (writers build new dicts), so reads, watch events and the
    history can share them without copying."""

    def __init__(self, history: int = 10000) -> None:
        self.objects: dict[Key, Obj] = {}
        self.revision = 0
        self.history: collections.deque[WatchEvent] = collections.deque(maxlen=history)
        self.subscriptions: list[Subscription] = []

    def _bump(self) -> str:
        self.revision += 1
        return str(self.revision)

    def get(self, key: Key) -> Obj | None:
        return self.objects.get(key)

    def items(self, group: str, plural: str, namespace: str | None = None) -> Iterator[tuple[Key, Obj]]:
        for key, obj in self.objects.items():
            if key[0] == group and key[1] == plural and (namespace is None or key[2] == namespace):
                yield key, obj

    def put(self, key: Key, obj: Obj, created: bool) -> Obj:
        """Store a new version (taking ownership of `obj`) and publish ADDED/MODIFIED."""
        stored = obj
        meta = stored.setdefault("metadata", {})
        if created:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            meta.setdefault("generation", 1)
        meta["resourceVersion"] = self._bump()
        self.objects[key] = stored
        self._publish(key, "ADDED" if created else "MODIFIED", stored)
        return stored

    def remove(self, key: Key) -> Obj | None:
        obj = self.objects.pop(key, None)
        if obj is None:
            return None
        gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": self._bump()}}
        self._publish(key, "DELETED", gone)
        return gone

    def _publish(self, key: Key, type_: str, obj: Obj) -> None:
        event = WatchEvent(self.revision, key[0], key[1], type_, obj)
        self.history.append(event)
        for sub in self.subscriptions:
            if sub.group == key[0] and sub.plural == key[1] and sub.accepts(obj):
                sub.queue.put_nowait(event)

    def subscribe(self, group: str, plural: str, accepts: Callable[[Obj], bool], since: int | None) \
            -> tuple[list[WatchEvent], Subscription]:
        """Events to replay (after `since`, or the current state as ADDED when None) and a live
        subscription — taken atomically."""
        if since is None:
            replay = [WatchEvent(self.revision, group, plural, "ADDED", obj)
                      for _, obj in self.items(group, plural) if accepts(obj)]
        else:
            oldest = self.history[0].resource_version if self.history else self.revision + 1
            if since < oldest - 1 and since < self.revision and len(self.history) == self.history.maxlen:
                raise TooOldError(f"too old resource version: {since} ({oldest - 1})")
            replay = [e for e in self.history if e.resource_version > since and e.group == group
                      and e.plural == plural and accepts(e.object)]
        sub = Subscription(group, plural, accepts)
        self.subscriptions.append(sub)
        return replay, sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
