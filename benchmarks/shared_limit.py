"""What a shared rate limit costs a call: one key's token taken from the Redis-held bucket
(trading_runtime/gateway/shared_limit.py, one EVALSHA of the GCRA script) against the in-process aiolimiter
bucket, both uncontended (a rate far above what is asked, so nobody waits for a token).

Start and end of each sample: just before `acquire()` is awaited and just after it returns, in this process.
A throwaway `redis-server` on a free port on this machine (tests/servers.py's); excludes network distance to a
Redis in a cluster (add its round trip) and any wait for tokens. The 1-minute load average is printed: this
2-core machine is shared.

    PYTHONPATH=. python benchmarks/shared_limit.py [--calls 5000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import redis.asyncio as aioredis
from pydantic import SecretStr

from tests.servers import ThrowawayRedis
from trading_runtime.gateway.pool import Bucket, local_bucket
from trading_runtime.gateway.settings import ApiKey
from trading_runtime.gateway.shared_limit import SharedBucket


async def timings(bucket: Bucket, calls: int) -> tuple[list[float], float]:
    """Per-call seconds, and the process CPU seconds the whole run used."""
    samples = []
    cpu = time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        await bucket.acquire()
        samples.append(time.perf_counter() - started)
    return samples, time.process_time() - cpu


def summary(samples: list[float], cpu: float) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
        "cpu_us_per_call": round(cpu / len(samples) * 1e6, 1),
    }


async def main(calls: int) -> dict[str, object]:
    key = ApiKey(name="bench", secret=SecretStr("bench-secret"), rate_per_second=1e6, burst=1000)
    redis_server = ThrowawayRedis().start()
    try:
        redis = aioredis.from_url(redis_server.url)
        shared = SharedBucket(redis, key)
        await shared.acquire()  # the script loaded once (EVALSHA from then on)
        load_before = os.getloadavg()[0]
        local = await timings(local_bucket(key), calls)
        remote = await timings(shared, calls)
        load_after = os.getloadavg()[0]
        await redis.aclose()
    finally:
        redis_server.stop()
    return {
        "calls": calls,
        "local": summary(*local),
        "shared_redis": summary(*remote),
        "load_1m_before": load_before,
        "load_1m_after": load_after,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args.calls))
    if args.json:
        print(json.dumps(result))
    else:
        for name in ("local", "shared_redis"):
            print(f"{name}: {result[name]}")
        print(f"load average (1 min): {result['load_1m_before']:.2f} → {result['load_1m_after']:.2f}")
