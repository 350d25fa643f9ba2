"""The market-data WebSocket client: reconnects with exponential backoff and full jitter, detects a stale
feed, detects sequence gaps and resyncs from a snapshot, and counts (never raises on) malformed frames.

The resync snapshot comes from `snapshots` when one is given (the broker's HTTP API through the client pool):
frames keep queueing on the socket while it is fetched, those it already covers are then dropped as stale and
the stream goes on from its sequence number. Without one, or when it fails, it is asked of the feed itself."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from trading_runtime.feeds.protocol import Heartbeat, Quote, Snapshot, Trade, parse_message

log = logging.getLogger(__name__)

Message = Snapshot | Quote | Trade | Heartbeat
Handler = Callable[[Message], Awaitable[None]]
SnapshotSource = Callable[[str], Awaitable[Snapshot]]


def backoff_delay(attempt: int, rng: random.Random, base: float = 0.1, cap: float = 10.0) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base·2^attempt))."""
    return rng.uniform(0.0, min(cap, base * 2.0 ** attempt))


class Verdict(enum.Enum):
    IN_ORDER = "in-order"
    GAP = "gap"
    STALE = "stale"
    """Older than what was applied (a duplicate), or while waiting for a resync snapshot."""


@dataclass
class SequenceTracker:
    """Per-symbol sequence bookkeeping; a gap holds the symbol until a snapshot resets it."""

    last: dict[str, int] = field(default_factory=dict)
    resyncing: set[str] = field(default_factory=set)

    def snapshot(self, symbol: str, seq: int) -> None:
        self.last[symbol] = seq
        self.resyncing.discard(symbol)

    def check(self, symbol: str, seq: int) -> Verdict:
        if symbol in self.resyncing or symbol not in self.last:
            return Verdict.STALE
        expected = self.last[symbol] + 1
        if seq == expected:
            self.last[symbol] = seq
            return Verdict.IN_ORDER
        if seq < expected:
            return Verdict.STALE
        self.resyncing.add(symbol)
        return Verdict.GAP


@dataclass
class FeedStats:
    messages: int = 0
    malformed: int = 0
    reconnects: int = 0
    gaps: int = 0
    resyncs: int = 0
    api_snapshots: int = 0
    """Resync snapshots taken from the snapshot source (the rest came from the feed)."""
    api_snapshot_failures: int = 0
    """Resync snapshots the source failed to give, or gave older than the gap (the feed's was taken)."""
    stale_timeouts: int = 0
    dropped_out_of_order: int = 0


class FeedClient:
    """Subscribes to `symbols` at `url` and hands every in-order message to `handler`."""

    def __init__(self, url: str, symbols: list[str], handler: Handler, stale_after: float = 5.0,
                 backoff_base: float = 0.1, backoff_cap: float = 10.0, seed: int | None = None,
                 snapshots: SnapshotSource | None = None, snapshot_timeout: float = 2.0) -> None:
        self.url = url
        self.snapshots, self.snapshot_timeout = snapshots, snapshot_timeout
        self.symbols = symbols
        self.handler = handler
        self.stale_after = stale_after
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.stats = FeedStats()
        self.tracker = SequenceTracker()
        self.connected = asyncio.Event()
        self._rng = random.Random(seed)
        self.frame_times = (0, 0)
        """perf_counter_ns when the frame being handled arrived and when it was parsed (for its trace)."""
        self.frame_origin = 0
        """perf_counter_ns when the frame in hand was due from the feed (its `sent` stamp), else when it arrived:
        where tick-to-signal starts, so the network, the queues on the way and parsing count."""
        self.frame_wait_ns = 0
        """How long before its arrival the frame in hand was due from the feed (0 when unstamped): the network
        and the queues between the feed's schedule and this process's handling of the frame."""

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, stream, reconnect — until `stop` is set."""
        attempt = 0
        while not stop.is_set():
            try:
                # close_timeout: a feed has nothing to say on close; do not hold a shutdown for its handshake.
                # No permessage-deflate: inflating a frame of a few hundred bytes only delays it.
                async with connect(self.url, open_timeout=5, close_timeout=1, max_size=2**22,
                                   compression=None) as connection:
                    attempt = 0
                    await self._stream(connection, stop)
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                log.warning("feed connection to %s lost: %s", self.url, exc)
            finally:
                self.connected.clear()
            if stop.is_set():
                break
            self.stats.reconnects += 1
            delay = backoff_delay(attempt, self._rng, self.backoff_base, self.backoff_cap)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _stream(self, connection: ClientConnection, stop: asyncio.Event) -> None:
        self.tracker = SequenceTracker()  # a new connection starts from fresh snapshots
        await connection.send(json.dumps({"op": "subscribe", "symbols": self.symbols}))
        self.connected.set()
        # A stop closes the connection, which ends the wait for a frame: no task or future per frame, as a
        # wait on both would cost every frame before it is even handed to the engine.
        closer = asyncio.ensure_future(self._close_on(stop, connection))
        try:
            while not stop.is_set():
                try:
                    async with asyncio.timeout(self.stale_after):
                        frame = await connection.recv()
                except TimeoutError:  # nothing, not even a heartbeat: the feed is stale
                    self.stats.stale_timeouts += 1
                    log.warning("feed silent for %.1fs; reconnecting", self.stale_after)
                    return
                await self._on_frame(connection, frame)
        except ConnectionClosed:
            if not stop.is_set():
                raise
        finally:
            closer.cancel()

    @staticmethod
    async def _close_on(stop: asyncio.Event, connection: ClientConnection) -> None:
        await stop.wait()
        await connection.close()

    async def _on_frame(self, connection: ClientConnection, frame: str | bytes) -> None:
        received, wall = time.perf_counter_ns(), time.time()
        try:
            message = parse_message(frame)
        except ValueError:
            self.stats.malformed += 1
            return
        self.frame_times = (received, time.perf_counter_ns())
        sent = getattr(message, "sent", None)
        # A clock behind the feed's would make the frame seem to arrive before it was sent: never below 0.
        self.frame_wait_ns = 0 if sent is None else max(0, int((wall - sent) * 1e9))
        self.frame_origin = received - self.frame_wait_ns
        if isinstance(message, Heartbeat):
            return
        if isinstance(message, Snapshot):
            if message.symbol in self.tracker.resyncing:
                self.stats.resyncs += 1
            self.tracker.snapshot(message.symbol, message.seq)
        else:
            verdict = self.tracker.check(message.symbol, message.seq)
            if verdict is Verdict.GAP:
                self.stats.gaps += 1
                if not await self._resync_from_source(message.symbol, message.seq):
                    await connection.send(json.dumps({"op": "snapshot", "symbol": message.symbol}))
                    return
                verdict = self.tracker.check(message.symbol, message.seq)  # in order right after it, or covered
            if verdict is Verdict.STALE:
                self.stats.dropped_out_of_order += 1
                return
        self.stats.messages += 1
        await self.handler(message)

    async def _resync_from_source(self, symbol: str, gap_seq: int) -> bool:
        """Take the symbol's snapshot from the snapshot source and hand it on; False when there is none, it
        failed, or it is older than the gap (`gap_seq`, the frame that showed it): the caller asks the feed."""
        if self.snapshots is None:
            return False
        try:
            snapshot = await asyncio.wait_for(self.snapshots(symbol), self.snapshot_timeout)
        except Exception as exc:  # any failure of the source: the feed's own snapshot still resyncs
            self.stats.api_snapshot_failures += 1
            log.warning("snapshot of %s from the API failed (%s); asking the feed", symbol, exc)
            return False
        if snapshot.seq < gap_seq - 1:  # the source lags the feed: it would leave the gap open
            self.stats.api_snapshot_failures += 1
            log.warning("snapshot of %s from the API is at seq %d, older than the gap at %d; asking the feed", symbol,
                        snapshot.seq, gap_seq)
            return False
        self.stats.api_snapshots += 1
        self.stats.resyncs += 1
        self.tracker.snapshot(symbol, snapshot.seq)
        self.stats.messages += 1
        await self.handler(snapshot)
        return True
