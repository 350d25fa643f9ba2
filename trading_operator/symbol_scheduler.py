"""One task for the work of every TradingSymbol: its reconciles, its analysis looks and the resync safety net.

The analysis ran as a kopf daemon per object that woke every second to find nothing due, and the resync as
a kopf timer per object: with a thousand symbols, two thousand tasks waking for nothing. Here one task keeps
the symbols in a heap by the time their next work is due.

A reconcile is due when the symbol is first seen (or seen again after a pause), when its generation, labels
or annotations change (not its status: the operator's own writes), when a child changed (`poke`: the informer
saw somebody else's write), after a failed or unfinished one (with backoff), and when nothing has reconciled
it for `resync_seconds`. Events that come while one runs make one more: a burst of child events costs one
reconcile, not one each. kopf's own on.create/on.update diffing (and the annotation it writes per change to
diff against) is not used.

What changes the analysis work due (a new analysis run, a request annotation, a status the planner wrote)
arrives as an event on the TradingSymbol, and an event makes its look due at once; between events a symbol is
looked at when its analysis asks (`analysis_work.next_work`'s delay).

A symbol takes part while it is attached: kopf still starts and stops a (sleeping) daemon per object, so
the operator's peering pauses, resumptions and deletions decide membership exactly as they decided the
per-object daemons' lives.

The analysis loop still only records findings; the planner decides (`analysis_loop.analysis_tick`)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from trading_operator import metrics
from trading_operator.kube import api_error_message

log = logging.getLogger(__name__)

Key = tuple[str, str]
Look = Callable[[str, str, Mapping[str, Any]], Awaitable[float]]
"""One analysis look at a symbol's latest body; returns the seconds until the next one."""
Reconcile = Callable[[str, str], Awaitable[str | None]]
"""One reconcile of a symbol; returns why it must run again soon (None: it need not)."""

API_ERROR_DELAY = 2.0
"""Seconds before a look or a resync that failed on the API is tried again."""
ERROR_DELAY = 10.0
"""Seconds before a look that failed unexpectedly is tried again (it is logged with its traceback)."""
MIN_DELAY = 0.1
"""The shortest wait between two looks at one symbol: a look that asks for none cannot spin the loop."""
MAX_BACKOFF = 30.0


def backoff(failures: int) -> float:
    """Seconds before the next try after `failures` failed or unfinished reconciles in a row (1, 2, 4 … 30)."""
    return float(min(2 ** (failures - 1), MAX_BACKOFF))


def essence(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a reconcile acts on besides the children: the spec (by its generation), labels and annotations."""
    meta = body.get("metadata") or {}
    return (meta.get("generation"), sorted((meta.get("labels") or {}).items()),
            sorted((meta.get("annotations") or {}).items()))


def _key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name", ""))


class SymbolScheduler:
    """The due times of every TradingSymbol's analysis look and resync, worked through by one task."""

    def __init__(self, look: Look, reconcile: Reconcile, resync_seconds: float, reconciled_at: Mapping[Key, float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`reconciled_at`: when each symbol was last reconciled (on `clock`), kept by whoever reconciles."""
        self._look = look
        self._reconcile = reconcile
        self._resync_seconds = resync_seconds
        self._reconciled_at = reconciled_at
        self._clock = clock
        self._bodies: dict[Key, Mapping[str, Any]] = {}
        self._resync_not_before: dict[Key, float] = {}
        self._look_due: dict[Key, float] = {}
        self._reconcile_due: dict[Key, float] = {}
        self._essence: dict[Key, tuple[Any, ...]] = {}
        self._failures: dict[Key, int] = {}
        self._queued: dict[Key, float] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._seq = itertools.count()
        self._busy: set[Key] = set()
        self._changed: set[Key] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()

    def attach(self, body: Mapping[str, Any]) -> None:
        """Take part (kopf started the symbol's daemon): reconcile and look at it now."""
        key = _key(body)
        self._bodies[key] = body
        self._resync_not_before.setdefault(key, self._clock() + self._resync_seconds)
        self._reconcile_at(key, self._clock())
        self._look_now(key)

    def detach(self, key: Key) -> None:
        """Take no part any more (kopf stopped the symbol's daemon: the operator paused, or it is deleted)."""
        self.forget(key)

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a TradingSymbol: an attached one keeps its latest body and is looked at now; one
        being deleted is dropped (the deletion handler drains it)."""
        key = _key(body)
        if key not in self._bodies:
            return
        if event_type == "DELETED" or (body.get("metadata") or {}).get("deletionTimestamp"):
            self.forget(key)
            return
        self._bodies[key] = body
        if essence(body) != self._essence.get(key):
            self._reconcile_at(key, self._clock())
        self._look_now(key)

    def body(self, key: Key) -> Mapping[str, Any] | None:
        """The latest body of an attached symbol."""
        return self._bodies.get(key)

    def poke(self, key: Key) -> None:
        """Something the symbol's reconcile reads changed (a child): reconcile it now, if it takes part."""
        if key in self._bodies:
            self._reconcile_at(key, self._clock())

    def _reconcile_at(self, key: Key, when: float) -> None:
        if when < self._reconcile_due.get(key, math.inf):
            self._reconcile_due[key] = when
            if key not in self._busy:  # a busy symbol is enqueued when its work ends
                self._enqueue(key, when)

    def _look_now(self, key: Key) -> None:
        if key in self._busy:
            self._changed.add(key)  # looked at again when the current work ends
            return
        now = self._clock()
        self._look_due[key] = now
        self._enqueue(key, now)

    def forget(self, key: Key) -> None:
        self._bodies.pop(key, None)
        self._resync_not_before.pop(key, None)
        self._look_due.pop(key, None)
        self._reconcile_due.pop(key, None)
        self._essence.pop(key, None)
        self._failures.pop(key, None)
        self._queued.pop(key, None)
        self._changed.discard(key)

    def __len__(self) -> int:
        return len(self._bodies)

    def _resync_due(self, key: Key) -> float:
        """`resync_seconds` after the last reconcile, and not before the first sight plus `resync_seconds`
        (kopf's timers started so too) or a failed resync's retry delay."""
        last = self._reconciled_at.get(key, -math.inf)
        return max(last + self._resync_seconds, self._resync_not_before.get(key, math.inf))

    def _due(self, key: Key) -> float:
        return min(self._look_due.get(key, math.inf), self._reconcile_due.get(key, math.inf), self._resync_due(key))

    def _enqueue(self, key: Key, when: float) -> None:
        queued = self._queued.get(key)
        if queued is not None and queued <= when:
            return
        self._queued[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        if self._heap[0][2] == key:
            self._wakeup.set()

    async def run(self) -> None:
        """Work through due symbols for ever (cancel to stop; `stop` also cancels the work in flight)."""
        while True:
            next_due = self.dispatch(self._clock())
            self._wakeup.clear()
            timeout = None if next_due is None else max(0.0, next_due - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def dispatch(self, now: float) -> float | None:
        """Start the work of every symbol due at `now`; returns when the next one is due (None: none is)."""
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._queued.get(key) != when:
                continue  # superseded by an earlier entry, or forgotten
            del self._queued[key]
            if key not in self._bodies or key in self._busy:
                continue  # a busy symbol is enqueued again when its work ends
            due = self._due(key)
            if due > now:
                self._enqueue(key, due)
                continue
            self._busy.add(key)
            task = asyncio.create_task(self._work(key, now), name=f"tradeops-periodic:{key[0]}/{key[1]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self._heap[0][0] if self._heap else None

    async def settle(self) -> None:
        """Wait for the work in flight to end (tests drive `dispatch` with a clock of their own)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _work(self, key: Key, now: float) -> None:
        namespace, name = key
        try:
            if key not in self._bodies:
                return
            if self._reconcile_due.get(key, math.inf) <= now:
                await self._one_reconcile(key)
            elif self._resync_due(key) <= now:
                metrics.RESYNCS.inc()
                await self._one_reconcile(key)
            if key in self._bodies and self._look_due.get(key, math.inf) <= now:
                self._look_due[key] = math.inf
                delay = await self._one_look(namespace, name, self._bodies[key])
                if key in self._bodies:
                    self._look_due[key] = self._clock() + max(delay, MIN_DELAY)
        finally:
            self._busy.discard(key)
            if key in self._bodies:
                if key in self._changed:
                    self._changed.discard(key)
                    self._look_due[key] = self._clock()
                self._enqueue(key, self._due(key))

    async def _one_reconcile(self, key: Key) -> None:
        namespace, name = key
        self._reconcile_due.pop(key, None)
        self._essence[key] = essence(self._bodies[key])
        again: str | None
        try:
            again = await self._reconcile(namespace, name)
        except ApiException as exc:
            log.warning("reconcile of %s/%s failed: %s", namespace, name, api_error_message(exc))
            again = api_error_message(exc)
        except Exception:  # a bug: logged, and tried again after a while
            log.exception("reconcile of %s/%s failed", namespace, name)
            self._reconcile_at(key, self._clock() + ERROR_DELAY)
            return
        if again is None:
            self._failures.pop(key, None)
            return
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        log.info("%s/%s: again in %.0f s: %s", namespace, name, backoff(failures), again)
        if key in self._bodies:
            self._reconcile_at(key, self._clock() + backoff(failures))

    async def _one_look(self, namespace: str, name: str, body: Mapping[str, Any]) -> float:
        metrics.ANALYSIS_LOOKS.inc()
        try:
            return await self._look(namespace, name, body)
        except ApiException as exc:
            log.warning("analysis of %s/%s: API error: %s", namespace, name, api_error_message(exc))
            return API_ERROR_DELAY
        except Exception:  # one symbol's bug must not stop every symbol's analysis
            log.exception("analysis of %s/%s failed", namespace, name)
            return ERROR_DELAY

    async def stop(self) -> None:
        """Cancel the work in flight and wait for it to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
