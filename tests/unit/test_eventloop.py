"""The runtime and the feed server run on uvloop; the feed's schedule wakes the loop through a timerfd."""

from __future__ import annotations

import asyncio
import statistics
import time

import uvloop

from trading_runtime import eventloop
from trading_runtime.feeds.server import FeedServer
from trading_runtime.feeds.timer import PreciseTimer, timer


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_run_is_on_uvloop():
    assert eventloop.run(_loop_type()) is uvloop.Loop


async def _lateness(waits: int, step: float) -> list[float]:
    precise = timer(asyncio.get_running_loop())
    assert isinstance(precise, PreciseTimer)  # Linux: a timerfd
    late = []
    at = time.monotonic()
    try:
        for _ in range(waits):
            at += step
            await precise.until(at)
            late.append(time.monotonic() - at)
    finally:
        precise.close()
    return late


def test_the_timer_wakes_at_the_instant_never_before():
    for loop_factory in (uvloop.new_event_loop, asyncio.new_event_loop):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            late = runner.run(_lateness(300, 0.0017))
        assert min(late) >= 0, loop_factory
        # How late is the machine's business (its load): docs/scaling.md has the figures. A wrong instant (a
        # relative time for an absolute one, nanoseconds off by a factor) is seconds off, or never fires.
        assert statistics.median(late) < 5e-3, (loop_factory, statistics.median(late))


def test_an_instant_already_past_returns_at_once():
    async def past() -> float:
        precise = timer(asyncio.get_running_loop())
        assert precise is not None
        start = time.monotonic()
        await precise.until(start - 1.0)
        precise.close()
        return time.monotonic() - start

    assert eventloop.run(past()) < 0.01


async def _served_late_ms(use_timer: bool, monkeypatch) -> tuple[bool, list[float]]:
    if not use_timer:
        monkeypatch.setattr("trading_runtime.feeds.server.timer", lambda loop: None)
    async with FeedServer(["SPY", "QQQ"], rate=300) as server:
        on_timerfd = server._timer is not None
        await asyncio.sleep(1.0)
        return on_timerfd, list(server.late)


def test_the_feed_keeps_its_schedule_on_the_timerfd_and_without_one(monkeypatch):
    for use_timer in (True, False):
        on_timerfd, late = eventloop.run(_served_late_ms(use_timer, monkeypatch))
        assert on_timerfd is use_timer
        assert len(late) > 300  # 600 beats a second for 1 s (a starved machine skips some)
        assert min(late) >= 0
        assert statistics.median(late) < 5e-3
