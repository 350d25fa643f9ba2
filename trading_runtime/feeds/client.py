"""The market-data WebSocket client: reconnects with exponential backoff and full jitter, detects a stale
feed, detects sequence gaps and resyncs from a snapshot, and counts (never raises on) malformed frames.

Frames are handled as their bytes arrive (trading_runtime/feeds/transport.py), in order: parsed, checked for
sequence and handed to `handler`, which returns None once it is done with the message (the fast path) or an
awaitable when it must wait. The stream then moves to a drain task that awaits it and handles the frames queued
behind it the same way, until none is left; a gap's resync goes through the drain too. While the drain runs, the
socket is read on (frames queue) until the queue is long (`PAUSE_AT`), then paused until it is short again.

The resync snapshot comes from `snapshots` when one is given (the broker's HTTP API through the client pool):
frames keep queueing while it is fetched, those it already covers are then dropped as stale and the stream goes
on from its sequence number. Without one, or when it fails, it is asked of the feed itself."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import CloseCode

from trading_runtime.feeds.protocol import Heartbeat, Quote, Snapshot, Trade, parse_message
from trading_runtime.feeds.transport import FeedConnection

log = logging.getLogger(__name__)

Message = Snapshot | Quote | Trade | Heartbeat
Handler = Callable[[Message], Awaitable[None] | None]
"""Handles one message: None when done with it, else an awaitable that finishes it."""
SnapshotSource = Callable[[str], Awaitable[Snapshot]]
PAUSE_AT, RESUME_AT = 10_000, 5_000
"""Frames waiting for the drain above which the socket is no longer read, and below which it is again."""
OPEN_TIMEOUT, CLOSE_TIMEOUT = 5.0, 1.0
"""Seconds to connect (the handshake included), and to wait for the feed's side of a close: a feed has nothing
to say on close, a shutdown is not held for it."""

Queued = tuple[bytes, int, float]
"""A frame waiting for the drain: its bytes, and when the read holding it arrived (perf_counter_ns, wall)."""


async def settle(result: Awaitable[None] | None) -> None:
    """Await what a handler returned, if anything: for callers that drive a `Handler` from async code."""
    if result is not None:
        await result


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
        self._stop = asyncio.Event()
        self._connection: FeedConnection | None = None
        self._queue: collections.deque[Queued] = collections.deque()
        self._drain: asyncio.Future[None] | None = None
        self._paused, self._stale = False, False
        self._error: Exception | None = None
        self._last_frame = 0
        self._watch: asyncio.TimerHandle | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, stream, reconnect — until `stop` is set. An exception a handler raised ends the connection
        and is raised from here."""
        attempt = 0
        self._stop = stop
        while not stop.is_set():
            self.tracker = SequenceTracker()  # a new connection starts from fresh snapshots
            self._queue.clear()
            self._error, self._stale, self._paused = None, False, False
            self._connection = connection = FeedConnection(self.url, self._on_frames, CLOSE_TIMEOUT)
            try:
                async with asyncio.timeout(OPEN_TIMEOUT):
                    await connection.open()
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

    async def _stream(self, connection: FeedConnection, stop: asyncio.Event) -> None:
        """Until the connection ends: frames are handled by `_on_frames` as they arrive; here, the stop, the stale
        check, and the end (the drain finishes the frames queued before it, unless stopped)."""
        connection.send_text(json.dumps({"op": "subscribe", "symbols": self.symbols}))
        self.connected.set()
        self._last_frame = time.perf_counter_ns()  # silence counts from the subscription
        self._watch = asyncio.get_running_loop().call_later(self.stale_after, self._check_stale)
        closer = asyncio.ensure_future(self._close_on(stop, connection))
        try:
            await connection.closed
            if self._drain is not None:
                await asyncio.shield(self._drain)
        except BaseException:
            connection.abort()
            raise
        finally:
            if self._watch is not None:
                self._watch.cancel()
            closer.cancel()
        if self._error is not None:
            raise self._error
        if not (stop.is_set() or self._stale):
            raise connection.close_exc

    @staticmethod
    async def _close_on(stop: asyncio.Event, connection: FeedConnection) -> None:
        await stop.wait()
        connection.close()

    def _check_stale(self) -> None:
        """Re-armed for when the last frame turns stale, not armed per frame."""
        connection = self._connection
        assert connection is not None
        if connection.closed.done():
            return
        # Reading paused, the socket is full: the feed is not silent.
        silent = 0.0 if self._paused else (time.perf_counter_ns() - self._last_frame) / 1e9
        if silent < self.stale_after:
            self._watch = asyncio.get_running_loop().call_later(self.stale_after - silent, self._check_stale)
            return
        # nothing, not even a heartbeat: the feed is stale
        self.stats.stale_timeouts += 1
        log.warning("feed silent for %.1fs; reconnecting", self.stale_after)
        self._stale = True
        connection.close()

    def _on_frames(self, frames: list[bytes], received: int, wall: float) -> None:
        """The frames of one read (`received`, `wall`: when it arrived), handled here in order until one needs an
        await; that one and those behind it go to the drain."""
        self._last_frame = received
        if self._error is not None or self._stop.is_set():
            return
        if self._drain is not None:
            self._queue.extend((frame, received, wall) for frame in frames)
            if len(self._queue) > PAUSE_AT and not self._paused:
                assert self._connection is not None
                self._paused = True
                self._connection.pause_reading()
            return
        for i, frame in enumerate(frames):
            try:
                pending = self._on_frame(frame, received, wall)
            except Exception as exc:
                self._fail(exc)
                return
            if pending is not None:
                self._queue.extend((rest, received, wall) for rest in frames[i + 1:])
                self._drain = asyncio.ensure_future(self._drain_from(pending))
                return

    async def _drain_from(self, pending: Awaitable[None]) -> None:
        """Await `pending`, then handle the queued frames in order (awaiting those that need it) until none is
        left, then hand the stream back to `_on_frames`. A stop drops what is still queued."""
        try:
            while True:
                await pending
                while True:
                    if not self._queue or self._stop.is_set():
                        return
                    frame, received, wall = self._queue.popleft()
                    if self._paused and len(self._queue) < RESUME_AT:
                        assert self._connection is not None
                        self._paused = False
                        self._connection.resume_reading()
                    next_pending = self._on_frame(frame, received, wall)
                    if next_pending is not None:
                        pending = next_pending
                        break
        except Exception as exc:
            self._fail(exc)
        finally:
            self._drain = None

    def _fail(self, exc: Exception) -> None:
        """A handler raised: nothing more is handled, the connection closes and `run` raises it."""
        log.error("feed handler failed on %s: %r", self.url, exc)
        self._error = exc
        self._queue.clear()
        assert self._connection is not None
        self._connection.close(CloseCode.INTERNAL_ERROR, "handler failed")

    def _on_frame(self, frame: bytes, received: int, wall: float) -> Awaitable[None] | None:
        """Handle one frame; an awaitable when its handling must wait (the handler's, or a gap's resync)."""
        try:
            message = parse_message(frame)
        except ValueError:
            self.stats.malformed += 1
            return None
        self.frame_times = (received, time.perf_counter_ns())
        sent = getattr(message, "sent", None)
        # A clock behind the feed's would make the frame seem to arrive before it was sent: never below 0.
        self.frame_wait_ns = 0 if sent is None else max(0, int((wall - sent) * 1e9))
        self.frame_origin = received - self.frame_wait_ns
        if isinstance(message, Heartbeat):
            return None
        if isinstance(message, Snapshot):
            if message.symbol in self.tracker.resyncing:
                self.stats.resyncs += 1
            self.tracker.snapshot(message.symbol, message.seq)
        else:
            verdict = self.tracker.check(message.symbol, message.seq)
            if verdict is Verdict.GAP:
                self.stats.gaps += 1
                return self._resync(message)
            if verdict is Verdict.STALE:
                self.stats.dropped_out_of_order += 1
                return None
        self.stats.messages += 1
        return self.handler(message)

    async def _resync(self, message: Quote | Trade) -> None:
        """After the gap `message` showed: the source's snapshot then `message` if it still applies, or the
        feed's snapshot asked for (the frames until it arrives are dropped as stale)."""
        if not await self._resync_from_source(message.symbol, message.seq):
            assert self._connection is not None
            if self._connection.is_open:  # else the next connection's subscription brings a snapshot
                self._connection.send_text(json.dumps({"op": "snapshot", "symbol": message.symbol}))
            return
        if self.tracker.check(message.symbol, message.seq) is Verdict.STALE:  # covered by the snapshot
            self.stats.dropped_out_of_order += 1
            return
        self.stats.messages += 1
        await settle(self.handler(message))

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
        await settle(self.handler(snapshot))
        return True
