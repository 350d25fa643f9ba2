"""The runtime process with `config.broker`: its orders and market-data snapshots go through the client pool to
the devstack's paper broker (following the same synthetic feed), across a lossy endpoint (takes the order, loses
the answer), a plain one, a failing one and a dead one, with rate-limited keys whose values come from the
environment only."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aiohttp
import yaml
from aiohttp import web

from devstack.paper_broker import KeyLimit, PaperBroker
from tests.integration.api_servers import ApiServer, Provider
from tests.integration.test_api_pool import closed_port_url
from tests.servers import free_port
from trading_runtime.feeds.client import FeedClient
from trading_runtime.feeds.server import FeedServer

KEYS = {"alpha": ("secret-alpha", 6.0, 2), "beta": ("secret-beta", 3.0, 1)}


def lossy(broker: PaperBroker) -> web.Application:
    """The broker's API, except that the first answer to each order is lost (a 502 after the order was taken)."""
    lost: set[str] = set()

    @web.middleware
    async def lose_first_answer(request: web.Request, handler):  # type: ignore[no-untyped-def]
        response = await handler(request)
        if request.method == "POST" and response.status == 201:
            order_id = json.loads(response.body)["clientOrderId"]
            if order_id not in lost:
                lost.add(order_id)
                return web.json_response({"error": "bad gateway"}, status=502)
        return response

    app = broker.app()
    app.middlewares.append(lose_first_answer)
    return app


async def listen(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def until(predicate, within: float = 60.0, what: str = "condition", every: float = 0.2) -> bool:
    """Wait for `predicate`; False (no assertion) when `what` is empty and it did not come in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() >= deadline:
            assert not what, f"{what}: not reached in {within:g} s"
            return False
        await asyncio.sleep(every)
    return True


async def test_the_runtime_trades_through_the_pool_once_per_order_and_resyncs_from_api_snapshots(tmp_path):
    broker = PaperBroker({secret: KeyLimit(name, rate, burst, slack=1.0) for name, (secret, rate, burst) in
                          KEYS.items()})
    failing = await ApiServer(Provider({secret: (100.0, 10) for secret, _, _ in KEYS.values()}), "fail").start()
    stop = asyncio.Event()
    runners = []
    async with FeedServer(["SPY"], seed=7, rate=50, time_scale=5.0) as feed:
        following = asyncio.create_task(FeedClient(feed.url, ["SPY"], broker.book.on_message).run(stop))
        for app in (lossy(broker), broker.app()):
            runners.append(await listen(app))
        endpoints = [url for _, url in runners] + [failing.url, closed_port_url()]
        runtime = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
                   "broker": {"endpoints": endpoints, "failureThreshold": 3, "openSeconds": 30,
                              "deadlineSeconds": 30, "retryMinPerSecond": 20,
                              "keys": [{"name": name, "secretKeyRef": {"name": "broker-keys", "key": name},
                                        "ratePerSecond": rate, "burst": burst}
                                       for name, (_, rate, burst) in KEYS.items()]}}
        (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(
            {"symbol": "SPY", "market": "equity-options", "revision": 1, "runtime": runtime}))
        (tmp_path / "switches.yaml").write_text(yaml.safe_dump({"tradingEnabled": True}))
        assert "secret-alpha" not in (tmp_path / "runtime.yaml").read_text()
        port = free_port()
        log = (tmp_path / "runtime.log").open("w")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TRADEOPS_", "OTEL_"))},
               "TRADEOPS_API_KEY_ALPHA": "secret-alpha", "TRADEOPS_API_KEY_BETA": "secret-beta"}
        await until(lambda: asyncio.sleep(0, "SPY" in broker.book.snapshots), what="the broker's book")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trading_runtime", "--config", str(tmp_path / "runtime.yaml"),
            "--switches", str(tmp_path / "switches.yaml"), "--feed-url", feed.url, "--metrics-host", "127.0.0.1",
            "--metrics-port", str(port), "--spill-path", str(tmp_path / "spill.jsonl"),
            stdout=log, stderr=asyncio.subprocess.STDOUT, env=env)
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

                # The snapshot at start came from the API, before any order.
                await until(lambda: asyncio.sleep(0, broker.served.get("snapshot", 0) >= 1), 30, "a start snapshot")
                await until(lambda: asyncio.sleep(0, broker.served.get("order", 0) >= 8), 90, "8 orders")
                # A lost feed message: the resync snapshot comes from the API through the pool. On a loaded
                # machine the broker's book (in this process) may lag the runtime: a snapshot older than the gap
                # is refused and the feed's taken, so the gap is made again until the API's is used.
                for _ in range(10):
                    feed.skip_sequence("SPY")
                    if await until(lambda: _at_least(metric, "tradeops_feed_api_snapshots_total", 1), 5, ""):
                        break
                assert await metric("tradeops_feed_api_snapshots_total") >= 1
                assert await metric("tradeops_feed_gaps_total") >= 1
                text = await (await http.get("/metrics")).text()
        finally:
            process.terminate()
            code = await asyncio.wait_for(process.wait(), 60)
            log.close()
            stop.set()
            await following
            for runner, _ in runners:
                await runner.cleanup()
            await failing.stop()
    output = (tmp_path / "runtime.log").read_text()
    assert code == 0, output[-3000:]
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    recorded = [entry["order_id"] for entry in logged if entry.get("order_id") and entry["log"]["origin"]["function"]
                == "_filled"]
    filled = {order_id for order_id, answer in broker.orders.items() if answer["status"] == "filled"}
    # Every order the runtime filled is one order at the broker, and the broker filled nothing it did not record.
    assert sorted(recorded) == sorted(filled), (recorded, filled)
    assert broker.served.get("order-again", 0) >= 1, "no order was sent again after its answer was lost"
    assert broker.throttled == {}, "the pool sent a key over its limit"
    assert not any("outcome unknown" in line for line in output.splitlines())
    assert "secret-alpha" not in output
    # Per-endpoint metrics: the failing and the dead endpoint's breakers are open, the plain one answered.
    failing_label, plain_label = failing.url.removeprefix("http://"), runners[1][1].removeprefix("http://")
    assert f'tradeops_api_breaker_state{{endpoint="{failing_label}"}} 2.0' in text
    assert f'tradeops_api_requests_total{{endpoint="{plain_label}",outcome="ok"}}' in text


async def _at_least(metric, name: str, value: float) -> bool:
    return await metric(name) >= value
