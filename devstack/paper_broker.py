"""A local paper broker with an HTTP API (aiohttp): the devstack's stand-in for a broker's order and market-data
API, which runtimes whose config names a `broker` reach through their client pool.

It follows the synthetic feed over its WebSocket (the runtime's own feed client) and keeps every symbol's book, so
`GET /v1/snapshots/{symbol}` answers a snapshot in the feed protocol whose `seq` continues the feed's, and
`POST /v1/orders` fills a market order at once at the touch (buys at the ask, sells at the bid) with a per-unit
fee. The client order id is the idempotency key: an order sent again is answered with its first fill, never
filled twice. `GET /v1/positions` lists the account's open positions (instrument, signed quantity, average entry
price), as a real broker's positions API does, and `GET /v1/fills?since=&symbol=` its executions (client order
id, instrument, signed quantity, price, fee, `filledAt`): what a runtime's new leader reconciles its book
against. An order may carry `expireAt` (RFC 3339, good-till-time): one received later is answered
`{"status": "expired"}` and never filled, and its id stays free (a later order under it is judged afresh:
every request of a fenced-out leader carries an expiry no later than its deadline). `--order-delay` holds every
order that long before it is judged, as a slow network would (a test's request on the wire). Each
API key has the provider's token bucket: beyond it, `429` with `Retry-After`. One process listens on several
ports: endpoints of one broker, sharing its book, its orders and its keys' limits.

`python -m devstack.paper_broker --feed-url ws://127.0.0.1:8765 --endpoints 2 --key alpha:SECRET:20:4`
prints each endpoint's URL on a line of its own once it listens."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from trading_runtime.feeds.client import FeedClient, Message
from trading_runtime.feeds.protocol import Quote, Snapshot, Trade


@dataclass
class KeyLimit:
    """A provider's token bucket for one API key."""

    name: str
    rate: float
    burst: int
    slack: float = 0.0
    """Tokens forgiven beyond the burst: arrivals bunch a little on the way that left the client well spaced."""
    tokens: float = math.nan
    last: float = 0.0

    def take(self, now: float) -> float | None:
        """None when a request may proceed, else the seconds until it could (the Retry-After)."""
        capacity = self.burst + self.slack
        if math.isnan(self.tokens):
            self.tokens, self.last = capacity, now
        self.tokens = min(capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


@dataclass
class Book:
    """The last state of every symbol the feed sent: what snapshots are made of and orders fill against."""

    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def on_message(self, message: Message) -> None:
        if isinstance(message, Snapshot):
            self.snapshots[message.symbol] = message.model_dump(by_alias=True, mode="json")
            return
        book = self.snapshots.get(getattr(message, "symbol", ""))
        if book is None or not isinstance(message, Quote | Trade):
            return
        book["seq"], book["ts"] = message.seq, message.ts
        if isinstance(message, Quote):
            fields = {"bid": message.bid, "ask": message.ask, "bidSize": message.bid_size,
                      "askSize": message.ask_size}
            if message.instrument == message.symbol:
                book["underlying"].update(fields)
            else:
                option = next((o for o in book["options"] if o["instrument"] == message.instrument), None)
                if option is not None:
                    option.update(fields)

    def touch(self, instrument: str, quantity: float) -> float | None:
        """The price a market order for `quantity` of `instrument` fills at; None without a quote."""
        book = self.snapshots.get(instrument.split("-", 1)[0])
        if book is None:
            return None
        quote = book["underlying"] if book["underlying"]["instrument"] == instrument else \
            next((o for o in book["options"] if o["instrument"] == instrument), None)
        if quote is None:
            return None
        return float(quote["ask"] if quantity > 0 else quote["bid"])


@dataclass
class Holding:
    quantity: float = 0.0
    average_price: float = 0.0

    def add(self, quantity: float, price: float) -> None:
        """A fill: the average entry price moves when the position grows, stays when it shrinks, and restarts
        at the fill's price when the position changes side."""
        total = self.quantity + quantity
        if total == 0:
            self.average_price = 0.0
        elif self.quantity == 0 or (self.quantity > 0) != (total > 0):
            self.average_price = price
        elif abs(total) > abs(self.quantity):
            self.average_price = (self.average_price * self.quantity + price * quantity) / total
        self.quantity = total


@dataclass
class PaperBroker:
    keys: dict[str, KeyLimit]
    """Secret → its key's limit."""
    book: Book = field(default_factory=Book)
    fee_per_unit: float = 0.005
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Client order id → the answer it got (its fill)."""
    requests: dict[str, int] = field(default_factory=dict)
    """Requests per key name (throttled ones too)."""
    throttled: dict[str, int] = field(default_factory=dict)
    """429 answers per key name."""
    served: dict[str, int] = field(default_factory=dict)
    """Answered calls per kind: "snapshot", "order" (a first fill), "order-again" (an order sent again), "expired",
    "positions"."""
    held: dict[str, Holding] = field(default_factory=dict)
    """The account's open positions by instrument."""
    fills: list[dict[str, Any]] = field(default_factory=list)
    """Every execution, in the order it happened."""
    expired: list[dict[str, Any]] = field(default_factory=list)
    """Orders received after their expiry: id, `expireAt`, `receivedAt` (never filled)."""
    order_delay: float = 0.0
    """Seconds an order is held before it is judged (the wire's delay; a test sets it)."""
    delayed: int = 0
    """Orders being held by `order_delay` right now."""
    clock: Callable[[], float] = time.time
    """The broker's wall clock (epoch seconds)."""
    fill_reads: list[float] = field(default_factory=list)
    """When each fills listing was asked for (the broker's clock)."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/snapshots/{symbol}", self._snapshot)
        app.router.add_post("/v1/orders", self._order)
        app.router.add_get("/v1/orders", self._orders)
        app.router.add_get("/v1/positions", self._positions)
        app.router.add_get("/v1/fills", self._fills)
        return app

    def _admit(self, request: web.Request) -> web.Response | None:
        key = self.keys.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if key is None:
            return web.json_response({"error": "unknown API key"}, status=401)
        self.requests[key.name] = self.requests.get(key.name, 0) + 1
        wait = key.take(time.monotonic())
        if wait is not None:
            self.throttled[key.name] = self.throttled.get(key.name, 0) + 1
            return web.json_response({"error": f"rate limit of key {key.name}"}, status=429,
                                     headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return None

    async def _snapshot(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        book = self.book.snapshots.get(request.match_info["symbol"])
        if book is None:
            return web.json_response({"error": "no such symbol"}, status=404)
        self._count("snapshot")
        return web.json_response(book)

    async def _order(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
            order_id, instrument, quantity = str(body["clientOrderId"]), str(body["instrument"]), \
                float(body["quantity"])
            expire_at = _instant(body["expireAt"]) if body.get("expireAt") is not None else None
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "an order needs clientOrderId, instrument and quantity (and "
                                               "expireAt, when given, an RFC 3339 time with its offset)"},
                                     status=400)
        if self.order_delay > 0:  # the wire's delay: the order reaches the broker only now
            self.delayed += 1
            try:
                await asyncio.sleep(self.order_delay)
            finally:
                self.delayed -= 1
        if order_id in self.orders:  # the same order again: its first answer
            self._count("order-again")
            return web.json_response(self.orders[order_id])
        received = self.clock()
        if expire_at is not None and received > expire_at:  # good-till-time: too late, never filled
            self.expired.append({"clientOrderId": order_id, "expireAt": expire_at, "receivedAt": received})
            self._count("expired")
            return web.json_response({"clientOrderId": order_id, "status": "expired",
                                      "reason": f"expired: received {received - expire_at:.3f}s after its "
                                                f"expireAt {body['expireAt']}"})
        price = self.book.touch(instrument, quantity)
        answer: dict[str, Any]
        if price is None or quantity == 0:
            answer = {"clientOrderId": order_id, "status": "rejected", "reason": f"no quote for {instrument}"}
        else:
            answer = {"clientOrderId": order_id, "status": "filled", "price": price,
                      "fee": abs(quantity) * self.fee_per_unit, "instrument": instrument, "quantity": quantity,
                      "filledAt": _stamp(received)}
            self.held.setdefault(instrument, Holding()).add(quantity, price)
            self.fills.append({**answer, "ts": received})
        self.orders[order_id] = answer
        self._count("order")
        return web.json_response(answer, status=201)

    def _count(self, kind: str) -> None:
        self.served[kind] = self.served.get(kind, 0) + 1

    async def _orders(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        return refused or web.json_response(list(self.orders.values()))

    async def _positions(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        self._count("positions")
        return web.json_response([{"instrument": i, "quantity": h.quantity, "averagePrice": h.average_price}
                                  for i, h in sorted(self.held.items()) if h.quantity])

    async def _fills(self, request: web.Request) -> web.Response:
        """Executions since `since` (RFC 3339, required), of `symbol` (the underlying and its options) when
        given, oldest first."""
        refused = self._admit(request)
        if refused is not None:
            return refused
        try:
            since = _instant(request.query["since"])
        except (KeyError, ValueError):
            return web.json_response({"error": "fills need since=<RFC 3339 time with its offset>"}, status=400)
        symbol = request.query.get("symbol")
        self._count("fills")
        self.fill_reads.append(self.clock())
        listed = [{k: v for k, v in f.items() if k != "ts"} for f in self.fills if f["ts"] >= since and
                  (symbol is None or f["instrument"] == symbol or f["instrument"].startswith(f"{symbol}-"))]
        return web.json_response(listed)


def _instant(text: str) -> float:
    """An RFC 3339 time with its offset (`Z` or `+00:00`) as epoch seconds; ValueError otherwise."""
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.timestamp()


def _stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_key(text: str) -> tuple[str, KeyLimit]:
    """`name:secret:rate[:burst]` → (secret, limit)."""
    name, secret, rate, *burst = text.split(":")
    return secret, KeyLimit(name, float(rate), int(burst[0]) if burst else 1)


async def serve(args: argparse.Namespace) -> None:
    broker = PaperBroker(dict(parse_key(k) for k in args.key), fee_per_unit=args.fee_per_unit,
                         order_delay=args.order_delay)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    feed = FeedClient(args.feed_url, args.symbols.split(","), broker.book.on_message)
    following = asyncio.create_task(feed.run(stop))
    runner = web.AppRunner(broker.app(), access_log=None)
    await runner.setup()
    for port in args.port or [0] * args.endpoints:
        await web.TCPSite(runner, args.host, port).start()
    for address in runner.addresses:
        print(f"http://{args.host}:{address[1]}", flush=True)
    await stop.wait()
    with contextlib.suppress(Exception):
        await following
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feed-url", required=True)
    parser.add_argument("--symbols", default="SPY,QQQ,ES")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, action="append", help="a port to listen on (repeat: one per endpoint)")
    parser.add_argument("--endpoints", type=int, default=2, help="endpoints on free ports (without --port)")
    parser.add_argument("--key", action="append", required=True, metavar="NAME:SECRET:RATE[:BURST]",
                        help="an API key and its rate limit (requests/s, bucket size); development keys only")
    parser.add_argument("--fee-per-unit", type=float, default=0.005)
    parser.add_argument("--order-delay", type=float, default=0.0,
                        help="seconds every order is held before it is judged (a slow network, for tests)")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
