"""A controller's work queue: keys to sync, deduplicated, synced on the event loop after the write that
queued them returns (controllers learn of writes from store listeners, which must not write themselves).
A sync may ask to be called again later; one that raises is retried with back-off, as client-go's rate
limited queues do."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)

BATCH = 200
"""Keys synced per turn of the loop, so HTTP requests are served between batches."""


class WorkQueue(Generic[K]):
    def __init__(self, name: str, sync: Callable[[K], float | None]) -> None:
        self.name = name
        self._sync = sync
        self._pending: dict[K, None] = {}
        self._scheduled = False
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    def add(self, key: K) -> None:
        if self._stopped:
            return
        self._pending[key] = None
        self._schedule()

    def add_after(self, key: K, delay: float) -> None:
        """Sync `key` in `delay` seconds (an earlier pending timer for it wins)."""
        loop = self._running_loop()
        if loop is None or self._stopped:
            return
        timer = self._timers.get(key)
        due = loop.time() + delay
        if timer is not None and not timer.cancelled() and timer.when() <= due:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
        return self._loop

    def _schedule(self) -> None:
        loop = self._running_loop()
        if loop is not None and not self._scheduled and self._pending:
            self._scheduled = True
            loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        for _ in range(min(BATCH, len(self._pending))):
            key = next(iter(self._pending))
            del self._pending[key]
            try:
                again = self._sync(key)
            except Exception:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                log.exception("%s: sync of %s failed (attempt %d)", self.name, key, failures)
                self.add_after(key, min(0.005 * 2 ** failures, 60.0))
                continue
            self._failures.pop(key, None)
            if again is not None:
                self.add_after(key, again)
        self._schedule()

    def start(self) -> None:
        """Begin syncing what was queued before the loop ran."""
        self._schedule()

    def stop(self) -> None:
        self._stopped = True
        self._pending.clear()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
