"""An API key's rate limit held across every process that uses it: GCRA (the generic cell rate algorithm, a
token bucket kept as one timestamp) in one Lua script on Redis, so each request's check-and-take is atomic
however many runtimes, standbys and surge pods share the key.

The bucket is named by a digest of the key's value (never the value itself): two symbols that name the same
Secret differently still share one limit. Time is Redis's own (`TIME` inside the script), so the processes'
clocks do not matter. `ratePerSecond` and `burst` are then the provider's limit of the key, not a share.

When Redis cannot be reached the key gives no tokens (fail closed): a call waits for one until its deadline and
then fails before it was sent ("unsent" — an order is a rejection, never an unknown outcome). Falling back to a
local bucket would let every process spend the whole limit at once, which is exactly what this prevents."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from trading_runtime.gateway.settings import ApiKey

log = logging.getLogger(__name__)

# KEYS[1]: the key's bucket; ARGV[1]: microseconds per request (1/rate); ARGV[2]: tolerance, (burst − 1) × that.
# Returns 0 when a token was taken, else the microseconds until one can be.
GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait > 0 then return wait end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return 0
"""
STORE_RETRY_SECONDS = 0.2
"""Between attempts to reach Redis while it is away (the call's deadline bounds the wait)."""


def bucket_name(key: ApiKey) -> str:
    digest = hashlib.sha256(key.secret.get_secret_value().encode()).hexdigest()[:20]
    return f"tradeops:ratelimit:{digest}"


class SharedBucket:
    """One key's bucket on Redis, with the two methods of aiolimiter's `AsyncLimiter` the pool uses."""

    def __init__(self, redis: Any, key: ApiKey, on_store_error: Callable[[], None] = lambda: None) -> None:
        self.name = bucket_name(key)
        interval = 1_000_000 / key.rate_per_second
        self.args = [round(interval), round((key.burst - 1) * interval)]
        self.script = redis.register_script(GCRA)
        self.on_store_error = on_store_error
        self._store_down = False

    def has_capacity(self) -> bool:
        """Unknown without asking Redis: every bucket is worth a try (`acquire` waits when it was not)."""
        return True

    async def acquire(self) -> None:
        """Take a token, waiting as long as the shared bucket (or an unreachable Redis) makes it."""
        while True:
            try:
                wait_us = int(await self.script(keys=[self.name], args=self.args))
            except (RedisError, OSError) as exc:
                self.on_store_error()
                if not self._store_down:
                    log.error("rate-limit store unreachable (%s): no API call until it answers", exc)
                    self._store_down = True
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            if self._store_down:
                log.warning("rate-limit store reachable again")
                self._store_down = False
            if wait_us <= 0:
                return
            await asyncio.sleep(wait_us / 1_000_000)
