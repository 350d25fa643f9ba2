"""The API client pool against real local HTTP api_servers that throttle, slow down and fail."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from prometheus_client import CollectorRegistry

from tests.integration.api_servers import Provider
from trading_runtime.gateway.market_api import MarketApi, OrderTicket
from trading_runtime.gateway.pool import ApiError, ClientPool
from trading_runtime.gateway.settings import ApiKey, PoolSettings


def keys(limits: dict[str, tuple[float, int]]) -> list[ApiKey]:
    return [ApiKey(name=name, secret=name, rate_per_second=rate, burst=burst)
            for name, (rate, burst) in limits.items()]


def closed_port_url() -> str:
    with socket.socket() as s:  # bound then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def gather_calls(calls: int, concurrency: int, call) -> list[object]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> object:
        async with gate:
            try:
                return await call(i)
            except ApiError as exc:
                return exc

    return await asyncio.gather(*(one(i) for i in range(calls)))


async def test_pool_stays_under_every_keys_limit_across_endpoints(api_servers):
    limits = {"alpha": (20.0, 4), "beta": (10.0, 2)}
    provider = Provider(limits)
    endpoints = [await api_servers(provider), await api_servers(provider)]
    async with ClientPool(PoolSettings(endpoints=[e.url for e in endpoints], keys=keys(limits),
                                         deadline_seconds=60.0)) as pool:
        api = MarketApi(pool)
        started = time.monotonic()
        results = await gather_calls(75, 25, lambda i: api.snapshot("SPY"))
        elapsed = time.monotonic() - started
    assert [r for r in results if isinstance(r, Exception)] == []
    assert dict(provider.throttled) == {}, "the provider had to refuse requests the pool should have held back"
    # The two keys together allow 30/s after a burst of 6: 75 calls cannot take much less than (75-6)/30 s.
    assert elapsed >= (75 - 6) / 30 * 0.9
    for name, (rate, burst) in limits.items():
        arrivals = provider.arrivals[name]
        assert arrivals, f"key {name} was never used"
        for i, t in enumerate(arrivals):  # any 1 s window: at most the burst plus a second's refill (+1 slack)
            window = sum(1 for u in arrivals[i:] if u - t < 1.0)
            assert window <= burst + rate + 1, (name, window)
    assert min(e.hits for e in endpoints) >= 20  # both endpoints carried traffic


async def test_429_parks_the_key_for_its_retry_after_and_the_call_moves_to_another_key(api_servers):
    limits = {"alpha": (50.0, 5), "beta": (50.0, 5)}
    provider = Provider(limits, throttle_next={"alpha": 1.0})
    endpoint = await api_servers(provider)
    registry = CollectorRegistry()
    settings = PoolSettings(endpoints=[endpoint.url], keys=keys(limits))
    async with ClientPool(settings, registry) as pool:
        api = MarketApi(pool)
        results = []
        for _ in range(30):  # ~1.5 s of calls at 20/s
            results.append(await api.snapshot("QQQ"))
            await asyncio.sleep(0.05)
    assert len(results) == 30  # the throttled call was answered through the other key
    alpha = provider.arrivals["alpha"]
    refused_at = alpha[0]
    assert provider.throttled["alpha"] == 1
    assert all(t - refused_at >= 0.95 for t in alpha[1:]), "key alpha was used inside its Retry-After"
    assert len(alpha) > 1, "key alpha was never used again after its Retry-After"
    assert sample(registry, "tradeops_api_throttled_total", key="alpha") == 1
    assert sample(registry, "tradeops_api_retries_total", reason="throttled") == 1


async def test_pool_routes_around_a_failing_and_a_dead_endpoint(api_servers):
    limits = {"alpha": (500.0, 50)}
    provider = Provider(limits)
    good, failing = await api_servers(provider), await api_servers(provider, mode="fail")
    dead = closed_port_url()
    registry = CollectorRegistry()
    # A budget of 20 retries a second: the first calls find both bad endpoints before their breakers open.
    settings = PoolSettings(endpoints=[failing.url, dead, good.url], keys=keys(limits), failure_threshold=3,
                            open_seconds=30.0, retry_min_per_second=20.0)
    async with ClientPool(settings, registry) as pool:
        results = await gather_calls(120, 6, lambda i: MarketApi(pool).snapshot("SPY"))
        assert [r for r in results if isinstance(r, Exception)] == []
        failing_label, dead_label = failing.url.removeprefix("http://"), dead.removeprefix("http://")
        # Each bad endpoint took a few requests until its breaker opened, then none.
        assert failing.hits <= settings.failure_threshold + 6
        assert sample(registry, "tradeops_api_requests_total", endpoint=dead_label,
                      outcome="unreachable") <= settings.failure_threshold + 6
        assert sample(registry, "tradeops_api_breaker_state", endpoint=failing_label) == 2
        assert sample(registry, "tradeops_api_breaker_state", endpoint=dead_label) == 2
        assert good.hits >= 120


async def test_least_outstanding_routing_sends_most_calls_to_the_fast_endpoint(api_servers):
    limits = {"alpha": (1000.0, 100)}
    provider = Provider(limits)
    slow = await api_servers(provider, mode="slow", delay=0.5)
    fast = await api_servers(provider, mode="slow", delay=0.005)

    async def order(i: int) -> object:
        return await pool.request("POST", "/v1/orders", idempotent=True, json_body={},
                                  headers={"Idempotency-Key": f"o-{i}"})

    async with ClientPool(PoolSettings(endpoints=[slow.url, fast.url], keys=keys(limits))) as pool:
        results = await gather_calls(60, 6, order)
    assert [r for r in results if isinstance(r, Exception)] == []
    # Round robin would split 30/30; least-outstanding keeps about one call at a time on the slow one.
    assert fast.hits >= 4 * slow.hits, (fast.hits, slow.hits)


async def test_retry_budget_bounds_the_extra_load_when_everything_fails(api_servers):
    limits = {"alpha": (1000.0, 100)}
    provider = Provider(limits)
    bad = [await api_servers(provider, mode="fail"), await api_servers(provider, mode="fail")]
    registry = CollectorRegistry()
    settings = PoolSettings(endpoints=[b.url for b in bad], keys=keys(limits), failure_threshold=10_000,
                            max_attempts=5, retry_ratio=0.1, retry_min_per_second=2.0)
    started = time.monotonic()
    async with ClientPool(settings, registry) as pool:
        results = await gather_calls(100, 10, lambda i: MarketApi(pool).snapshot("SPY"))
    elapsed = time.monotonic() - started
    assert all(isinstance(r, ApiError) for r in results)
    attempts = sum(b.hits for b in bad)
    # Without the budget: 500 attempts. With it: the 100 calls, 10 % of them, 2/s and the starting 2.
    assert 100 <= attempts <= 100 + 10 + 2 * elapsed + 2 + 1, (attempts, elapsed)
    assert sample(registry, "tradeops_api_retry_budget_exhausted_total") > 50


async def test_all_breakers_open_fails_fast_with_a_clear_error(api_servers):
    limits = {"alpha": (1000.0, 100)}
    failing = await api_servers(Provider(limits), mode="fail")
    settings = PoolSettings(endpoints=[failing.url], keys=keys(limits), failure_threshold=2, open_seconds=30.0,
                            retry_min_per_second=100.0)
    async with ClientPool(settings) as pool:
        with pytest.raises(ApiError, match=r"circuit breaker is open .last attempt: server_error"):
            await MarketApi(pool).snapshot("SPY")
        started = time.monotonic()
        with pytest.raises(ApiError, match=r"circuit breaker is open$"):
            await MarketApi(pool).snapshot("SPY")
        assert time.monotonic() - started < 0.5
    assert failing.hits == 2


async def test_an_order_retried_after_a_lost_answer_is_placed_once(api_servers):
    limits = {"alpha": (100.0, 10)}
    provider = Provider(limits)
    flaky, good = await api_servers(provider, mode="fail-after-commit"), await api_servers(provider)
    settings = PoolSettings(endpoints=[flaky.url, good.url], keys=keys(limits))
    async with ClientPool(settings) as pool:
        pool._turn = -1  # the first call goes to the flaky endpoint (ties are broken round the ring)
        ack = await MarketApi(pool).submit_order(OrderTicket(client_order_id="o-1", instrument="SPY", quantity=3))
    assert ack.status == "filled"
    assert flaky.hits == 1
    assert good.hits == 1
    assert list(provider.orders) == ["o-1"]


async def test_a_non_idempotent_call_is_not_sent_twice_after_a_server_error(api_servers):
    limits = {"alpha": (100.0, 10)}
    provider = Provider(limits)
    failing, good = await api_servers(provider, mode="fail"), await api_servers(provider)
    async with ClientPool(PoolSettings(endpoints=[failing.url, good.url], keys=keys(limits))) as pool:
        pool._turn = -1
        with pytest.raises(ApiError, match="server_error after 1 attempt"):
            await pool.request("POST", "/v1/orders", idempotent=False, json_body={},
                               headers={"Idempotency-Key": "x"})
    assert failing.hits == 1
    assert good.hits == 0


async def test_a_saturated_pool_keeps_every_key_busy_in_proportion_to_its_limit(api_servers):
    limits = {"alpha": (20.0, 2), "beta": (5.0, 1)}
    provider = Provider(limits)
    endpoint = await api_servers(provider)
    async with ClientPool(PoolSettings(endpoints=[endpoint.url], keys=keys(limits), deadline_seconds=60.0)) as pool:
        api = MarketApi(pool)
        started = time.monotonic()
        results = await gather_calls(100, 50, lambda i: api.snapshot("SPY"))
        elapsed = time.monotonic() - started
    assert [r for r in results if isinstance(r, Exception)] == []
    assert dict(provider.throttled) == {}
    # 25/s together: about 4 s. Splitting the queue evenly would leave beta's half to drain at 5/s (10 s).
    assert elapsed <= (100 - 3) / 25 * 1.4 + 0.5, elapsed
    assert len(provider.arrivals["alpha"]) >= 3 * len(provider.arrivals["beta"])
