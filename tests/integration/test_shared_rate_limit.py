"""A key's rate limit across processes (trading_runtime/gateway/shared_limit.py): three real processes spend one
API key as fast as they may against a local HTTP server that enforces the provider's token bucket and records
every arrival. With the shared limit (GCRA on a real Redis) no one-second window holds more than the rate plus
the burst (and one for arrival jitter, as tests/integration/test_api_pool.py allows) and the provider refuses
nothing, while the key is still used at about its rate; with each process's
own bucket (the old way), the same three processes go over it. A Redis that is not there stops the calls (fail
closed) instead of letting every process spend the whole limit."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import redis.asyncio as aioredis
from pydantic import SecretStr

from tests.integration.api_servers import ApiServer, Provider
from tests.servers import ThrowawayRedis, free_port
from trading_runtime.gateway.settings import ApiKey
from trading_runtime.gateway.shared_limit import SharedBucket

SECRET, RATE, BURST, SECONDS, PROCESSES = "secret-shared", 20.0, 4, 4.0, 3


async def run_clients(url: str, redis_url: str | None, count: int = PROCESSES) -> list[dict[str, int]]:
    args = [url, SECRET, str(RATE), str(BURST), str(SECONDS), *([redis_url] if redis_url else [])]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.limit_client", *args, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(count)
    ]
    outputs = [await p.communicate() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


def busiest_second(arrivals: list[float]) -> int:
    """The most arrivals in any one-second window."""
    return max((sum(1 for u in arrivals[i:] if u - t < 1.0) for i, t in enumerate(arrivals)), default=0)


async def test_several_processes_sharing_a_key_stay_under_its_limit_together():
    redis = ThrowawayRedis().start()
    try:
        provider = Provider({SECRET: (RATE, BURST)})
        server = await ApiServer(provider).start()
        try:
            shared = await run_clients(server.url, redis.url)
            arrivals = sorted(provider.arrivals[SECRET])
            shared_peak, shared_throttled = busiest_second(arrivals), provider.throttled[SECRET]
            # Over the span the calls arrived in (the processes start a little apart).
            used = sum(c["ok"] for c in shared) / (arrivals[-1] - arrivals[0])

            alone = Provider({SECRET: (RATE, BURST)})
            server.provider = alone
            await run_clients(server.url, None)
            alone_peak, alone_throttled = busiest_second(sorted(alone.arrivals[SECRET])), alone.throttled[SECRET]
        finally:
            await server.stop()
    finally:
        redis.stop()
    print(
        json.dumps(
            {
                "shared": {"peak_per_s": shared_peak, "throttled": shared_throttled, "used_per_s": used},
                "per_process": {"peak_per_s": alone_peak, "throttled": alone_throttled},
            }
        )
    )
    assert shared_throttled == 0, shared
    assert shared_peak <= RATE + BURST + 1
    assert used >= 0.8 * RATE, f"the shared key was used at {used:.1f}/s of its {RATE:g}/s"
    # The same processes, each with its own bucket of the key's rate, ask about three times the key: refused.
    assert alone_throttled > 0


async def test_without_its_redis_a_shared_key_sends_nothing():
    provider = Provider({SECRET: (RATE, BURST)})
    server = await ApiServer(provider).start()
    try:
        counts = await run_clients(server.url, f"redis://127.0.0.1:{free_port()}/0", count=1)
    finally:
        await server.stop()
    assert provider.arrivals[SECRET] == []
    assert counts[0]["ok"] == 0
    assert counts[0]["failed"] >= 1


async def test_the_shared_bucket_passes_the_burst_then_one_call_per_interval_whatever_the_keys_name():
    redis = ThrowawayRedis().start()
    client = aioredis.from_url(redis.url)
    try:
        alpha = SharedBucket(client, ApiKey(name="alpha", secret=SecretStr("same"), rate_per_second=10.0, burst=3))
        beta = SharedBucket(client, ApiKey(name="beta", secret=SecretStr("same"), rate_per_second=10.0, burst=3))
        assert alpha.name == beta.name
        assert "same" not in alpha.name
        started = time.monotonic()
        for _ in range(3):
            await alpha.acquire()
        burst = time.monotonic() - started
        for bucket in (beta, alpha, beta, alpha, beta):  # one bucket: each waits its 0.1 s turn
            await bucket.acquire()
        paced = time.monotonic() - started - burst
    finally:
        await client.aclose()
        redis.stop()
    assert burst < 0.1
    assert 0.45 <= paced < 1.0
