"""Fencing by time (trading_runtime/execution/fencing.py): the expiry an order carries, the wait a new leader
computes from the lease timings, the broker adapter's use of them (execution/http_broker.py), and the paper
broker's refusal of an order received after its expiry (devstack/paper_broker.py, over HTTP on a local port)."""

from __future__ import annotations

import datetime
import math
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from devstack.paper_broker import KeyLimit, PaperBroker
from tests.unit.test_broker_config import runtime_for
from trading_runtime.config import BrokerApi, RuntimeConfig, api_key_env
from trading_runtime.execution.fencing import fence_wait, order_expiry
from trading_runtime.execution.http_broker import HttpBroker
from trading_runtime.execution.paper import OrderResult
from trading_runtime.gateway.market_api import OrderAck, OrderTicket
from trading_runtime.gateway.pool import ApiError
from trading_runtime.leadership import LeaseTimings
from trading_runtime.main import Runtime

SECRET = "s3cret"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.mark.parametrize(
    ("timings", "skew", "read_timeout", "wait"),
    [
        pytest.param(LeaseTimings(5, 4.0, 1.0), 0.5, 2.0, 1.5, id="runtime-defaults"),
        pytest.param(LeaseTimings(3, 2.0, 0.5), 0.5, 1.0, 0.5, id="test-timings"),
        pytest.param(LeaseTimings(15, 10.0, 2.0), 0.5, 2.0, 0.0, id="client-go-defaults-margin-covers-skew"),
        pytest.param(LeaseTimings(5, 4.0, 1.0), 3.0, 2.0, 4.0, id="large-skew-waits-longer"),
        pytest.param(LeaseTimings(5, 4.0, 1.0), 0.0, 0.0, 0.0, id="no-skew-instant-reads"),
    ],
)
def test_a_new_leader_waits_until_the_old_leaders_last_possible_expiry(timings, skew, read_timeout, wait):
    assert fence_wait(timings, skew, read_timeout) == pytest.approx(wait)


def test_the_wait_grows_one_for_one_with_the_renew_deadline_and_the_skew():
    base = fence_wait(LeaseTimings(6, 4.0, 1.0), 0.5, 2.0)
    assert base > 0
    assert fence_wait(LeaseTimings(6, 5.0, 1.0), 0.5, 2.0) == pytest.approx(base + 1.0)
    assert fence_wait(LeaseTimings(6, 4.0, 1.0), 1.5, 2.0) == pytest.approx(base + 1.0)
    assert fence_wait(LeaseTimings(7, 4.0, 1.0), 0.5, 2.0) == pytest.approx(base - 0.5)


def test_a_negative_skew_is_refused():
    with pytest.raises(ValueError, match="cannot be negative"):
        fence_wait(LeaseTimings(), -1.0, 1.0)


@pytest.mark.parametrize(
    ("now", "deadline", "call_deadline", "expiry"),
    [
        pytest.param(100.0, 103.0, 10.0, 1003.0, id="lease-deadline-first"),
        pytest.param(100.0, 130.0, 10.0, 1010.0, id="call-deadline-first"),
        pytest.param(100.0, math.inf, 10.0, 1010.0, id="alone-call-deadline"),
        pytest.param(100.0, 100.0, 10.0, None, id="at-the-deadline-nothing-sent"),
        pytest.param(100.0, 99.0, 10.0, None, id="past-the-deadline-nothing-sent"),
        pytest.param(100.0, None, 10.0, None, id="not-leading-nothing-sent"),
    ],
)
def test_an_order_expires_at_the_senders_lease_deadline_at_the_latest(now, deadline, call_deadline, expiry):
    assert order_expiry(now, 1000.0, deadline, call_deadline) == expiry


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()


@pytest.fixture
async def broker():
    paper = PaperBroker({SECRET: KeyLimit("alpha", 1000.0, 100)}, clock=Clock(1_000_000.0))
    paper.book.snapshots["SPY"] = {"underlying": {"instrument": "SPY", "bid": 99.0, "ask": 101.0}, "options": []}
    client = TestClient(TestServer(paper.app()))
    await client.start_server()
    try:
        yield paper, client
    finally:
        await client.close()


async def order(client: TestClient, order_id: str, expire_at: str | None, quantity: float = 5) -> dict:
    body = {"clientOrderId": order_id, "instrument": "SPY", "quantity": quantity}
    if expire_at is not None:
        body["expireAt"] = expire_at
    answer = await client.post("/v1/orders", json=body, headers=AUTH)
    return await answer.json()


async def test_an_order_received_after_its_expiry_is_refused_as_expired_and_never_filled(broker):
    paper, client = broker
    late = await order(client, "o-late", stamp(paper.clock() - 0.001))
    assert late["status"] == "expired"
    assert "expired" in late["reason"]
    assert paper.held == {}
    assert paper.fills == []
    assert [e["clientOrderId"] for e in paper.expired] == ["o-late"]
    positions = await (await client.get("/v1/positions", headers=AUTH)).json()
    assert positions == []


async def test_an_order_before_its_expiry_fills_and_without_expiry_too(broker):
    paper, client = broker
    assert (await order(client, "o-1", stamp(paper.clock() + 1.0)))["status"] == "filled"
    assert (await order(client, "o-2", None, quantity=-2))["status"] == "filled"
    assert paper.held["SPY"].quantity == 3


async def test_an_expired_order_leaves_its_id_free_and_a_filled_one_keeps_its_first_answer(broker):
    paper, client = broker
    assert (await order(client, "o-1", stamp(paper.clock() - 1.0)))["status"] == "expired"
    filled = await order(client, "o-1", stamp(paper.clock() + 1.0))
    assert filled["status"] == "filled"
    # The same id again, even expired: the first answer, nothing filled twice.
    assert (await order(client, "o-1", stamp(paper.clock() - 5.0))) == filled
    assert paper.held["SPY"].quantity == 5
    assert paper.served["order-again"] == 1


async def test_an_expiry_without_an_offset_is_a_clear_error(broker):
    _, client = broker
    answer = await client.post("/v1/orders", headers=AUTH,
                               json={"clientOrderId": "o", "instrument": "SPY", "quantity": 1,
                                     "expireAt": "2026-01-01T00:00:00"})
    assert answer.status == 400
    assert "RFC 3339" in (await answer.json())["error"]


async def test_fills_are_listed_by_time_and_symbol_with_their_fees(broker):
    paper, client = broker
    await order(client, "o-1", None)
    paper.clock.now += 10
    await order(client, "o-2", None, quantity=-1)
    paper.book.snapshots["QQQ"] = {"underlying": {"instrument": "QQQ", "bid": 9.0, "ask": 11.0}, "options": []}
    await client.post("/v1/orders", json={"clientOrderId": "q", "instrument": "QQQ", "quantity": 1}, headers=AUTH)
    listed = await (await client.get("/v1/fills", params={"since": stamp(paper.clock() - 5), "symbol": "SPY"},
                                     headers=AUTH)).json()
    assert [(f["clientOrderId"], f["quantity"], f["price"], f["fee"]) for f in listed] == [
        ("o-2", -1.0, 99.0, 0.005)
    ]
    everything = await (await client.get("/v1/fills", params={"since": stamp(0)}, headers=AUTH)).json()
    assert [f["clientOrderId"] for f in everything] == ["o-1", "o-2", "q"]
    missing = await client.get("/v1/fills", headers=AUTH)
    assert missing.status == 400


class Api:
    """The broker's API as `HttpBroker` calls it: answers each ticket with `answer(ticket)`, recording it."""

    def __init__(self, answer) -> None:
        self.tickets: list[OrderTicket] = []
        self.answer = answer

    async def submit_order(self, ticket: OrderTicket) -> OrderAck:
        self.tickets.append(ticket)
        return self.answer(ticket)


def http_broker(api: Api, expiry) -> tuple[HttpBroker, list[OrderResult]]:
    results: list[OrderResult] = []
    broker = HttpBroker(api=api, order_timeout=1.0, on_result=results.append, expiry=expiry)  # type: ignore[arg-type]
    broker.quote("SPY", 99.0, 101.0)
    return broker, results


async def test_each_order_carries_the_expiry_given_when_it_is_sent():
    api = Api(lambda t: OrderAck(client_order_id=t.client_order_id, status="filled", price=101.0, fee=0.01))
    broker, results = http_broker(api, lambda: 1_000_003.25)
    broker.submit("SPY", 2, 0.0, order_id="o-1")
    await broker.drain(5)
    assert api.tickets[0].expire_at == datetime.datetime.fromtimestamp(1_000_003.25, datetime.UTC)
    assert api.tickets[0].model_dump(by_alias=True, mode="json", exclude_none=True)["expireAt"].endswith("Z")
    assert results[0].outcome == "filled"


async def test_past_the_deadline_nothing_is_sent_and_the_order_is_unsent():
    api = Api(lambda t: pytest.fail("an order was sent past the lease's deadline"))
    broker, results = http_broker(api, lambda: None)
    broker.submit("SPY", 2, 0.0, order_id="o-1")
    await broker.drain(5)
    assert api.tickets == []
    assert (results[0].outcome, results[0].reason) == ("unsent", "not sent: the lease's renew deadline passed")


async def test_an_order_the_broker_calls_expired_is_a_rejection_not_a_fill():
    api = Api(lambda t: OrderAck(client_order_id=t.client_order_id, status="expired", reason="expired: late"))
    broker, results = http_broker(api, lambda: 1.0)
    broker.submit("SPY", 2, 0.0, order_id="o-1")
    await broker.drain(5)
    assert (results[0].outcome, results[0].fill, results[0].reason) == ("rejected", None, "expired: late")
    assert broker.held() == {}


async def test_an_unanswered_attempt_is_remembered_until_its_expiry():
    expiries = iter([500.0, 700.0])

    def lost(ticket: OrderTicket) -> OrderAck:
        raise ApiError("timeout", sent=True)

    broker, results = http_broker(Api(lost), lambda: next(expiries, None))
    broker.submit("SPY", 2, 0.0, order_id="o-1")
    await broker.drain(5)
    assert broker.quiet_at == 700.0  # the later of the two attempts that may still be on the wire
    assert results[0].outcome == "unknown"


async def test_without_expiry_orders_carry_none():
    api = Api(lambda t: OrderAck(client_order_id=t.client_order_id, status="filled", price=101.0, fee=0.01))
    broker, _ = http_broker(api, None)
    broker.submit("SPY", 2, 0.0, order_id="o-1")
    await broker.drain(5)
    assert "expireAt" not in api.tickets[0].model_dump(by_alias=True, mode="json", exclude_none=True)


def runtime_with_broker(tmp_path, monkeypatch, **section) -> Runtime:
    monkeypatch.setenv(api_key_env("alpha"), "a-secret")
    broker_api = {"endpoints": ["https://broker.example"], "deadlineSeconds": 5,
                  "keys": [{"name": "alpha", "secretKeyRef": {"name": "k", "key": "alpha"}, "ratePerSecond": 5}],
                  **section}
    return runtime_for(tmp_path, RuntimeConfig(broker=BrokerApi.model_validate(broker_api)))


async def test_a_runtime_alone_gives_its_orders_the_calls_deadline_and_none_without_expiry(tmp_path, monkeypatch):
    runtime = runtime_with_broker(tmp_path, monkeypatch)
    assert runtime.broker is not None
    assert runtime.broker.expiry is not None
    assert runtime.broker.expiry() == pytest.approx(time.time() + 5, abs=0.5)
    without = runtime_with_broker(tmp_path, monkeypatch, orderExpiry=False)
    assert without.broker is not None
    assert without.broker.expiry is None


async def test_a_stopping_leader_waits_for_its_unanswered_orders_to_expire_before_it_releases(tmp_path,
                                                                                              monkeypatch):
    runtime = runtime_with_broker(tmp_path, monkeypatch, maxClockSkewSeconds=0.1)
    assert runtime.broker is not None
    runtime.broker.quiet_at = time.time() + 0.3
    started = time.monotonic()
    await runtime._quiet()
    assert time.monotonic() - started >= 0.38
    runtime.broker.quiet_at = time.time() - 1.0  # long expired: no wait
    started = time.monotonic()
    await runtime._quiet()
    assert time.monotonic() - started < 0.1
