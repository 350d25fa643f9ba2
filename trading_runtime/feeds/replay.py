"""Recorded market data as the runtime's feed (`python -m trading_runtime --replay FILE --speed X`): the
events of a validated file (trading_runtime/feeds/recorded.py) handed to the engine in time order, paced
by their timestamps, with the engine's clock set to each event's exchange time first. Everything a pod
does with a live feed — metrics, storage, risk — then runs on recorded data.

Pacing is against the schedule: event i is due at start + (ts_i − ts_0)/speed, so a slow handler makes the
replay late (then it catches up without sleeping) rather than stretching the whole schedule. `speed` 1.0
replays at recorded pace, 10.0 ten times faster, 0 as fast as possible (yielding to the event loop every
`YIELD_EVERY` events so the metrics and health endpoints stay served)."""

from __future__ import annotations

import asyncio

from trading_runtime.clock import EventClock
from trading_runtime.feeds.client import FeedStats, Handler, settle
from trading_runtime.feeds.events import MarketEvents

YIELD_EVERY = 256


class ReplayFeed:
    """The live feed client's surface (`run`, `stats`, `connected`) over recorded events; `finished` is
    set once every event was delivered."""

    def __init__(self, events: MarketEvents, handler: Handler, clock: EventClock, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (as fast as possible) or positive")
        self.events, self.handler, self.clock, self.speed = events, handler, clock, speed
        self.stats = FeedStats()
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()
        self.late_s = 0.0
        """Largest lateness behind the paced schedule (seconds of wall time)."""

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.connected.set()
        origin_wall, origin_ts = loop.time(), self.events.start
        try:
            for message in self.events.messages():
                if stop.is_set():
                    return
                if self.speed > 0:
                    delay = origin_wall + (message.ts - origin_ts) / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        self.late_s = max(self.late_s, -delay)
                elif self.stats.messages % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                self.clock.advance(message.ts)
                self.stats.messages += 1
                await settle(self.handler(message))
            self.finished.set()
        finally:
            self.connected.clear()
