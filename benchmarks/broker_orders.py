"""Orders through the client pool to the devstack's paper broker: latency and throughput against the keys' limits.

The synthetic feed and the paper broker (`python -m devstack.paper_broker`, two endpoints, two keys) run as
their own processes; this process is the runtime's order path without the engine: `HttpBroker.submit` →
`MarketApi` → `ClientPool` → HTTP. Orders are started on a fixed schedule (`--rate` per second for
`--seconds`); an order's latency runs from its scheduled start to its fill reaching `on_result`, so orders
queued behind the keys' token buckets are counted late (no coordinated omission). Above the keys' combined
rate, latency grows with the queue while the broker still throttles nothing: the pool holds the excess back.

Excludes: the engine's decision and the row writes (see benchmarks/runtime_latency.py), network distance (all
local), and the load of other processes on this 2-core machine (the 1-minute load average is printed).

`--dead-endpoint` adds an endpoint nothing listens on: the first calls find it (refused at once, sent on to a
live endpoint) until its circuit breaker opens.

    python benchmarks/broker_orders.py [--rate 10] [--seconds 10] [--dead-endpoint] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import statistics
import tempfile
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry

from devstack.processes import FeedProcess, PaperBrokerProcess, free_port
from trading_runtime.execution.http_broker import HttpBroker
from trading_runtime.execution.paper import OrderResult
from trading_runtime.gateway.market_api import MarketApi
from trading_runtime.gateway.pool import ApiError, ClientPool
from trading_runtime.gateway.settings import ApiKey, PoolSettings

KEYS = {"alpha": ("bench-alpha", 20.0, 4), "beta": ("bench-beta", 10.0, 2)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(urls: list[str], rate: float, seconds: float) -> dict[str, Any]:
    settings = PoolSettings(endpoints=urls, keys=[ApiKey(name=n, secret=s, rate_per_second=r, burst=b)
                                                  for n, (s, r, b) in KEYS.items()], deadline_seconds=120.0)
    registry = CollectorRegistry()
    scheduled: dict[str, float] = {}
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    def done(result: OrderResult) -> None:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if result.fill is not None:
            latencies.append(time.monotonic() - scheduled[result.order_id])

    async with ClientPool(settings, registry) as pool:
        api = MarketApi(pool)
        for _ in range(300):  # the broker follows the feed: wait until it has a book
            try:
                await api.snapshot("SPY")
                break
            except ApiError:
                await asyncio.sleep(0.1)
        broker = HttpBroker(api=api, order_timeout=120.0, on_result=done)
        broker.quote("SPY", 1.0, 1.0)
        start = time.monotonic()
        count = int(rate * seconds)
        for i in range(count):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            order_id = str(uuid.uuid4())
            scheduled[order_id] = due
            broker.submit("SPY", 1.0 if i % 2 == 0 else -1.0, time.time(), order_id)
        await broker.drain(180.0)
        elapsed = time.monotonic() - start

        def total(name: str) -> float:
            return sum(s.value for m in registry.collect() for s in m.samples if s.name == name)

        return {
            "rate_orders_per_s": rate, "seconds": seconds, "orders": count, "outcomes": outcomes,
            "keys_capacity_per_s": sum(r for _, r, _ in KEYS.values()),
            "fills_per_s": round(len(latencies) / elapsed, 2),
            "latency_p50_ms": round(percentile(latencies, 0.50) * 1e3, 2) if latencies else None,
            "latency_p95_ms": round(percentile(latencies, 0.95) * 1e3, 2) if latencies else None,
            "latency_p99_ms": round(percentile(latencies, 0.99) * 1e3, 2) if latencies else None,
            "latency_max_ms": round(max(latencies) * 1e3, 2) if latencies else None,
            "latency_mean_ms": round(statistics.fmean(latencies) * 1e3, 2) if latencies else None,
            "throttled_429": total("tradeops_api_throttled_total"),
            "rate_limit_wait_s": round(total("tradeops_api_rate_limit_wait_seconds_total"), 2),
            "retries": total("tradeops_api_retries_total"),
            "load_1m": os.getloadavg()[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10.0, help="orders started per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dead-endpoint", action="store_true", help="add an endpoint nothing listens on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-broker-"))
    feed = FeedProcess(workdir, symbols="SPY", rate=10.0).start()
    broker = None
    try:
        broker = PaperBrokerProcess(workdir, feed.url, KEYS, symbols="SPY").start()
        urls = [f"http://127.0.0.1:{free_port()}", *broker.urls] if args.dead_endpoint else broker.urls
        figures = asyncio.run(run(urls, args.rate, args.seconds))
        figures["dead_endpoint"] = args.dead_endpoint
    finally:
        if broker is not None:
            broker.stop()
        feed.stop()
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
