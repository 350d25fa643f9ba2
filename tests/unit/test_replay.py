"""Recorded events as the runtime's feed: order, numbering, the clock, pacing against the schedule."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.unit.recorded_files import MONDAY, ticks, write_csv
from trading_runtime.clock import EventClock
from trading_runtime.feeds.protocol import Quote, Trade
from trading_runtime.feeds.recorded import load_recorded
from trading_runtime.feeds.replay import ReplayFeed


@pytest.fixture
def events(tmp_path):
    return load_recorded(write_csv(tmp_path / "ticks.csv", ticks(MONDAY, 3))).events


async def test_every_event_reaches_the_handler_with_the_clock_at_its_time(events):
    clock, seen = EventClock(), []

    async def handler(message):
        seen.append((message, clock.now()))

    feed = ReplayFeed(events, handler, clock, speed=0)
    await feed.run(asyncio.Event())
    assert feed.finished.is_set()
    assert not feed.connected.is_set()
    assert [type(m) for m, _ in seen] == [Quote, Trade, Quote, Quote]
    assert [m.seq for m, _ in seen] == [1, 2, 3, 4]
    assert all(now == m.ts for m, now in seen)
    assert feed.stats.messages == 4


async def test_paced_replay_follows_the_schedule(events):
    async def handler(message):
        return None

    started = time.monotonic()
    await ReplayFeed(events, handler, EventClock(), speed=10.0).run(asyncio.Event())
    assert 0.18 <= time.monotonic() - started < 0.6  # 2 s of market time at 10×


async def test_a_slow_handler_makes_the_replay_late_not_longer(events):
    async def slow(message):
        await asyncio.sleep(0.3)

    feed = ReplayFeed(events, slow, EventClock(), speed=10.0)
    started = time.monotonic()
    await feed.run(asyncio.Event())
    elapsed = time.monotonic() - started
    assert elapsed < 1.35  # 4 × 0.3 s of handling; the schedule's own 0.2 s is absorbed, not added (1.4 s)
    assert feed.late_s > 0.2


async def test_stop_ends_the_replay(events):
    stop = asyncio.Event()
    stop.set()
    feed = ReplayFeed(events, lambda m: asyncio.sleep(0), EventClock(), speed=0)
    await feed.run(stop)
    assert feed.stats.messages == 0
    assert not feed.finished.is_set()


def test_negative_speed_is_refused(events):
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(events, lambda m: asyncio.sleep(0), EventClock(), speed=-1)
