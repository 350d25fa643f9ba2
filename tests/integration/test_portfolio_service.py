"""The portfolio risk service on a real redis-server: consumer groups, a consumer that dies between applying
and acknowledging, reclaim by another, and no double counting."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

from tests.servers import ThrowawayRedis, free_port
from trading_runtime.messaging import RedisBus
from trading_runtime.portfolio.book import PortfolioBook
from trading_runtime.portfolio.events import CAPS_KEY, FILLS_STREAM, GROUP, POSITIONS_STREAM, RISK_KEY
from trading_runtime.portfolio.service import DEAD_LETTER_STREAM, PortfolioService

SYMBOLS = ["SPY", "QQQ", "IWM"]


@pytest.fixture
def redis_server():
    server = ThrowawayRedis().start()
    yield server
    server.stop()


def position(symbol: str, version: int, mid: float, notional: float) -> dict[str, object]:
    return {"symbol": symbol, "version": version, "mid": mid, "notional": notional, "delta": notional / mid,
            "gamma": 0.0, "vega": 0.0, "correlationThreshold": 0.5, "correlatedExposureCap": 100_000.0}


def fill(n: int, symbol: str) -> dict[str, object]:
    return {"fillId": f"f-{n}", "symbol": symbol, "instrument": f"{symbol}-20270115-C-500", "quantity": 1.0 + n % 3,
            "price": 2.0, "fee": 0.5, "multiplier": 100.0, "ts": 1_767_225_600.0 + n}


async def publish_history(bus: RedisBus, steps: int = 60) -> dict[str, tuple[int, float]]:
    """Positions of three symbols moving together (SPY and QQQ closely), fills, and duplicates of some of
    each (a publisher retrying after a timeout). Returns what the fills must add up to per symbol."""
    expected: dict[str, tuple[int, float]] = {s: (0, 0.0) for s in SYMBOLS}
    for step in range(1, steps + 1):
        drift = math.sin(step / 3)
        mids = {"SPY": 500 * (1 + 0.01 * drift), "QQQ": 400 * (1 + 0.011 * drift),
                "IWM": 200 * (1 + 0.01 * math.cos(step))}
        for symbol in SYMBOLS:
            event = position(symbol, step, mids[symbol], 40_000.0)
            await bus.publish(POSITIONS_STREAM, event)
            if step % 10 == 0:
                await bus.publish(POSITIONS_STREAM, event)  # a duplicate
        symbol = SYMBOLS[step % 3]
        event = fill(step, symbol)
        await bus.publish(FILLS_STREAM, event)
        if step % 7 == 0:
            await bus.publish(FILLS_STREAM, event)  # a duplicate
        count, quantity = expected[symbol]
        expected[symbol] = (count + 1, quantity + float(event["quantity"]))  # type: ignore[arg-type]
    await bus.publish(FILLS_STREAM, {"fillId": "broken"})  # malformed: dead-lettered, not lost silently
    return expected


async def assert_book(redis_url: str, expected: dict[str, tuple[int, float]], returns_lost: int = 0) -> None:
    """`returns_lost`: version steps whose return may be missing (a dead consumer's batch that a newer version
    overtook: the book keeps the newer one, so the older step makes no return)."""
    bus = RedisBus(redis_url)
    book = PortfolioBook(bus.redis)
    try:
        for symbol, (count, quantity) in expected.items():
            totals = await book.fill_totals(symbol)
            assert totals.fills == count, symbol
            assert totals.quantity == pytest.approx(quantity), symbol
            assert totals.fees == pytest.approx(0.5 * count)
        for stream in (POSITIONS_STREAM, FILLS_STREAM):
            pending = await bus.redis.xpending(stream, GROUP)
            assert pending["pending"] == 0, stream
        returns = await book.returns(SYMBOLS)
        lengths = {s: len(r) for s, r in returns.items()}  # one per version step, in order
        assert all(n <= 59 for n in lengths.values()), lengths
        assert sum(59 - n for n in lengths.values()) <= returns_lost, lengths
        assert await bus.redis.xlen(DEAD_LETTER_STREAM) == 1
    finally:
        await bus.close()


async def test_a_consumer_dying_between_apply_and_ack_is_reclaimed_without_double_counting(redis_server):
    bus = RedisBus(redis_server.url)
    expected = await publish_history(bus)
    applied = 0

    async def die_after_40(stream: str, entry_id: str) -> None:
        nonlocal applied
        applied += 1
        if applied == 40:  # applied, not yet acknowledged: the worst moment to die
            raise asyncio.CancelledError

    first = PortfolioService(redis_server.url, "a", batch=25, claim_idle_s=0.5, block_ms=50,
                             on_applied=die_after_40)
    stop = asyncio.Event()
    with pytest.raises(asyncio.CancelledError):
        await first.run(stop)
    await first.close()
    pending = [(await bus.redis.xpending(s, GROUP))["pending"] for s in (POSITIONS_STREAM, FILLS_STREAM)]
    assert sum(pending) > 0  # delivered to "a", never acknowledged

    registry = CollectorRegistry()
    second = PortfolioService(redis_server.url, "b", registry, batch=25, claim_idle_s=0.5, block_ms=50,
                              interval_s=0.2)
    task = asyncio.create_task(second.run(stop))
    try:
        async def drained() -> bool:
            groups = {s: await bus.redis.xpending(s, GROUP) for s in (POSITIONS_STREAM, FILLS_STREAM)}
            infos = await bus.redis.xinfo_groups(POSITIONS_STREAM)
            return all(g["pending"] == 0 for g in groups.values()) and infos[0]["lag"] == 0

        for _ in range(100):
            if await drained():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # one more publication after the last entry
    finally:
        stop.set()
        await task
        await second.close()
    await assert_book(redis_server.url, expected)
    reclaimed = sum(registry.get_sample_value("tradeops_portfolio_reclaimed_total", {"stream": s}) or 0
                    for s in (POSITIONS_STREAM, FILLS_STREAM))
    assert reclaimed == sum(pending)
    # The entries "a" had applied but not acknowledged came back to "b" and changed nothing: the fill it
    # died on (applied) is among the duplicates, beside the 8 fills published twice.
    duplicates = registry.get_sample_value("tradeops_portfolio_events_total",
                                           {"stream": FILLS_STREAM, "outcome": "duplicate"})
    assert (duplicates or 0) >= 8 + 1
    assert registry.get_sample_value("tradeops_portfolio_events_total",
                                     {"stream": FILLS_STREAM, "outcome": "malformed"}) == 1
    # The caps the runtimes read: SPY and QQQ move together, so they share one cap of 100 000 (80 000 used).
    caps = {s: json.loads(v) for s, v in (await bus.redis.hgetall(CAPS_KEY)).items()}
    assert set(caps) == set(SYMBOLS)
    assert caps["SPY"]["cap"] == pytest.approx(40_000.0 + 20_000.0)
    assert caps["QQQ"]["cap"] == pytest.approx(40_000.0 + 20_000.0)
    assert caps["IWM"]["cap"] == pytest.approx(100_000.0)  # alone in its group: the whole cap
    view = json.loads(str(await bus.redis.get(RISK_KEY)))
    assert view["gross"] == pytest.approx(120_000.0)
    assert view["parametricVar"] > 0
    await bus.close()


async def test_killed_consumer_process_and_a_second_one_leave_exact_totals(redis_server, tmp_path):
    bus = RedisBus(redis_server.url)

    def consumer(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as log:
            return subprocess.Popen([sys.executable, "-m", "trading_runtime.portfolio", "--redis-url",
                                     redis_server.url, "--consumer", name, "--batch", "5", "--claim-idle", "1",
                                     "--interval", "0.2", "--metrics-host", "127.0.0.1", "--metrics-port",
                                     str(free_port())], stdout=log, stderr=subprocess.STDOUT)

    first = consumer("a")
    try:
        expected = await publish_history(bus)
        for _ in range(200):  # kill it mid-stream, once it has started on the work
            groups = await bus.redis.xinfo_groups(FILLS_STREAM) if await bus.redis.exists(FILLS_STREAM) else []
            if groups and groups[0]["entries-read"]:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = consumer("b")
        try:
            for _ in range(300):
                infos = [await bus.redis.xinfo_groups(s) for s in (POSITIONS_STREAM, FILLS_STREAM)]
                if all(i[0]["lag"] == 0 and i[0]["pending"] == 0 for i in infos):
                    break
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        await bus.close()
    # The killed consumer's unacknowledged batch (--batch 5) is reclaimed after the second one applied newer
    # versions of those symbols: exposures stay exact, but those steps make no return.
    await assert_book(redis_server.url, expected, returns_lost=5)
