"""The feed's schedule wakes the event loop through a timerfd (feeds/timer.py), and falls back to its clock thread
where there is none."""

from __future__ import annotations

import asyncio
import statistics
import time

from trading_runtime.feeds.server import FeedServer
from trading_runtime.feeds.timer import PreciseTimer, timer


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
    late = asyncio.run(_lateness(300, 0.0017))
    assert min(late) >= 0
    # How late is the machine's business (its load): docs/scaling.md has the figures. A wrong instant (a relative
    # time for an absolute one, nanoseconds off by a factor) is seconds off, or never fires.
    assert statistics.median(late) < 5e-3, statistics.median(late)


def test_an_instant_already_past_returns_at_once():
    async def past() -> float:
        precise = timer(asyncio.get_running_loop())
        assert precise is not None
        start = time.monotonic()
        await precise.until(start - 1.0)
        precise.close()
        return time.monotonic() - start

    assert asyncio.run(past()) < 0.01


async def _served_late_ms(use_timer: bool, monkeypatch) -> tuple[bool, list[float]]:
    if not use_timer:
        monkeypatch.setattr("trading_runtime.feeds.server.timer", lambda loop: None)
    async with FeedServer(["SPY", "QQQ"], rate=300) as server:
        on_timerfd = server._timer is not None
        await asyncio.sleep(1.0)
        return on_timerfd, list(server.late)


def test_the_feed_keeps_its_schedule_on_the_timerfd_and_without_one(monkeypatch):
    for use_timer in (True, False):
        on_timerfd, late = asyncio.run(_served_late_ms(use_timer, monkeypatch))
        assert on_timerfd is use_timer
        assert len(late) > 300  # 600 beats a second for 1 s (a starved machine skips some)
        assert min(late) >= 0
        assert statistics.median(late) < 5e-3
