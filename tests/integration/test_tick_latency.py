"""Feed-to-signal latency counts from the feed's scheduled send time: a stalled runtime's queued frames
show their wait (no coordinated omission), over a real WebSocket. The runtime observes exactly this sum in
`tradeops_feed_to_signal_seconds` (trading_runtime/main.py)."""

from __future__ import annotations

import asyncio
import time

from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import FeedClient, Message
from trading_runtime.feeds.server import FeedServer
from trading_runtime.metrics import RuntimeMetrics


async def test_frames_queued_behind_a_stall_carry_their_wait_into_the_figure():
    metrics = RuntimeMetrics("SPY")
    decided: list[tuple[float, float]] = []
    clients: list[FeedClient] = []
    stalled = False

    def record(message: Message, latency: float) -> None:
        nonlocal stalled
        decided.append((getattr(message, "sent", None) or 0.0, latency + clients[0].frame_wait_ns / 1e9))
        if len(decided) == 50 and not stalled:
            stalled = True
            time.sleep(0.4)  # the runtime blocks: frames keep being due and queue up behind it

    config = RenderedConfig(symbol="SPY", market="equity-options", revision=1, runtime=RuntimeConfig())
    engine = SymbolEngine(config, True, metrics, lambda table, row: None, origin=lambda: clients[0].frame_origin,
                          decided=record)
    # The feed shares this loop: a lag bound of its own would skip the ticks due during the stall.
    async with FeedServer(["SPY"], seed=3, rate=100, max_lag_s=10.0) as feed:
        client = FeedClient(feed.url, ["SPY"], engine.on_message)
        clients.append(client)
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        for _ in range(200):
            if len(decided) > 150:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
    assert stalled
    after = [latency for _, latency in decided[50:60]]
    assert max(after) >= 0.3, after  # the wait behind the stall is in the figure, not hidden
    assert all(sent > 0 for sent, _ in decided)  # every decision was on a stamped frame



async def test_a_starved_feed_skips_the_ticks_it_missed_instead_of_replaying_a_backlog():
    async with FeedServer(["SPY"], seed=3, rate=100, max_lag_s=0.05) as feed:
        await asyncio.sleep(0.2)
        time.sleep(0.5)  # noqa: ASYNC251 -- the loop must block: the feed's own process starves
        await asyncio.sleep(0.2)
        assert feed.slips >= 30  # ~45 ticks were due during the stall; none is made up late
