"""The shared scheduler of every TradingSymbol's periodic work, driven by a clock of the test's own: looks
happen when an event or the look's own delay says, resyncs only after a quiet spell, and N unchanged symbols
cost N looks per declared interval — not one per symbol per second."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from trading_operator.symbol_scheduler import API_ERROR_DELAY, ERROR_DELAY, Key, SymbolScheduler

RESYNC = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A scheduler whose looks return `delay` (or raise `look_error`) and whose resyncs are counted."""

    def __init__(self, delay: float = 10.0) -> None:
        self.clock = Clock()
        self.delay = delay
        self.looks: Counter[Key] = Counter()
        self.bodies: list[Mapping[str, Any]] = []
        self.resyncs: Counter[Key] = Counter()
        self.reconciled_at: dict[Key, float] = {}
        self.look_error: Exception | None = None
        self.resync_error: Exception | None = None
        self.during_look: Any = None
        self.scheduler = SymbolScheduler(self.look, self.resync, RESYNC, self.reconciled_at, clock=self.clock)

    async def look(self, namespace: str, name: str, body: Mapping[str, Any]) -> float:
        self.looks[(namespace, name)] += 1
        self.bodies.append(body)
        if self.during_look is not None:
            self.during_look()
        if self.look_error is not None:
            raise self.look_error
        return self.delay

    async def resync(self, namespace: str, name: str) -> None:
        self.resyncs[(namespace, name)] += 1
        if self.resync_error is not None:
            raise self.resync_error
        self.reconciled_at[(namespace, name)] = self.clock.now

    async def at(self, now: float) -> float | None:
        """Advance the clock to `now`, start what is due and let it finish; returns when the next work is due."""
        self.clock.now = now
        self.scheduler.dispatch(now)
        await self.scheduler.settle()
        return self.scheduler.dispatch(now)

    async def run_until(self, end: float) -> None:
        """Advance through every due time up to `end`, as the scheduler's own loop would."""
        while True:
            next_due = self.scheduler.dispatch(self.clock.now)
            if next_due is None or next_due > end:
                break
            await self.at(max(next_due, self.clock.now))
        self.clock.now = end


def body(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, **meta}, "spec": {"symbol": name.upper()}}


async def test_a_new_symbol_is_looked_at_at_once_then_when_its_look_asks() -> None:
    h = Harness(delay=10.0)
    h.scheduler.attach(body("spy"))
    assert await h.at(0.0) == 10.0
    assert h.looks[("ns", "spy")] == 1
    await h.at(9.9)
    assert h.looks[("ns", "spy")] == 1
    await h.at(10.0)
    assert h.looks[("ns", "spy")] == 2


async def test_an_event_makes_the_symbol_due_at_once_with_its_latest_body() -> None:
    h = Harness(delay=10.0)
    h.scheduler.attach(body("spy"))
    await h.at(0.0)
    h.clock.now = 1.0
    h.scheduler.observe("MODIFIED", body("spy", resourceVersion="2"))
    h.scheduler.observe("MODIFIED", body("spy", resourceVersion="3"))
    await h.at(1.0)
    assert h.looks[("ns", "spy")] == 2, "two events before the look: one look, at the latest body"
    assert h.bodies[-1]["metadata"]["resourceVersion"] == "3"


async def test_an_event_during_a_look_is_looked_at_after_it() -> None:
    h = Harness(delay=100.0)
    h.scheduler.attach(body("spy"))
    h.during_look = lambda: h.scheduler.observe("MODIFIED", body("spy", resourceVersion="2")) \
        if h.looks[("ns", "spy")] == 1 else None
    await h.at(0.0)
    assert h.looks[("ns", "spy")] == 1
    await h.at(0.0)
    assert h.looks[("ns", "spy")] == 2
    assert h.bodies[-1]["metadata"]["resourceVersion"] == "2"


async def test_a_resync_waits_for_a_quiet_spell_since_the_last_reconcile() -> None:
    h = Harness(delay=1000.0)
    h.scheduler.attach(body("spy"))
    await h.at(0.0)
    h.reconciled_at[("ns", "spy")] = 50.0  # an event's reconcile
    await h.at(RESYNC + 1)
    assert h.resyncs[("ns", "spy")] == 0
    await h.at(50.0 + RESYNC)
    assert h.resyncs[("ns", "spy")] == 1
    await h.at(50.0 + RESYNC + 1)
    assert h.resyncs[("ns", "spy")] == 1


async def test_a_never_reconciled_symbol_is_resynced_after_the_interval_from_first_sight() -> None:
    h = Harness(delay=1000.0)
    h.clock.now = 5.0
    h.scheduler.attach(body("spy"))
    await h.at(5.0)
    await h.at(5.0 + RESYNC - 0.1)
    assert h.resyncs[("ns", "spy")] == 0
    await h.at(5.0 + RESYNC)
    assert h.resyncs[("ns", "spy")] == 1


async def test_a_resync_that_fails_on_the_api_is_retried_soon() -> None:
    h = Harness(delay=1000.0)
    h.scheduler.attach(body("spy"))
    await h.at(0.0)
    h.resync_error = ApiException(status=503, reason="unavailable")
    await h.at(RESYNC)
    assert h.resyncs[("ns", "spy")] == 1
    h.resync_error = None
    assert h.scheduler.dispatch(RESYNC) == RESYNC + API_ERROR_DELAY
    await h.at(RESYNC + API_ERROR_DELAY)
    assert h.resyncs[("ns", "spy")] == 2
    assert h.scheduler.dispatch(RESYNC + API_ERROR_DELAY) == pytest.approx(2 * RESYNC + API_ERROR_DELAY)


@pytest.mark.parametrize(("error", "retry"), [
    (ApiException(status=500, reason="boom"), API_ERROR_DELAY),
    (RuntimeError("a bug in one symbol's analysis"), ERROR_DELAY),
], ids=["api-error", "bug"])
async def test_a_failed_look_is_retried_and_other_symbols_go_on(error: Exception, retry: float) -> None:
    h = Harness(delay=10.0)
    h.scheduler.attach(body("spy"))
    h.look_error = error
    await h.at(0.0)
    h.look_error = None
    h.scheduler.attach(body("qqq"))
    await h.at(0.0)
    assert h.looks == {("ns", "spy"): 1, ("ns", "qqq"): 1}
    await h.at(retry)
    assert h.looks[("ns", "spy")] == 2


async def test_a_detached_symbol_is_left_alone_and_its_events_ignored() -> None:
    """kopf stopped its daemon (the operator paused by peering): no looks, no resyncs until attached again."""
    h = Harness(delay=10.0)
    h.scheduler.attach(body("spy"))
    await h.at(0.0)
    h.scheduler.detach(("ns", "spy"))
    h.scheduler.observe("MODIFIED", body("spy"))
    await h.at(1.0)
    await h.at(RESYNC * 2)
    assert h.looks[("ns", "spy")] == 1
    assert h.resyncs[("ns", "spy")] == 0
    h.scheduler.attach(body("spy"))
    await h.at(RESYNC * 2)
    assert h.looks[("ns", "spy")] == 2


@pytest.mark.parametrize("event", [
    ("DELETED", body("spy")),
    ("MODIFIED", body("spy", deletionTimestamp="2026-01-01T00:00:00Z")),
], ids=["deleted", "being-deleted"])
async def test_a_deleted_symbol_is_forgotten(event: tuple[str, dict[str, Any]]) -> None:
    h = Harness(delay=10.0)
    h.scheduler.attach(body("spy"))
    await h.at(0.0)
    h.scheduler.observe(*event)
    assert len(h.scheduler) == 0
    await h.at(10.0)
    await h.at(RESYNC * 2)
    assert h.looks[("ns", "spy")] == 1
    assert h.resyncs[("ns", "spy")] == 0


async def test_unchanged_symbols_cost_one_look_per_declared_interval() -> None:
    """The regression guard of the per-object daemons: 500 symbols at rest for ten 10-second intervals are
    looked at ~500 × 10 times (the daemons looked ~500 × 100 times), and resynced once a minute each."""
    h = Harness(delay=10.0)
    symbols = 500
    for i in range(symbols):
        h.scheduler.attach(body(f"s{i:03d}"))
    await h.at(0.0)
    await h.run_until(100.0)
    looks = sum(h.looks.values())
    assert symbols * 10 <= looks <= symbols * 11
    assert sum(h.resyncs.values()) == symbols  # once each, at 60 s: none of them reconciled otherwise
