"""The synthetic market served over WebSocket in the feed protocol (see protocol.py).

`python -m trading_runtime.feeds.server --symbols SPY,QQQ,ES --rate 50 --port 8765` serves until stopped.
Tests reach in to inject faults: sequence gaps, malformed frames and dropped connections."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from trading_runtime.feeds.synthetic import MarketSimulator

log = logging.getLogger(__name__)


@dataclass
class _Subscriber:
    connection: ServerConnection
    symbols: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=10000))


class FeedServer:
    """Ticks every symbol `rate` times a second (market time advances `time_scale` × wall time) and
    broadcasts the messages to subscribers, numbered per symbol and stamped with the wall time the tick was
    due (`sent`): a fixed schedule, so a client that falls behind shows as latency. The simulated market
    itself keeps up or skips: when its producer is over `max_lag_s` behind (a starved machine), the ticks
    it missed are not made up (counted in `slips`), so its own backlog does not pass for the clients'."""

    def __init__(self, symbols: list[str], seed: int = 0, rate: float = 50.0, host: str = "127.0.0.1",
                 port: int = 0, time_scale: float = 1.0, heartbeat_s: float = 1.0, max_lag_s: float = 0.05,
                 edge: float = 0.0) -> None:
        self.symbols = symbols
        self.simulator = MarketSimulator(symbols, seed=seed, edge=edge)
        self.rate = rate
        self.host, self.port = host, port
        self.time_scale = time_scale
        self.heartbeat_s = heartbeat_s
        self.seq = dict.fromkeys(symbols, 0)
        self.sent = 0
        self.max_lag_s = max_lag_s
        self.slips = 0
        self._subscribers: list[_Subscriber] = []
        self._server: Server | None = None
        self._producer: asyncio.Task[None] | None = None
        self._skip: set[str] = set()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> FeedServer:
        self._server = await serve(self._handle, self.host, self.port, max_size=2**20)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
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
        return json.dumps({**message, "seq": self.seq[symbol], "sent": due})

    def _snapshot(self, symbol: str) -> str:
        return json.dumps({**self.simulator.snapshot(symbol), "seq": self.seq[symbol]})

    def _enqueue(self, subscriber: _Subscriber, frame: str) -> None:
        try:
            subscriber.queue.put_nowait(frame)
        except asyncio.QueueFull:  # a slow client loses the stream; it will resync from the gap
            log.warning("subscriber queue full; dropping a frame")

    async def _produce(self) -> None:
        interval = 1.0 / self.rate
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        wall_offset = time.time() - next_at  # loop time → epoch seconds
        idle_since = loop.time()
        while True:
            missed = int((loop.time() - next_at) / interval)
            if loop.time() - next_at > self.max_lag_s and missed:  # behind: the market does not replay what it missed
                self.slips += missed
                next_at += missed * interval
                log.warning("feed producer %.3fs behind its schedule; skipped %d ticks", missed * interval, missed)
            due = next_at + wall_offset
            next_at += interval
            for symbol in self.symbols:
                frames = [self._number(m, due) for m in self.simulator.tick(symbol, interval * self.time_scale)]
                for subscriber in self._subscribers:
                    if symbol in subscriber.symbols:
                        for frame in frames:
                            self._enqueue(subscriber, frame)
                self.sent += len(frames)
            if loop.time() - idle_since >= self.heartbeat_s:
                idle_since = loop.time()
                for subscriber in self._subscribers:
                    self._enqueue(subscriber, json.dumps({"type": "heartbeat", "ts": self.simulator.ts}))
            await asyncio.sleep(max(0.0, next_at - loop.time()))

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


async def _serve_forever(args: argparse.Namespace) -> None:
    server = FeedServer(args.symbols.split(","), seed=args.seed, rate=args.rate, host=args.host, port=args.port,
                        edge=args.edge)
    stop = asyncio.Event()
    # SIGTERM or SIGINT stops it cleanly, even when it was started with SIGINT ignored (a script's background job).
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        print(server.url, flush=True)
        await stop.wait()
    print(json.dumps({"sent": server.sent, "slips": server.slips}), flush=True)  # for a benchmark reading it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", default="SPY,QQQ,ES")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=50.0, help="ticks per second per symbol")
    parser.add_argument("--edge", type=float, default=0.0,
                        help="strength of the seeded order-flow edge (synthetic.SymbolMarket.edge); 0: none")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(parser.parse_args()))


if __name__ == "__main__":
    main()
