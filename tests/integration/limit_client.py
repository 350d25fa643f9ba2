"""One process spending an API key through the client pool as fast as its rate limit lets it (the shared-limit
test runs several): `python -m tests.integration.limit_client URL SECRET RATE BURST SECONDS [REDIS_URL]`.
With REDIS_URL the key's limit is the shared one (gateway/shared_limit.py), without it this process's own.
Prints one JSON line: calls answered and throttled."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import redis.asyncio as aioredis
from pydantic import SecretStr

from trading_runtime.gateway.pool import ApiError, ClientPool, local_bucket
from trading_runtime.gateway.settings import ApiKey, PoolSettings
from trading_runtime.gateway.shared_limit import SharedBucket


async def spend(url: str, secret: str, rate: float, burst: int, seconds: float, redis_url: str | None) -> dict:
    key = ApiKey(name="shared", secret=SecretStr(secret), rate_per_second=rate, burst=burst)
    settings = PoolSettings(endpoints=[url], keys=[key], deadline_seconds=5.0, max_attempts=1)
    redis = aioredis.from_url(redis_url) if redis_url else None
    buckets = (lambda k: SharedBucket(redis, k)) if redis is not None else local_bucket
    counts = {"ok": 0, "throttled": 0, "failed": 0}
    end = time.monotonic() + seconds

    async def worker(pool: ClientPool) -> None:
        while time.monotonic() < end:
            try:
                response = await pool.request("GET", "/v1/snapshots/SPY", idempotent=True)
            except ApiError:
                counts["failed"] += 1
                continue
            counts["ok" if response.status == 200 else "throttled"] += 1

    async with ClientPool(settings, buckets=buckets) as pool:
        await asyncio.gather(*(worker(pool) for _ in range(4)))
    if redis is not None:
        await redis.aclose()
    return counts


if __name__ == "__main__":
    url, secret, rate, burst, seconds, *rest = sys.argv[1:]
    print(
        json.dumps(asyncio.run(spend(url, secret, float(rate), int(burst), float(seconds), rest[0] if rest else None))),
        flush=True,
    )
