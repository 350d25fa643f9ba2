"""Runtime metrics exposition and the health endpoints."""

from __future__ import annotations

import aiohttp
from prometheus_client import generate_latest

from trading_runtime.health import HealthServer
from trading_runtime.metrics import CounterSource, RuntimeMetrics


def test_metrics_expose_latency_buckets_sources_and_build_info():
    metrics = RuntimeMetrics("SPY")
    metrics.set_build("0.1.0", 7)
    metrics.tick_to_signal.labels("SPY").observe(0.0003)
    state = {"malformed": 3}
    metrics.export([CounterSource("feed_malformed_messages", "Malformed frames", lambda: state["malformed"])])
    state["malformed"] = 5
    text = generate_latest(metrics.registry).decode()
    assert 'tradeops_tick_to_signal_seconds_bucket{le="0.0005",symbol="SPY"} 1.0' in text
    assert 'tradeops_tick_to_signal_seconds_bucket{le="0.00025",symbol="SPY"} 0.0' in text
    assert 'tradeops_feed_malformed_messages_total{symbol="SPY"} 5.0' in text
    assert 'tradeops_runtime_info{revision="7",symbol="SPY",version="0.1.0"} 1.0' in text


async def test_health_endpoints():
    metrics = RuntimeMetrics("QQQ")
    state = {"feed": True, "positions": 2}

    async def feed_ok() -> bool:
        return state["feed"]

    async def database_down() -> bool:
        raise ConnectionError("no database")

    server = HealthServer(metrics.registry, lambda: state["positions"], {"feed": feed_ok}, host="127.0.0.1", port=0)
    port = await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            async with session.get("/healthz") as response:
                assert response.status == 200
            async with session.get("/readyz") as response:
                assert response.status == 200
                assert (await response.json())["checks"] == {"feed": True}
            state["feed"] = False
            server.checks["database"] = database_down
            async with session.get("/readyz") as response:
                assert response.status == 503
                assert (await response.json())["checks"] == {"feed": False, "database": False}
            async with session.get("/positions") as response:
                assert await response.json() == {"openPositions": 2}
            async with session.get("/metrics") as response:
                assert "tradeops_ticks" in await response.text()
    finally:
        await server.stop()
