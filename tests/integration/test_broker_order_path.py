"""The runtime's order path through the client pool (engine → HttpBroker → MarketApi → ClientPool → HTTP), against
local broker API api_servers that throttle, slow down, fail, or fail after taking the order."""

from __future__ import annotations

import asyncio
import json
import time

from prometheus_client import CollectorRegistry

from tests.integration.api_servers import Provider
from tests.integration.test_api_pool import closed_port_url, keys, sample
from tests.unit.test_engine import Rows, config
from tests.unit.test_standby_engine import Snapshots
from trading_runtime.engine import SymbolEngine
from trading_runtime.execution.http_broker import HttpBroker
from trading_runtime.execution.pretrade import PreTradeControls
from trading_runtime.feeds.client import settle as finish
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.gateway.market_api import MarketApi
from trading_runtime.gateway.pool import ClientPool
from trading_runtime.gateway.settings import PoolSettings
from trading_runtime.metrics import RuntimeMetrics

STRATEGY = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}}


async def paced_drive(engine: SymbolEngine, ticks: int, pause: float = 0.002) -> None:
    """The synthetic market into the engine, yielding between ticks as a live feed does (orders go out
    meanwhile)."""
    simulator = MarketSimulator(["SPY"], seed=0, option_quotes_per_tick=1, trade_probability=0.6)
    seq = 0
    await finish(engine.on_message(parse_message(json.dumps({**simulator.snapshot("SPY"), "seq": seq}))))
    for _ in range(ticks):
        for message in simulator.tick("SPY", 0.25):
            seq += 1
            await finish(engine.on_message(parse_message(json.dumps({**message, "seq": seq}))))
        await asyncio.sleep(pause)


async def settle(broker: HttpBroker, within: float = 60.0) -> None:
    assert await broker.drain(within) == 0, "orders still working"


def engine_over(pool: ClientPool, rows: Rows, **runtime) -> tuple[SymbolEngine, HttpBroker]:
    broker = HttpBroker(api=MarketApi(pool), order_timeout=60.0)
    engine = SymbolEngine(config(**{**STRATEGY, **runtime}), True, RuntimeMetrics("SPY"), rows, seed=0,
                          broker=broker)
    broker.on_result = engine.order_result
    return engine, broker


def windows_within_limit(arrivals: list[float], rate: float, burst: int) -> bool:
    """Any 1 s window holds at most the burst plus a second's refill (+1 for the edges)."""
    return all(sum(1 for u in arrivals[i:] if u - t < 1.0) <= burst + rate + 1 for i, t in enumerate(arrivals))


async def test_the_order_path_stays_under_every_keys_limit_and_routes_around_a_failing_endpoint(api_servers):
    limits = {"alpha": (12.0, 2), "beta": (8.0, 1)}
    provider = Provider(limits)
    good, slow, failing = await api_servers(provider), await api_servers(provider, "slow", 0.2), \
        await api_servers(provider, "fail")
    dead = closed_port_url()
    registry = CollectorRegistry()
    settings = PoolSettings(endpoints=[failing.url, dead, slow.url, good.url], keys=keys(limits),
                            failure_threshold=3, open_seconds=30.0, deadline_seconds=60.0, retry_min_per_second=20.0)
    rows = Rows()
    async with ClientPool(settings, registry) as pool:
        engine, broker = engine_over(pool, rows, preTrade={"maxOrdersPerSecond": 1000})
        started = time.monotonic()
        await paced_drive(engine, 2500)
        await settle(broker)
        elapsed = time.monotonic() - started
    sent = provider.orders
    recorded = [row[0] for row in rows.by_table.get("orders", [])]
    assert len(sent) >= 40, f"too few orders to load the keys: {len(sent)}"
    # Every order the engine sent was placed once and recorded once, with its fill.
    assert sorted(recorded) == sorted(sent)
    assert rows.count("fills") == len(sent)
    # The book's last position row per instrument is what the broker filled, net (working orders not counted).
    net: dict[str, float] = {}
    for body in sent.values():
        net[str(body["instrument"])] = net.get(str(body["instrument"]), 0.0) + float(body["quantity"])
    last = {row[2]: row[3] for row in rows.by_table["positions"]}
    assert {i: q for i, q in last.items() if q} == {i: q for i, q in net.items() if q}
    assert engine.broker.held() == {i: q for i, q in net.items() if q}
    assert engine.trading, f"halted: {engine.state.halted}"
    assert dict(provider.throttled) == {}, "the broker had to refuse calls the pool should have held back"
    for name, (rate, burst) in limits.items():
        assert provider.arrivals[name], f"key {name} was never used"
        assert windows_within_limit(provider.arrivals[name], rate, burst), name
    # The failing and the dead endpoint took a few attempts until their breakers opened, then none.
    assert failing.hits <= settings.failure_threshold + 4
    for bad in (failing.url, dead):
        assert sample(registry, "tradeops_api_breaker_state", endpoint=bad.removeprefix("http://")) == 2
    # Least outstanding requests: the slow endpoint (0.2 s a call) holds at most about one call at a time, the
    # fast one takes the rest (round robin would split them evenly).
    assert slow.hits <= elapsed / 0.2 * 1.2 + 5, (slow.hits, elapsed)
    assert good.hits >= 2 * slow.hits, (good.hits, slow.hits)
    assert sample(registry, "tradeops_api_requests_total", endpoint=good.url.removeprefix("http://"),
                  outcome="ok") == good.hits


async def test_an_order_whose_answer_is_lost_is_sent_again_under_its_id_and_placed_once(api_servers):
    limits = {"alpha": (1000.0, 100)}
    provider = Provider(limits)
    flaky = await api_servers(provider, "fail-after-commit")
    rows = Rows()
    # One endpoint only: the retry goes back to the server that took the order and lost the answer.
    settings = PoolSettings(endpoints=[flaky.url], keys=keys(limits), failure_threshold=10_000,
                            retry_min_per_second=1000.0)
    async with ClientPool(settings) as pool:
        engine, broker = engine_over(pool, rows)
        await paced_drive(engine, 600)
        await settle(broker)
    recorded = [row[0] for row in rows.by_table.get("orders", [])]
    assert len(recorded) >= 5
    assert flaky.hits == 2 * len(provider.orders), "each order was sent twice: once lost, once answered"
    assert sorted(recorded) == sorted(provider.orders), "a retried order must stay one order"
    assert rows.count("fills") == len(provider.orders)


async def test_an_order_with_no_answer_halts_trading_and_says_so(api_servers):
    limits = {"alpha": (1000.0, 100)}
    failing = await api_servers(Provider(limits), "fail")
    rows = Rows()
    settings = PoolSettings(endpoints=[failing.url], keys=keys(limits), deadline_seconds=0.5)
    async with ClientPool(settings) as pool:
        engine, broker = engine_over(pool, rows)
        broker.order_timeout = 1.0
        await paced_drive(engine, 600)
        await settle(broker)
        assert engine.state.halted.get("broker") is True
        events = [r for r in rows.by_table.get("risk_events", []) if r[2] == "broker-unknown"]
        assert len(events) == 1
        assert rows.count("fills") == 0


async def test_an_order_the_broker_refuses_is_recorded_as_a_rejection(api_servers):
    limits = {"alpha": (1000.0, 100)}
    server = await api_servers(Provider(limits))
    server.refuse_orders = True
    rows = Rows()
    async with ClientPool(PoolSettings(endpoints=[server.url], keys=keys(limits))) as pool:
        engine, broker = engine_over(pool, rows)
        await paced_drive(engine, 400)
        await settle(broker)
    rejected = rows.by_table.get("order_rejections", [])
    reasons = [row[7] for row in rejected]
    assert "broker" in reasons
    assert set(reasons) <= {"broker", "duplicate"}  # the same order again within a second: the control's own
    assert rows.count("fills") == 0
    assert engine.broker.held() == {}, "a refused order holds nothing"


async def test_an_order_that_never_reached_the_broker_is_a_rejection_not_a_halt():
    rows = Rows()
    settings = PoolSettings(endpoints=[closed_port_url(), closed_port_url()], keys=keys({"alpha": (1000.0, 100)}),
                            deadline_seconds=0.5)
    async with ClientPool(settings) as pool:
        engine, broker = engine_over(pool, rows)
        broker.order_timeout = 1.0
        await paced_drive(engine, 400)
        await settle(broker)
    rejected = rows.by_table.get("order_rejections", [])
    assert rejected
    assert all("no answer within" in row[8]["message"] for row in rejected)
    assert engine.trading, "an order that certainly did nothing must not halt trading"
    assert engine.broker.held() == {}


async def test_a_429_on_the_order_path_rests_the_key_and_the_order_goes_through_another(api_servers):
    limits = {"alpha": (100.0, 10), "beta": (100.0, 10)}
    provider = Provider(limits, throttle_next={"alpha": 2.0})
    server = await api_servers(provider)
    rows, registry = Rows(), CollectorRegistry()
    async with ClientPool(PoolSettings(endpoints=[server.url], keys=keys(limits)), registry) as pool:
        engine, broker = engine_over(pool, rows)
        await paced_drive(engine, 800)
        await settle(broker)
    assert provider.throttled["alpha"] == 1
    refused_at = provider.arrivals["alpha"][0]
    assert all(t - refused_at >= 1.95 for t in provider.arrivals["alpha"][1:]), "alpha was used inside Retry-After"
    assert sorted(row[0] for row in rows.by_table["orders"]) == sorted(provider.orders)
    assert sample(registry, "tradeops_api_throttled_total", key="alpha") == 1


async def test_a_new_leader_replaying_the_last_decision_sends_its_orders_again_and_the_broker_keeps_one(api_servers):
    """The old leader's last orders reached the broker but not the book (an unflushed batch): the replica that
    takes over with the same view re-sends them under the same client order ids, and the broker places none
    twice (tests/unit/test_standby_engine.py has the in-process paper broker's side of this)."""
    limits = {"alpha": (1000.0, 100)}
    provider = Provider(limits)
    server = await api_servers(provider)
    rows = Snapshots()
    async with ClientPool(PoolSettings(endpoints=[server.url], keys=keys(limits))) as pool:
        trader, broker = engine_over(pool, rows)
        rows.engine = trader
        simulator = MarketSimulator(["SPY"], seed=0, option_quotes_per_tick=1, trade_probability=0.6)
        await finish(trader.on_message(parse_message(json.dumps({**simulator.snapshot("SPY"), "seq": 0}))))
        seq, placed = 0, 0
        while placed < 3:  # stop right after the third decision that sent orders, all of them answered
            before = len(provider.orders)
            for message in simulator.tick("SPY", 0.25):
                seq += 1
                await finish(trader.on_message(parse_message(json.dumps({**message, "seq": seq}))))
            await settle(broker)
            placed += len(provider.orders) > before
            assert seq < 50_000, "no decision sent orders"
        last_signal = rows.by_table["signals"][-1][0]
        last_orders = [r[0] for r in rows.by_table["orders"] if r[7] == last_signal]
        assert last_orders
        positions, fees = rows.book
        placed_at_broker, submissions = len(provider.orders), server.hits
        trader.demote()
        trader.controls = PreTradeControls(trader.config.runtime.pre_trade)  # another process's controls
        recorded = rows.count("orders")
        trader.promote(positions, fees)
        await settle(broker)
    assert [r[0] for r in rows.by_table["orders"][recorded:]] == last_orders
    assert server.hits == submissions + len(last_orders), "the orders were sent again"
    assert len(provider.orders) == placed_at_broker, "the broker placed a replayed order twice"


async def test_a_demoted_leader_stops_sending_even_the_orders_it_was_retrying(api_servers):
    limits = {"alpha": (1000.0, 100)}
    failing = await api_servers(Provider(limits), "fail")
    rows = Rows()
    settings = PoolSettings(endpoints=[failing.url], keys=keys(limits), failure_threshold=10_000,
                            retry_min_per_second=1000.0)
    async with ClientPool(settings) as pool:
        engine, broker = engine_over(pool, rows)
        await paced_drive(engine, 300)
        assert broker.working, "no order was being retried"
        engine.demote()
        # Requests already on the wire still land, late on a loaded machine: wait until none has for 1 s over at
        # least 20 looks (a stalled loop's one long sleep is not quiet: the landings it held back come after it; a
        # leader that kept sending, every few ms here, never gets there), then watch a whole second more.
        hits, quiet_since, looks, deadline = failing.hits, time.monotonic(), 0, time.monotonic() + 10.0
        while time.monotonic() - quiet_since < 1.0 or looks < 20:
            assert time.monotonic() < deadline, "a demoted leader kept sending"
            await asyncio.sleep(0.05)
            looks += 1
            if failing.hits != hits:
                hits, quiet_since, looks = failing.hits, time.monotonic(), 0
        await asyncio.sleep(1.0)
        assert failing.hits == hits, "a demoted leader kept sending"
        assert await broker.drain(1.0) == 0
    assert rows.count("fills") == 0
    assert not [r for r in rows.by_table.get("risk_events", []) if r[2] == "broker-unknown"]
