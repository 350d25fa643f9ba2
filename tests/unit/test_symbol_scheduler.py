"""The shared scheduler of every TradingSymbol's work, driven by a clock of the test's own: reconciles happen
when a symbol is first seen, when its spec, labels or annotations change or a child changed (coalesced), and
after a quiet spell (the resync); looks happen when an event or the look's own delay says; N unchanged symbols
cost N looks per declared interval — not one per symbol per second."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from trading_operator.symbol_scheduler import API_ERROR_DELAY, ERROR_DELAY, Key, SymbolScheduler, backoff

RESYNC = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A scheduler whose looks return `delay` (or raise `look_error`) and whose reconciles are counted (they
    return `again`, or raise `resync_error`)."""

    def __init__(self, delay: float = 10.0) -> None:
        self.clock = Clock()
        self.delay = delay
        self.looks: Counter[Key] = Counter()
        self.bodies: list[Mapping[str, Any]] = []
        self.resyncs: Counter[Key] = Counter()
        self.reconciled_at: dict[Key, float] = {}
        self.look_error: Exception | None = None
        self.resync_error: Exception | None = None
        self.again: str | None = None
        self.during_reconcile: Any = None
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

    async def resync(self, namespace: str, name: str) -> str | None:
        self.resyncs[(namespace, name)] += 1
        if self.during_reconcile is not None:
            self.during_reconcile()
        if self.resync_error is not None:
            raise self.resync_error
        self.reconciled_at[(namespace, name)] = self.clock.now
        return self.again

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
    assert h.resyncs[("ns", "spy")] == 1, "first sight (a new symbol, or the operator resuming) reconciles"
    h.reconciled_at[("ns", "spy")] = 50.0  # an event's reconcile
    await h.at(RESYNC + 1)
    assert h.resyncs[("ns", "spy")] == 1
    await h.at(50.0 + RESYNC)
    assert h.resyncs[("ns", "spy")] == 2
    await h.at(50.0 + RESYNC + 1)
    assert h.resyncs[("ns", "spy")] == 2


async def test_a_reconcile_that_fails_on_the_api_is_retried_with_backoff() -> None:
    h = Harness(delay=1000.0)
    h.resync_error = ApiException(status=503, reason="unavailable")
    h.scheduler.attach(body("spy"))
    await h.at(0.0)
    assert h.resyncs[("ns", "spy")] == 1
    assert h.scheduler.dispatch(0.0) == backoff(1) == 1.0
    await h.at(1.0)
    assert h.resyncs[("ns", "spy")] == 2
    assert h.scheduler.dispatch(1.0) == 1.0 + backoff(2) == 3.0
    h.resync_error = None
    await h.at(3.0)
    assert h.resyncs[("ns", "spy")] == 3
    assert h.scheduler.dispatch(3.0) == pytest.approx(3.0 + RESYNC), "succeeded: the resync's quiet spell next"


async def test_an_unfinished_reconcile_runs_again_with_backoff_until_it_finishes() -> None:
    """A reconcile that says why it must run again (a model not resolved yet) is retried 1, 2, 4 … s later."""
    h = Harness(delay=1000.0)
    h.again = "model not resolved"
    h.scheduler.attach(body("spy"))
    now = 0.0
    for failures in (1, 2, 3, 4):
        await h.at(now)
        assert h.resyncs[("ns", "spy")] == failures
        now += backoff(failures)
        assert h.scheduler.dispatch(now - 0.01) == pytest.approx(now)
    h.again = None
    await h.at(now)
    assert h.scheduler.dispatch(now) == pytest.approx(now + RESYNC)
    assert [backoff(n) for n in (1, 2, 3, 6, 7, 20)] == [1, 2, 4, 30, 30, 30]


async def test_status_changes_are_looked_at_but_not_reconciled() -> None:
    """The operator's own status writes come back as events: a look, never a reconcile (no idle churn)."""
    h = Harness(delay=1000.0)
    h.scheduler.attach(body("spy", generation=1))
    await h.at(0.0)
    h.scheduler.observe("MODIFIED", {**body("spy", generation=1, resourceVersion="7"), "status": {"phase": "Ready"}})
    await h.at(1.0)
    assert (h.resyncs[("ns", "spy")], h.looks[("ns", "spy")]) == (1, 2)


@pytest.mark.parametrize("meta", [
    {"generation": 2},
    {"generation": 1, "annotations": {"tradeops.io/rollback-to": "previous"}},
    {"generation": 1, "labels": {"team": "b"}},
], ids=["spec", "request-annotation", "label"])
async def test_a_change_of_spec_labels_or_annotations_reconciles(meta: dict[str, Any]) -> None:
    h = Harness(delay=1000.0)
    h.scheduler.attach(body("spy", generation=1))
    await h.at(0.0)
    h.scheduler.observe("MODIFIED", body("spy", **meta))
    await h.at(1.0)
    assert h.resyncs[("ns", "spy")] == 2


async def test_child_changes_during_a_reconcile_cost_one_more_reconcile() -> None:
    """A burst of child events (a Deployment rolling out) is coalesced: one reconcile after the running one."""
    h = Harness(delay=1000.0)
    h.scheduler.attach(body("spy"))

    def burst() -> None:
        if h.resyncs[("ns", "spy")] == 1:
            for _ in range(5):
                h.scheduler.poke(("ns", "spy"))
    h.during_reconcile = burst
    await h.at(0.0)
    assert h.resyncs[("ns", "spy")] == 1
    await h.at(0.0)
    assert h.resyncs[("ns", "spy")] == 2
    await h.at(1.0)
    assert h.resyncs[("ns", "spy")] == 2
    h.scheduler.poke(("ns", "qqq"))  # not attached: nothing
    await h.at(2.0)
    assert h.resyncs[("ns", "qqq")] == 0


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
    h.scheduler.poke(("ns", "spy"))
    await h.at(RESYNC * 2)
    assert h.looks[("ns", "spy")] == 1
    assert h.resyncs[("ns", "spy")] == 1, "only the one at attachment"
    h.scheduler.attach(body("spy"))
    await h.at(RESYNC * 2)
    assert h.looks[("ns", "spy")] == 2
    assert h.resyncs[("ns", "spy")] == 2, "resumed: reconciled at once"


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
    assert h.resyncs[("ns", "spy")] == 1, "only the one at attachment"


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
    # Once each when first seen, then once each at 60 s: none of them reconciled otherwise.
    assert sum(h.resyncs.values()) == 2 * symbols
