"""Redis streams with consumer groups and the shared position book, on a real redis-server."""

from __future__ import annotations

import pytest

from tests.servers import ThrowawayRedis
from trading_runtime.messaging import SIGNALS_STREAM, RedisBus


@pytest.fixture
async def bus():
    server = ThrowawayRedis().start()
    client = RedisBus(server.url, stream_maxlen=1000)
    try:
        yield client
    finally:
        await client.close()
        server.stop()


async def test_consumer_groups_share_work_and_redeliver_unacknowledged(bus):
    await bus.ensure_group(SIGNALS_STREAM, "executors")
    await bus.ensure_group(SIGNALS_STREAM, "executors")  # idempotent
    for i in range(10):
        await bus.publish(SIGNALS_STREAM, {"symbol": "SPY", "n": i})
    first = await bus.consume(SIGNALS_STREAM, "executors", "a", count=6)
    second = await bus.consume(SIGNALS_STREAM, "executors", "b", count=10)
    assert sorted(m.fields["n"] for m in first + second) == list(range(10))
    assert {m.fields["n"] for m in first}.isdisjoint({m.fields["n"] for m in second})
    await bus.ack(SIGNALS_STREAM, "executors", *(m.id for m in first[:3]))
    # Consumer "a" restarts: its delivered but unacknowledged entries come back first.
    redelivered = await bus.consume(SIGNALS_STREAM, "executors", "a", pending=True)
    assert [m.fields["n"] for m in redelivered] == [m.fields["n"] for m in first[3:]]


async def test_streams_are_trimmed(bus):
    for i in range(3000):
        await bus.publish("tradeops:test", {"n": i})
    assert await bus.redis.xlen("tradeops:test") < 2000
