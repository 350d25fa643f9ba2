"""The recorder: watches TradingSymbols, their ControllerRevisions and the operator's Events through the
Kubernetes API and appends what happened to the audit log. It needs no change to the operator.

One thread lists and watches each resource; one consumer turns what they see into entries (keeping the
last recorded view of every TradingSymbol, so a change is recorded as a diff) and appends them, retrying
with backoff while the database is away (nothing seen is dropped: entries wait in memory, and after a
restart a fresh list records what changed meanwhile, deletions included). Entries carry the key of what
they were recorded from, so seeing an object again never records it twice."""

from __future__ import annotations

import datetime
import json
import logging
import queue
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from audit.entries import NewEntry
from audit.kinds import Kind
from audit.operator_objects import event_entry, revision_entry
from audit.store import AuditStoreError, append, connect
from audit.symbols import Recorded, symbol_entries
from audit.watching import ApiStream, WatchExpiredError
from trading_operator import api
from trading_operator.kube import CONTROLLER_REVISIONS, EVENTS, Obj, Resource

log = logging.getLogger(__name__)

TRADING_SYMBOLS = Resource(api.API_VERSION, api.PLURAL)
WATCHED = {"TradingSymbol": TRADING_SYMBOLS, "ControllerRevision": CONTROLLER_REVISIONS, "Event": EVENTS}
LISTED = "LISTED"
"""The type of an observation that comes from a (re)list rather than a watch event."""
Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Observation:
    kind: str
    type: str
    obj: Obj
    listed_uids: frozenset[str] | None = None
    """Set on the end-of-list marker of TradingSymbols: the uids that exist now."""


class Recorder:
    def __init__(self, stream: ApiStream, conninfo: str, namespace: str | None = None,
                 clock: Clock = utc_now, watch_seconds: int = 60) -> None:
        self.stream, self.conninfo, self.namespace = stream, conninfo, namespace
        self.clock, self.watch_seconds = clock, watch_seconds
        self.views: dict[str, Recorded] = {}
        """uid → what was last recorded of each TradingSymbol."""
        self.symbols: dict[str, str] = {}
        """namespace/name → ticker, for Events (which name only the object)."""
        self.names: dict[str, tuple[str, str]] = {}
        """uid → (namespace/name, ticker) of the TradingSymbols recorded, to record a deletion seen by relisting."""
        self.observations: queue.Queue[Observation] = queue.Queue()
        self.pending: list[NewEntry] = []
        self.appended = 0

    # The consumer (pure apart from the clock) -------------------------------------------------------

    def entries_for(self, observation: Observation) -> list[NewEntry]:
        now = self.clock()
        if observation.listed_uids is not None:
            return self._deleted_while_away(observation.listed_uids, now)
        obj = observation.obj
        if observation.kind == "TradingSymbol":
            return self._symbol(obj, observation.type == "DELETED", now)
        if observation.kind == "ControllerRevision":
            entry = revision_entry(obj, now) if observation.type != "DELETED" else None
            return [entry] if entry else []
        entry = event_entry(obj, self.symbols, now) if observation.type != "DELETED" else None
        return [entry] if entry else []

    def _symbol(self, obj: Obj, deleted: bool, now: datetime.datetime) -> list[NewEntry]:
        metadata = obj.get("metadata") or {}
        uid = str(metadata.get("uid") or metadata.get("name"))
        key = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
        entries, recorded = symbol_entries(obj, self.views.get(uid), deleted, now)
        ticker = str((obj.get("spec") or {}).get("symbol") or metadata.get("name"))
        if deleted:
            self.views.pop(uid, None)
            self.names.pop(uid, None)
        else:
            self.views[uid] = recorded
            self.symbols[key] = ticker
            self.names[uid] = (key, ticker)
        return entries

    def _deleted_while_away(self, present: frozenset[str], now: datetime.datetime) -> list[NewEntry]:
        gone = [uid for uid in self.views if uid not in present]
        entries = []
        for uid in gone:
            key, ticker = self.names.get(uid, ("/", uid))
            namespace, _, name = key.partition("/")
            entries.append(NewEntry(now, "unknown (deleted while the recorder was not watching)", Kind.SYMBOL_DELETED,
                                    ticker, {"namespace": namespace, "name": name},
                                    f"TradingSymbol/{uid}/deleted"))
            self.views.pop(uid, None)
            self.names.pop(uid, None)
        return entries

    def load_state(self) -> None:
        """What was last recorded of every TradingSymbol not deleted since (so a restart records diffs)."""
        with connect(self.conninfo) as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (split_part(source_key, '/', 2)) split_part(source_key, '/', 2), kind, subject, "
                "detail FROM audit_log WHERE kind IN ('symbol-created', 'symbol-changed', 'symbol-deleted') "
                "AND source_key LIKE 'TradingSymbol/%' ORDER BY split_part(source_key, '/', 2), seq DESC").fetchall()
        for uid, kind, subject, detail in rows:
            if kind == Kind.SYMBOL_DELETED.value or not isinstance(detail, dict):
                continue
            key = f"{detail.get('namespace', '')}/{detail.get('name', '')}"
            self.views[str(uid)] = Recorded(detail.get("state") or {}, detail.get("stamp"))
            self.symbols[key] = str(subject)
            self.names[str(uid)] = (key, str(subject))

    # The I/O -----------------------------------------------------------------------------------------

    def _watch(self, kind: str, stop: threading.Event) -> None:
        res, version, failures = WATCHED[kind], "", 0
        while not stop.is_set():
            try:
                if not version:
                    items, version = self.stream.list(res, self.namespace)
                    for item in items:
                        self.observations.put(Observation(kind, LISTED, item))
                    if kind == "TradingSymbol":
                        uids = frozenset(str(i["metadata"].get("uid") or i["metadata"]["name"]) for i in items)
                        self.observations.put(Observation(kind, LISTED, {}, uids))
                for event in self.stream.watch(res, self.namespace, version, self.watch_seconds):
                    version = str((event.obj.get("metadata") or {}).get("resourceVersion") or version)
                    if event.type != "BOOKMARK":
                        self.observations.put(Observation(kind, event.type, event.obj))
                    if stop.is_set():
                        return
                failures = 0
            except WatchExpiredError:
                version = ""
            except Exception as error:  # API away, refused, or answering nonsense: list again later
                failures += 1
                version = ""
                delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0)
                log.warning("watching %s failed (%s); listing again in %.1f s", kind, error, delay)
                stop.wait(delay)

    def _flush(self) -> bool:
        """Append what is pending; False (and kept) when the database is not there."""
        if not self.pending:
            return True
        try:
            self.appended += append(self.conninfo, self.pending)
        except (AuditStoreError, psycopg.OperationalError) as error:
            log.warning("audit database unavailable, %d entries waiting: %s", len(self.pending), error)
            return False
        self.pending = []
        return True

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Record until `stop` is set."""
        failures = 0
        while not stop.is_set():
            try:
                self.load_state()
                break
            except AuditStoreError as error:
                failures += 1
                log.warning("audit database unavailable at start: %s", error)
                stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
        threads = [threading.Thread(target=self._watch, args=(kind, stop), name=f"watch-{kind}", daemon=True)
                   for kind in WATCHED]
        for thread in threads:
            thread.start()
        if ready is not None:
            ready.set()
        failures = 0
        while not stop.is_set() or not self.observations.empty():
            try:
                observation = self.observations.get(timeout=0.2)
                self.pending += self.entries_for(observation)
                while len(self.pending) < 500:
                    self.pending += self.entries_for(self.observations.get_nowait())
            except queue.Empty:
                pass
            if self._flush():
                failures = 0
            else:
                failures += 1
                stop.wait(min(30.0, 0.2 * 2 ** min(failures, 7)))
        for thread in threads:
            thread.join(timeout=5)  # daemon threads: a watch still waiting on the server ends with the process
        if not self._flush():
            log.error("stopping with %d entries not recorded: %s", len(self.pending),
                      json.dumps([e.source_key for e in self.pending][:20]))
