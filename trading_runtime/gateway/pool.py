"""A pool of HTTP clients across several API endpoints and API keys.

Each call takes a token from one key's bucket (aiolimiter, sized to the provider's rate and burst, so the
pool never sends more than a key may — or, given `buckets`, one shared by every process using the key:
`shared_limit.py`), and goes to the endpoint with the fewest requests in flight among
those whose circuit breaker lets it through. A `429` parks the key for its `Retry-After` and the call
moves on to another key; a `5xx`, a timeout or a refused connection counts against the endpoint's breaker
and the call moves on to another endpoint. Retries are bounded by `max_attempts`, the call's deadline and
a retry budget shared by the whole pool. Only requests that cannot do harm twice are retried after they
may have reached the server (`idempotent=True`: reads, and orders carrying their client order id)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiolimiter import AsyncLimiter
from prometheus_client import CollectorRegistry

from trading_runtime.gateway.breaker import CircuitBreaker
from trading_runtime.gateway.budget import RetryBudget
from trading_runtime.gateway.metrics import PoolMetrics
from trading_runtime.gateway.settings import ApiKey, PoolSettings

log = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """A call that did not get an answer: every attempt failed, or no endpoint or key could take it. `sent`:
    whether an attempt may have reached the server (False: the call certainly did nothing there)."""

    def __init__(self, message: str, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    endpoint: str
    key: str


@dataclass(eq=False)  # endpoints are compared by identity
class _Endpoint:
    url: str
    label: str
    breaker: CircuitBreaker
    outstanding: int = 0


class Bucket(Protocol):
    """A key's rate limit: `AsyncLimiter` in this process, or `shared_limit.SharedBucket` across processes."""

    def has_capacity(self) -> bool: ...

    async def acquire(self) -> None: ...


def local_bucket(key: ApiKey) -> Bucket:
    """A leaky bucket of `burst` that drains at the key's rate: the provider's token bucket, mirrored."""
    return AsyncLimiter(key.burst, key.burst / key.rate_per_second)


@dataclass
class _Key:
    spec: ApiKey
    limiter: Bucket
    cooled_until: float = 0.0
    waiting: int = 0
    """Calls queued on this key's bucket."""


def retry_after_seconds(value: str | None, now_epoch: float, default: float = 1.0) -> float:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; `default` when absent or garbled."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now_epoch)
    return default


class ClientPool:
    def __init__(self, settings: PoolSettings, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 buckets: Callable[[ApiKey], Bucket] = local_bucket) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = PoolMetrics(registry or CollectorRegistry())
        self.endpoints = [_Endpoint(url.rstrip("/"), url.split("://", 1)[-1].rstrip("/"),
                                    CircuitBreaker(settings.failure_threshold, settings.open_seconds))
                          for url in settings.endpoints]
        self.keys = [_Key(k, buckets(k)) for k in settings.keys]
        self.budget = RetryBudget(settings.retry_ratio, settings.retry_min_per_second)
        self._session: aiohttp.ClientSession | None = None
        self._turn = 0
        for endpoint in self.endpoints:
            self.metrics.breaker.labels(endpoint.label).set(0)
            self.metrics.outstanding.labels(endpoint.label).set(0)

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # One connection pool for every endpoint; sized so keys and endpoints, not sockets, are the limit.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, limit_per_host=64))
        return self._session

    # Choosing ---------------------------------------------------------------------------------------

    def _endpoint(self, avoid: list[_Endpoint]) -> _Endpoint | None:
        """Least outstanding requests among endpoints whose breaker admits one; ties go round the ring, and
        endpoints that already failed this call are taken only when nothing else is open."""
        now = self.clock()
        open_ = [e for e in self.endpoints if e.breaker.available(now)]
        for endpoint in self.endpoints:
            self.metrics.breaker.labels(endpoint.label).set(endpoint.breaker.state.value)
        if not open_:
            return None
        others = [e for e in open_ if e not in avoid] or open_
        self._turn += 1
        n = len(self.endpoints)
        return min(others, key=lambda e: (e.outstanding, (self.endpoints.index(e) - self._turn) % n))

    async def _key(self, deadline: float) -> _Key:
        """A key with a token: the first one round the ring that has capacity now and no queue, else the one
        whose queue drains first (queued calls over its rate: a saturated pool keeps every key busy in
        proportion to its limit); while every key cools down after a 429, wait for the first to end. Raises
        ApiError when none can be had before the deadline."""
        while True:
            now = self.clock()
            usable = [k for k in self.keys if k.cooled_until <= now]
            if usable:
                start = self._turn % len(usable)
                ring = usable[start:] + usable[:start]
                key = next((k for k in ring if not k.waiting and k.limiter.has_capacity()), None) or \
                    min(ring, key=lambda k: (k.waiting + 1) / k.spec.rate_per_second)
                waited = self.clock()
                key.waiting += 1
                try:
                    await asyncio.wait_for(key.limiter.acquire(), max(0.0, deadline - waited))
                except TimeoutError:
                    raise ApiError("no API key had capacity before the deadline") from None
                finally:
                    key.waiting -= 1
                self.metrics.key_waits.labels(key.spec.name).inc(self.clock() - waited)
                if key.cooled_until <= self.clock():  # a 429 may have parked it while this call waited
                    return key
                continue
            resume = min(k.cooled_until for k in self.keys)
            if resume >= deadline:
                raise ApiError("every API key is cooling down after a 429 past the call's deadline")
            await asyncio.sleep(resume - now)

    # Calling ----------------------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, idempotent: bool, json_body: Any = None,
                      headers: dict[str, str] | None = None) -> Response:
        """Send one call through the pool; the answer of the first attempt that got one (any status but a
        429 or a 5xx). Raises ApiError when no attempt did."""
        s = self.settings
        deadline = self.clock() + s.deadline_seconds
        self.budget.on_request(self.clock())
        failed: list[_Endpoint] = []
        reason, sent = "none", False
        for attempt in range(s.max_attempts):
            if attempt:
                if not self.budget.try_spend(self.clock()):
                    self.metrics.budget_exhausted.inc()
                    raise ApiError(f"{method} {path}: {reason}; retry budget spent", sent)
                self.metrics.retries.labels(reason).inc()
            try:
                key = await self._key(deadline)
            except ApiError as exc:
                raise ApiError(str(exc), sent) from None
            endpoint = self._endpoint(failed)
            if endpoint is None:
                self.metrics.unavailable.inc()
                last = f" (last attempt: {reason})" if attempt else ""
                raise ApiError(f"{method} {path}: every endpoint's circuit breaker is open{last}", sent)
            outcome, response, retry_safe = await self._attempt(endpoint, key, method, path, json_body, headers,
                                                                deadline)
            if response is not None and outcome in ("ok", "client_error"):
                return response
            reason = outcome
            # Refused before doing anything (a 429, a connection never made) or not: a 5xx or a timeout may have.
            sent = sent or outcome not in ("throttled", "unreachable")
            if outcome != "throttled":
                failed.append(endpoint)
            if not (retry_safe or idempotent) or self.clock() >= deadline:
                break
        raise ApiError(f"{method} {path}: {reason} after {attempt + 1} attempt(s)", sent)

    async def _attempt(self, endpoint: _Endpoint, key: _Key, method: str, path: str, json_body: Any,
                       headers: dict[str, str] | None, deadline: float) -> tuple[str, Response | None, bool]:
        """One attempt: (outcome, response, whether a retry is safe even for a non-idempotent call)."""
        m, label, breaker = self.metrics, endpoint.label, endpoint.breaker
        timeout = aiohttp.ClientTimeout(total=max(0.001, min(self.settings.timeout_seconds, deadline - self.clock())))
        sent_headers = {**(headers or {}), "Authorization": f"Bearer {key.spec.secret.get_secret_value()}"}
        breaker.on_send()
        endpoint.outstanding += 1
        m.outstanding.labels(label).inc()
        started = self.clock()
        try:
            async with self.session.request(method, endpoint.url + path, json=json_body, headers=sent_headers,
                                            timeout=timeout) as reply:
                body = await reply.json(content_type=None) if reply.content_length != 0 else None
                status, retry_after = reply.status, reply.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as exc:  # never reached the server: safe to send again
            return self._failed(endpoint, "unreachable", exc, retry_safe=True)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return self._failed(endpoint, "timeout" if isinstance(exc, TimeoutError) else "connection_error", exc,
                                retry_safe=False)
        finally:
            endpoint.outstanding -= 1
            m.outstanding.labels(label).dec()
            m.latency.labels(label).observe(self.clock() - started)
            m.breaker.labels(label).set(breaker.state.value)
        response = Response(status, body, label, key.spec.name)
        if status == 429:  # the endpoint is fine; the key is over its limit and did nothing
            breaker.on_success()
            pause = min(self.settings.max_retry_after_seconds, retry_after_seconds(retry_after, time.time()))
            key.cooled_until = max(key.cooled_until, self.clock() + pause)
            m.throttled.labels(key.spec.name).inc()
            m.requests.labels(label, "throttled").inc()
            log.warning("API key %s throttled by %s; resting it %.2fs", key.spec.name, label, pause)
            return "throttled", response, True
        if status >= 500:
            breaker.on_failure(self.clock())
            m.breaker.labels(label).set(breaker.state.value)
            m.requests.labels(label, "server_error").inc()
            return "server_error", response, status == 503
        breaker.on_success()
        m.breaker.labels(label).set(breaker.state.value)
        outcome = "ok" if status < 400 else "client_error"
        m.requests.labels(label, outcome).inc()
        return outcome, response, False

    def _failed(self, endpoint: _Endpoint, outcome: str, exc: BaseException,
                retry_safe: bool) -> tuple[str, None, bool]:
        endpoint.breaker.on_failure(self.clock())
        self.metrics.requests.labels(endpoint.label, outcome).inc()
        log.warning("API endpoint %s: %s (%s)", endpoint.label, outcome, exc)
        return outcome, None, retry_safe
