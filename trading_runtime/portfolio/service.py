"""The portfolio risk consumer: reads the positions and fills streams through the `portfolio-risk` consumer
group, applies each entry to the book idempotently and acknowledges it only then (at-least-once), reclaims
what a dead consumer left pending (XAUTOCLAIM after `claim_idle_s`), and every `interval_s` publishes the
portfolio's VaR/CVaR and exposure and each symbol's correlation cap.

Backpressure is the consumer's pull: it asks for at most `batch` entries, and asks again only once those are
applied and acknowledged; the runtimes' streams are capped (MAXLEN), and how far the group is behind is the
`tradeops_portfolio_stream_lag` gauge (entries trimmed unread would be lost: alert on lag long before)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ValidationError
from redis.exceptions import ResponseError

from trading_runtime.metrics import PREFIX
from trading_runtime.portfolio.book import PortfolioBook
from trading_runtime.portfolio.events import (
    CAPS_KEY,
    FILLS_STREAM,
    GROUP,
    POSITIONS_STREAM,
    RISK_KEY,
    FillEvent,
    PortfolioView,
    PositionEvent,
    SymbolCap,
)
from trading_runtime.risk.limits import headroom
from trading_runtime.risk.portfolio import portfolio_risk

log = logging.getLogger(__name__)

STREAMS: dict[str, type[BaseModel]] = {POSITIONS_STREAM: PositionEvent, FILLS_STREAM: FillEvent}
DEAD_LETTER_STREAM = "tradeops:portfolio:dead-letter"


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.events = Counter(f"{PREFIX}_portfolio_events", "Stream entries handled, by outcome",
                              ["stream", "outcome"], registry=r)
        self.reclaimed = Counter(f"{PREFIX}_portfolio_reclaimed", "Entries claimed from consumers that went quiet",
                                 ["stream"], registry=r)
        self.lag = Gauge(f"{PREFIX}_portfolio_stream_lag", "Entries not yet delivered to the group", ["stream"],
                         registry=r)
        self.pending = Gauge(f"{PREFIX}_portfolio_pending", "Entries delivered but not acknowledged", ["stream"],
                             registry=r)
        self.var = Gauge(f"{PREFIX}_portfolio_var", "Portfolio value at risk (99 %, one sample horizon)",
                         ["method", "measure"], registry=r)
        self.exposure = Gauge(f"{PREFIX}_portfolio_exposure", "Portfolio exposure", ["kind"], registry=r)
        self.cap = Gauge(f"{PREFIX}_portfolio_cap", "Notional each symbol may hold (correlation limits)",
                         ["symbol"], registry=r)
        self.errors = Counter(f"{PREFIX}_portfolio_errors", "Redis errors (retried with backoff)", registry=r)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class PortfolioService:
    def __init__(self, redis_url: str, consumer: str, registry: CollectorRegistry | None = None,
                 interval_s: float = 1.0, batch: int = 100,
                 claim_idle_s: float = 10.0, block_ms: int = 500,
                 on_applied: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        self.redis: aioredis.Redis = aioredis.from_url(redis_url, decode_responses=True, socket_timeout=5,
                                                        socket_connect_timeout=2)
        self.book = PortfolioBook(self.redis)
        self.consumer = consumer
        self.metrics = ServiceMetrics(registry or CollectorRegistry())
        self.interval_s, self.batch, self.claim_idle_s, self.block_ms = interval_s, batch, claim_idle_s, block_ms
        self.on_applied = on_applied
        """Test hook: awaited after an entry is applied and before it is acknowledged."""
        self._last_compute = 0.0
        self._last_claim = 0.0

    async def close(self) -> None:
        await self.redis.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; Redis outages are retried with exponential backoff."""
        delay = 0.2
        while not stop.is_set():
            try:
                await self._ensure_groups()
                while not stop.is_set():
                    await self.step()
                delay = 0.2
            except (OSError, aioredis.ConnectionError, aioredis.TimeoutError) as exc:
                self.metrics.errors.inc()
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10.0)

    async def _ensure_groups(self) -> None:
        for stream in STREAMS:
            try:
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def step(self) -> int:
        """One round: reclaim (when due), read a batch, apply, acknowledge, publish (when due). Returns the
        number of entries handled."""
        handled = 0
        now = time.monotonic()
        if now - self._last_claim >= self.claim_idle_s / 2:
            self._last_claim = now
            handled += await self._reclaim()
        reply: Any = await self.redis.xreadgroup(GROUP, self.consumer, dict.fromkeys(STREAMS, ">"),
                                                 count=self.batch, block=self.block_ms)
        for stream, entries in reply or []:
            handled += await self._handle(str(stream), entries)
        if time.monotonic() - self._last_compute >= self.interval_s:
            self._last_compute = time.monotonic()
            await self.publish()
            await self._observe_lag()
        return handled

    async def _reclaim(self) -> int:
        """Take over entries another consumer was given and has not acknowledged for `claim_idle_s`."""
        handled = 0
        for stream in STREAMS:
            start = "0-0"
            while True:
                reply: Any = await self.redis.xautoclaim(stream, GROUP, self.consumer,
                                                         int(self.claim_idle_s * 1000), start, count=self.batch)
                start, entries = reply[0], reply[1]
                if entries:
                    self.metrics.reclaimed.labels(stream).inc(len(entries))
                    log.info("reclaimed %d pending entries of %s", len(entries), stream)
                    handled += await self._handle(stream, entries)
                if start in ("0-0", b"0-0"):
                    break
        return handled

    async def _handle(self, stream: str, entries: list[Any]) -> int:
        model = STREAMS[stream]
        done = []
        for entry_id, fields in entries:
            if fields is None:  # trimmed away while pending: nothing left to apply
                done.append(entry_id)
                continue
            try:
                event = model.model_validate(json.loads(fields["data"]))
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                self.metrics.events.labels(stream, "malformed").inc()
                log.error("malformed entry %s on %s: %s (kept in %s)", entry_id, stream, exc, DEAD_LETTER_STREAM)
                await self.redis.xadd(DEAD_LETTER_STREAM, {"stream": stream, "id": entry_id,
                                                           "data": json.dumps(fields)}, maxlen=10_000)
                done.append(entry_id)
                continue
            applied = await (self.book.apply_position(event) if isinstance(event, PositionEvent)
                             else self.book.apply_fill(event) if isinstance(event, FillEvent) else _false())
            self.metrics.events.labels(stream, "applied" if applied else "duplicate").inc()
            if self.on_applied is not None:
                await self.on_applied(stream, entry_id)
            done.append(entry_id)
        if done:
            await self.redis.xack(stream, GROUP, *done)
        return len(done)

    async def publish(self) -> PortfolioView:
        """The portfolio view and every symbol's cap, from the book as it stands."""
        exposures = await self.book.exposures()
        risk = portfolio_risk(exposures, await self.book.returns(sorted(exposures)))
        now = time.time()
        view = PortfolioView(computed_at=now, gross=risk.exposure.gross, net=risk.exposure.net,
                             delta=risk.exposure.delta, gamma=risk.exposure.gamma, vega=risk.exposure.vega,
                             historical_var=_finite(risk.historical_var), historical_cvar=_finite(risk.historical_cvar),
                             parametric_var=_finite(risk.parametric_var), parametric_cvar=_finite(risk.parametric_cvar),
                             symbols=len(exposures))
        notionals = {s: p.get("notional", 0.0) for s, p in exposures.items()}
        caps = {}
        for symbol, own in notionals.items():
            limits = exposures[symbol]  # each symbol's cap under its own declared limits
            room = headroom(symbol, notionals, risk.correlations, limits["correlationThreshold"],
                            limits["correlatedExposureCap"])
            caps[symbol] = SymbolCap(cap=abs(own) + room, computed_at=now)
            self.metrics.cap.labels(symbol).set(caps[symbol].cap)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(RISK_KEY, view.model_dump_json(by_alias=True))
            if caps:
                pipe.hset(CAPS_KEY, mapping={s: c.model_dump_json(by_alias=True) for s, c in caps.items()})
            await pipe.execute()
        m = self.metrics
        for kind in ("gross", "net", "delta", "gamma", "vega"):
            m.exposure.labels(kind).set(getattr(view, kind))
        for method, var, cvar in (("historical", risk.historical_var, risk.historical_cvar),
                                  ("parametric", risk.parametric_var, risk.parametric_cvar)):
            m.var.labels(method, "var").set(var)  # NaN until there is enough history: no data, not 0
            m.var.labels(method, "cvar").set(cvar)
        return view

    async def _observe_lag(self) -> None:
        for stream in STREAMS:
            groups: Any = await self.redis.xinfo_groups(stream)
            for group in groups:
                if group.get("name") == GROUP:
                    lag = group.get("lag")
                    self.metrics.lag.labels(stream).set(math.nan if lag is None else float(lag))
                    self.metrics.pending.labels(stream).set(float(group.get("pending", 0)))


async def _false() -> bool:
    return False
