"""Local market-data/order API servers (real aiohttp on free ports) that throttle, slow down and fail,
for the client pool's tests. Several servers may share one `Provider`, as endpoints of one vendor share
its per-key limits and its order book."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import web

from trading_runtime.feeds.synthetic import MarketSimulator


@dataclass
class Provider:
    """Per-key token buckets (rate/s, burst) as a vendor enforces them, and the orders it has taken."""

    limits: dict[str, tuple[float, int]]
    jitter_s: float = 0.1
    """Arrival jitter forgiven (a token plus this many seconds of refill): the network and a loaded machine
    bunch requests a little that left the client correctly spaced, and real providers forgive it too."""
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    throttled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    orders: dict[str, dict[str, object]] = field(default_factory=dict)
    throttle_next: dict[str, float] = field(default_factory=dict)
    """Key → Retry-After seconds to answer its next request with (a 429 regardless of its bucket)."""
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def admit(self, key: str) -> float | None:
        """None when the key may proceed, else the Retry-After to answer."""
        now = time.monotonic()
        self.arrivals[key].append(now)
        if key in self.throttle_next:
            self.throttled[key] += 1
            return self.throttle_next.pop(key)
        rate, burst = self.limits[key]
        capacity = burst + 1 + rate * self.jitter_s
        tokens, last = self._tokens.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._tokens[key] = (tokens, now)
            self.throttled[key] += 1
            return 1.0
        self._tokens[key] = (tokens - 1.0, now)
        return None


class ApiServer:
    """One endpoint. `mode`: "ok", "fail" (500 to everything), "slow" (answers after `delay`), or
    "fail-after-commit" (takes the order, then answers 500 the first time: the client cannot tell)."""

    def __init__(self, provider: Provider, mode: str = "ok", delay: float = 0.0) -> None:
        self.provider, self.mode, self.delay = provider, mode, delay
        self.hits = 0
        self.refuse_orders = False
        """Answer every order 422 (a broker refusing it)."""
        self.simulator = MarketSimulator(["SPY", "QQQ"], seed=1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> ApiServer:
        app = web.Application()
        app.router.add_get("/v1/snapshots/{symbol}", self._snapshot)
        app.router.add_post("/v1/orders", self._order)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _gate(self, request: web.Request) -> web.Response | None:
        self.hits += 1
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key not in self.provider.limits:
            return web.json_response({"error": "unknown key"}, status=401)
        if self.mode == "fail":
            return web.json_response({"error": "boom"}, status=500)
        retry_after = self.provider.admit(key)
        if retry_after is not None:
            return web.json_response({"error": "rate limited"}, status=429,
                                     headers={"Retry-After": f"{retry_after:g}"})
        if self.delay:
            await asyncio.sleep(self.delay)
        return None

    async def _snapshot(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        return web.json_response({**self.simulator.snapshot(request.match_info["symbol"]), "seq": 0})

    async def _order(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        body = await request.json()
        if self.refuse_orders:
            return web.json_response({"error": "instrument not tradable"}, status=422)
        order_id = request.headers["Idempotency-Key"]
        first = order_id not in self.provider.orders
        self.provider.orders.setdefault(order_id, body)
        if self.mode == "fail-after-commit" and first:
            return web.json_response({"error": "lost the answer"}, status=500)
        return web.json_response({"clientOrderId": order_id, "status": "filled", "price": 1.0})
