"""The synthetic market served over WebSocket in the feed protocol (see protocol.py).

`python -m trading_runtime.feeds.server --symbols SPY,QQQ,ES --rate 50 --port 8765` serves until stopped.
Tests reach in to inject faults: sequence gaps, malformed frames and dropped connections.

It also answers `GET /v1/history/{symbol}?seconds=S` (or `?since=TS`) on the same port, over plain HTTP: the
frames it sent over the last S seconds of market time, from a ring bounded by `--history-seconds` and
`--history-events` per symbol (`history.py`), what a runtime warms up from before it goes live."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import signal
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from trading_runtime.feeds.history import HISTORY_PATH, HistoryRing, history_body, history_query
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.feeds.timer import PreciseTimer, timer

log = logging.getLogger(__name__)

LATE_SAMPLES = 100_000
"""Beats whose lateness the feed keeps (about 2.7 min at 12 symbols × 50 ticks/s) for its exit line."""
HISTORY_SECONDS = 600.0
"""Market seconds of events the feed keeps per symbol for its history answer."""
HISTORY_EVENTS = 50_000
"""At most this many events per symbol (about 12 MB of frames): the count bound of the history ring."""


@dataclass
class _Subscriber:
    connection: ServerConnection
    symbols: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=10000))


class FeedServer:
    """Ticks every symbol `rate` times a second (market time advances `time_scale` × wall time) and
    broadcasts the messages to subscribers, numbered per symbol and stamped with the wall time the tick was
    due (`sent`): a fixed schedule, so a client that falls behind shows as latency. The symbols take turns,
    evenly phased (symbol i of n is due i/n of an interval after the first), as markets do not tick every
    symbol in the same microsecond; `burst` makes them all due at once. The simulated market itself keeps
    up or skips: when its producer is over `max_lag_s` behind (a starved machine), the symbol ticks it
    missed are not made up (counted in `slips`), so its own backlog does not pass for the clients'."""

    def __init__(self, symbols: list[str], seed: int = 0, rate: float = 50.0, host: str = "127.0.0.1",
                 port: int = 0, time_scale: float = 1.0, heartbeat_s: float = 1.0, max_lag_s: float = 0.05,
                 edge: float = 0.0, burst: bool = False, history_seconds: float = HISTORY_SECONDS,
                 history_events: int = HISTORY_EVENTS) -> None:
        self.symbols = symbols
        self.history = {symbol: HistoryRing(history_seconds, history_events) for symbol in symbols}
        self.history_requests = 0
        self.simulator = MarketSimulator(symbols, seed=seed, edge=edge)
        self.rate = rate
        self.host, self.port = host, port
        self.time_scale = time_scale
        self.burst = burst
        self.heartbeat_s = heartbeat_s
        self.seq = dict.fromkeys(symbols, 0)
        self.sent = 0
        self.max_lag_s = max_lag_s
        self.slips = 0
        self.late: collections.deque[float] = collections.deque(maxlen=LATE_SAMPLES)
        """Seconds past its due time each recent beat was handed to the senders: the feed's own lateness."""
        self._subscribers: list[_Subscriber] = []
        self._server: Server | None = None
        self._producer: asyncio.Task[None] | None = None
        self._skip: set[str] = set()
        self._clock: ThreadPoolExecutor | None = None
        """The clock thread where there is no timerfd (`_until`)."""
        self._timer: PreciseTimer | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> FeedServer:
        # No permessage-deflate: a frame is a few hundred bytes, and compressing it per subscriber costs CPU
        # on the way of every frame at both ends.
        self._server = await serve(self._handle, self.host, self.port, max_size=2**20, compression=None,
                                   process_request=self._http)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        self._timer = timer(asyncio.get_running_loop())
        if self._timer is None:
            self._clock = ThreadPoolExecutor(1, thread_name_prefix="feed-clock")
        self._producer = asyncio.create_task(self._produce())
        return self

    async def stop(self) -> None:
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._clock is not None:
            self._clock.shutdown(wait=False)

    async def __aenter__(self) -> FeedServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Faults for tests -------------------------------------------------------------------------------

    def skip_sequence(self, symbol: str) -> None:
        """The next message of `symbol` skips one sequence number (a lost message)."""
        self._skip.add(symbol)

    def send_raw(self, frame: str) -> None:
        """Send a frame as it is to every subscriber (e.g. a malformed one)."""
        for subscriber in self._subscribers:
            self._enqueue(subscriber, frame)

    async def drop_connections(self) -> None:
        """Close every client connection, as a crashed feed would."""
        for subscriber in list(self._subscribers):
            await subscriber.connection.close(code=1011, reason="feed restart")

    # Serving ----------------------------------------------------------------------------------------

    def _number(self, message: dict[str, Any], due: float) -> str:
        symbol = message["symbol"]
        self.seq[symbol] += 2 if symbol in self._skip else 1
        self._skip.discard(symbol)
        frame = json.dumps({**message, "seq": self.seq[symbol], "sent": due})
        self.history[symbol].append(message["ts"], frame)
        return frame

    def _snapshot(self, symbol: str) -> str:
        return json.dumps({**self.simulator.snapshot(symbol), "seq": self.seq[symbol]})

    def _enqueue(self, subscriber: _Subscriber, frame: str) -> None:
        try:
            subscriber.queue.put_nowait(frame)
        except asyncio.QueueFull:  # a slow client loses the stream; it will resync from the gap
            log.warning("subscriber queue full; dropping a frame")

    def _beats(self) -> list[list[str]]:
        """The symbols due together, in turn: one symbol a beat (evenly phased), or all at once (`burst`)."""
        return [list(self.symbols)] if self.burst else [[symbol] for symbol in self.symbols]

    async def _produce(self) -> None:
        beats = self._beats()
        step = 1.0 / (self.rate * len(beats))
        next_at = time.monotonic()
        idle_since, beat = next_at, 0
        while True:
            missed = int((time.monotonic() - next_at) / step)
            if time.monotonic() - next_at > self.max_lag_s and missed:  # behind: the market does not replay it
                self.slips += sum(len(beats[(beat + i) % len(beats)]) for i in range(missed))
                beat, next_at = beat + missed, next_at + missed * step
                log.warning("feed producer %.3fs behind its schedule; skipped %d beats", missed * step, missed)
            # The schedule runs on the monotonic clock; its stamp is read off the wall clock as it is now, as the
            # clients read theirs: a wall clock slewed or stepped by NTP (0.5 % fast on this VM) does not pile up.
            due = next_at + time.time() - time.monotonic()
            # The frames are made before they are due, so the simulator's own cost is not in their latency.
            frames = [(symbol, self._tick(symbol, due)) for symbol in beats[beat % len(beats)]]
            await self._until(next_at)
            self.late.append(time.monotonic() - next_at)
            for symbol, symbol_frames in frames:
                self._broadcast(symbol, symbol_frames)
            if time.monotonic() - idle_since >= self.heartbeat_s:
                idle_since = time.monotonic()
                for subscriber in self._subscribers:
                    self._enqueue(subscriber, json.dumps({"type": "heartbeat", "ts": self.simulator.ts}))
            beat, next_at = beat + 1, next_at + step
            await asyncio.sleep(0)  # the senders write these frames before the next beat's are made

    def _tick(self, symbol: str, due: float) -> list[str]:
        return [self._number(m, due) for m in self.simulator.tick(symbol, self.time_scale / self.rate)]

    def _broadcast(self, symbol: str, frames: list[str]) -> None:
        for subscriber in self._subscribers:
            if symbol in subscriber.symbols:
                for frame in frames:
                    self._enqueue(subscriber, frame)
        self.sent += len(frames)

    async def _until(self, at: float) -> None:
        """Wait until monotonic time `at`. Loop timers wake on epoll's millisecond grain (up to 1 ms late, and the
        schedule is where every frame's latency starts): a timerfd wakes the loop itself (feeds/timer.py); where
        there is none, a thread sleeps on the nanosecond clock and hands the wake-up to the loop."""
        if self._timer is not None:
            await self._timer.until(at)
            return
        delay = at - time.monotonic()
        if delay > 0 and self._clock is not None:
            await asyncio.get_running_loop().run_in_executor(self._clock, time.sleep, delay)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """A plain HTTP history request is answered here; anything else goes on to the WebSocket handshake."""
        url = urllib.parse.urlsplit(request.path)
        if not url.path.startswith(HISTORY_PATH):
            return None
        symbol = urllib.parse.unquote(url.path[len(HISTORY_PATH):])
        if symbol not in self.history:
            return _json(404, json.dumps({"error": f"no such symbol: {symbol!r}"}))
        try:
            seconds, since = history_query(dict(urllib.parse.parse_qsl(url.query)))
        except ValueError as exc:
            return _json(400, json.dumps({"error": str(exc)}))
        self.history_requests += 1
        return _json(200, history_body(symbol, self.history[symbol], seconds, since))

    async def _handle(self, connection: ServerConnection) -> None:
        subscriber = _Subscriber(connection)
        self._subscribers.append(subscriber)
        sender = asyncio.create_task(self._send(subscriber))
        try:
            async for raw in connection:
                self._request(subscriber, raw)
        except ConnectionClosed:
            pass
        finally:
            self._subscribers.remove(subscriber)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _request(self, subscriber: _Subscriber, raw: str | bytes) -> None:
        try:
            request = json.loads(raw)
            op = request["op"]
        except (ValueError, KeyError, TypeError):
            return
        if op == "subscribe":
            for symbol in request.get("symbols", []):
                if symbol in self.seq:
                    subscriber.symbols.add(symbol)
                    self._enqueue(subscriber, self._snapshot(symbol))
        elif op == "snapshot" and request.get("symbol") in subscriber.symbols:
            self._enqueue(subscriber, self._snapshot(request["symbol"]))

    async def _send(self, subscriber: _Subscriber) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await subscriber.connection.send(await subscriber.queue.get())


def _json(status: int, body: str) -> Response:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    data = body.encode()
    return Response(status, reason, Headers([("Content-Type", "application/json"),
                                              ("Content-Length", str(len(data))), ("Connection", "close")]), data)


async def _serve_forever(args: argparse.Namespace) -> None:
    server = FeedServer(args.symbols.split(","), seed=args.seed, rate=args.rate, host=args.host, port=args.port,
                        edge=args.edge, burst=args.burst, history_seconds=args.history_seconds,
                        history_events=args.history_events)
    stop = asyncio.Event()
    # SIGTERM or SIGINT stops it cleanly, even when it was started with SIGINT ignored (a script's background job).
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        print(server.url, flush=True)
        await stop.wait()
    late = sorted(server.late)
    # For a benchmark reading it: the feed's own lateness (recent beats) separates it from delivery and runtimes.
    print(json.dumps({"sent": server.sent, "slips": server.slips,
                      "late_ms": {f"p{q}": round(1e3 * late[int(q / 100 * (len(late) - 1))], 3) if late else None
                                  for q in (50, 95, 99)}}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", default="SPY,QQQ,ES")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=50.0, help="ticks per second per symbol")
    parser.add_argument("--edge", type=float, default=0.0,
                        help="strength of the seeded order-flow edge (synthetic.SymbolMarket.edge); 0: none")
    parser.add_argument("--burst", action="store_true", help="every symbol due at once (default: in turn)")
    parser.add_argument("--history-seconds", type=float, default=HISTORY_SECONDS,
                        help="market seconds of events kept per symbol for GET /v1/history/{symbol} (0: none)")
    parser.add_argument("--history-events", type=int, default=HISTORY_EVENTS,
                        help="at most this many events kept per symbol for the history answer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(parser.parse_args()))


if __name__ == "__main__":
    main()
