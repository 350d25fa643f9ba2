"""The runtime process end to end: synthetic feed → signals → PostgreSQL and Redis, metrics and health,
hot reload of the kill switch, a database restart and a feed drop mid-run, and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import psycopg
import yaml

from tests.servers import ThrowawayPostgres, ThrowawayRedis, free_port
from trading_runtime.feeds.server import FeedServer
from trading_runtime.messaging import SIGNALS_STREAM, RedisBus
from trading_runtime.portfolio.events import FILLS_STREAM, POSITIONS_STREAM
from trading_runtime.portfolio.service import PortfolioService

CONFIG = {"symbol": "SPY", "market": "equity-options", "revision": 3,
          "runtime": {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
                      "parameters": {"batchSize": 200, "flushIntervalMs": 50}}}


def rows(dsn: str, table: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except psycopg.Error:
        return -1


async def until(predicate, within: float = 30.0, every: float = 0.2) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(every)


async def test_runtime_end_to_end(tmp_path):
    postgres = ThrowawayPostgres().init().start()
    redis = ThrowawayRedis().start()
    (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "switches.yaml").write_text(yaml.safe_dump({"tradingEnabled": True}))
    port = free_port()
    log = (tmp_path / "runtime.log").open("w")
    async with FeedServer(["SPY"], seed=7, rate=200, time_scale=5.0) as feed:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "trading_runtime", "--config", str(tmp_path / "runtime.yaml"),
             "--switches", str(tmp_path / "switches.yaml"), "--feed-url", feed.url, "--database-url", postgres.dsn,
             "--redis-url", redis.url, "--share-interval", "0.05", "--metrics-host", "127.0.0.1",
             "--metrics-port", str(port),
             "--spill-path", str(tmp_path / "spill.jsonl")], stdout=log, stderr=asyncio.subprocess.STDOUT)
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                async def metric(name: str) -> float:
                    try:
                        async with http.get("/metrics") as response:
                            text = await response.text()
                    except aiohttp.ClientError:
                        return -1.0
                    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
                    return sum(values) if values else 0.0

                async def ready() -> bool:
                    try:
                        async with http.get("/readyz") as response:
                            return response.status == 200
                    except aiohttp.ClientError:
                        return False

                await until(ready)
                await until(lambda: asyncio.to_thread(lambda: rows(postgres.dsn, "signals") > 5))
                await until(lambda: _at_least(metric, 'tradeops_tick_to_signal_seconds_count{symbol="SPY"}', 100))
                assert await metric('tradeops_tick_processing_seconds_count{symbol="SPY"}') > 0
                assert await metric('tradeops_runtime_info{revision="3"') == 1.0

                bus = RedisBus(redis.url)
                assert len(await bus.redis.xrange(SIGNALS_STREAM)) > 0
                # Positions go to the portfolio risk service; the cap it publishes comes back (no service yet: NaN).
                await until(lambda: bus.redis.xlen(POSITIONS_STREAM))
                await until(lambda: bus.redis.xlen(FILLS_STREAM))  # each fill, with the instrument its order named
                fill = json.loads((await bus.redis.xrange(FILLS_STREAM, count=1))[0][1]["data"])
                assert fill["symbol"] == "SPY"
                assert fill["instrument"].startswith("SPY-")
                assert await metric('tradeops_runtime_position_cap{symbol="SPY"}') != await metric(
                    'tradeops_runtime_position_cap{symbol="SPY"}')
                stop_service = asyncio.Event()
                service = PortfolioService(redis.url, "e2e", interval_s=0.1)
                consuming = asyncio.create_task(service.run(stop_service))
                await until(lambda: _at_least(metric, 'tradeops_runtime_position_cap{symbol="SPY"}', 1.0))
                stop_service.set()
                await consuming
                await service.close()
                await bus.close()

                # The kill switch arrives through the mounted file, without a restart.
                (tmp_path / "switches.yaml").write_text(yaml.safe_dump({"tradingEnabled": False}))
                await until(lambda: _halted(metric))
                async with http.get("/positions") as response:
                    assert (await response.json()) == {"openPositions": 0}

                # The database goes away and comes back; the feed drops.
                await asyncio.to_thread(postgres.stop, "immediate")
                await asyncio.sleep(1.0)
                await asyncio.to_thread(postgres.start)
                await feed.drop_connections()
                await until(lambda: _at_least(metric, "tradeops_feed_reconnects_total", 1))
                await until(ready)
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 60)
            log.close()
    try:
        assert code == 0
        summary = next(json.loads(line) for line in (tmp_path / "runtime.log").read_text().splitlines()
                       if "shutdown complete" in line)
        assert summary["rows_accepted"] == summary["rows_written"] > 100
        assert summary["rows_spilled_pending"] == 0
        stored = sum(rows(postgres.dsn, t) for t in ("ticks", "bars", "signals", "orders", "fills", "positions",
                                                     "risk_events", "order_rejections"))
        assert stored == summary["rows_written"]
    finally:
        redis.stop()
        postgres.destroy()


async def _halted(metric) -> bool:
    return await metric('tradeops_trading_halted{reason="kill-switch",symbol="SPY"}') == 1.0


async def _at_least(metric, name: str, value: float) -> bool:
    return await metric(name) >= value
