"""Pre-trade controls: each limit refuses what it must and nothing else, they fail closed, the kill switch
lets only risk-reducing orders through; in the engine every rejection is a row, a metric and no fill."""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest

from tests.unit.test_engine import Rows, config, drive
from trading_runtime.config import PreTradeLimits
from trading_runtime.engine import SymbolEngine
from trading_runtime.execution.pretrade import OrderRequest, PreTradeControls, RejectReason
from trading_runtime.metrics import RuntimeMetrics

LIMITS = PreTradeLimits(price_collar=0.05, max_order_quantity=100, max_order_value=50_000,
                        max_orders_per_second=3, duplicate_window_seconds=2.0)


def order(quantity: float = 10, price: float = 5.05, mid: float = 5.0, position: float = 0.0, ts: float = 100.0,
          instrument: str = "SPY-20261218-C-500") -> OrderRequest:
    return OrderRequest(instrument, quantity, price, mid, 100.0, position, ts)


@pytest.mark.parametrize(("request_", "trading", "reason"), [
    (order(), True, None),
    (order(quantity=-10, price=4.95), True, None),
    (order(quantity=101), True, RejectReason.MAX_QUANTITY),
    (order(quantity=-101, price=4.95), True, RejectReason.MAX_QUANTITY),
    (order(quantity=99, price=5.1, mid=5.1), True, RejectReason.MAX_VALUE),  # 99 × 5.1 × 100 = 50 490
    (order(price=5.3), True, RejectReason.PRICE_COLLAR),  # 6 % from the mid
    (order(price=math.nan), True, RejectReason.NO_PRICE),
    (order(mid=0.0), True, RejectReason.NO_PRICE),
    (order(price=-1.0), True, RejectReason.NO_PRICE),
    (order(), False, RejectReason.KILL_SWITCH),
    (order(quantity=-10, price=4.95, position=0), False, RejectReason.KILL_SWITCH),
    (order(quantity=-20, price=4.95, position=10), False, RejectReason.KILL_SWITCH),  # would flip to short
    (order(quantity=-10, price=4.95, position=10), False, None),  # flattening passes the kill switch
    (order(quantity=-10, price=5.5, position=10), False, RejectReason.PRICE_COLLAR),  # ...but not the collar
], ids=["buy", "sell", "quantity", "quantity-sell", "value", "collar", "nan-price", "zero-mid", "negative-price",
        "halted-open", "halted-open-short", "halted-flip", "halted-flatten", "halted-flatten-collar"])
def test_each_limit(request_, trading, reason):
    rejection = PreTradeControls(LIMITS).check(request_, trading)
    assert (rejection.reason if rejection else None) == reason
    if rejection:
        assert rejection.message


def test_throttle_counts_accepted_orders_in_any_one_second():
    controls = PreTradeControls(LIMITS)
    accepted = [controls.check(order(quantity=q, ts=100.0 + q / 100), True) for q in (1, 2, 3)]
    assert accepted == [None, None, None]
    throttled = controls.check(order(quantity=4, ts=100.5), True)
    assert throttled is not None
    assert throttled.reason is RejectReason.THROTTLE
    assert controls.check(order(quantity=5, ts=101.2), True) is None  # the first ones are over a second old


def test_duplicate_order_is_blocked_within_its_window_only():
    controls = PreTradeControls(LIMITS)
    assert controls.check(order(ts=100.0), True) is None
    duplicate = controls.check(order(ts=101.0), True)
    assert duplicate is not None
    assert duplicate.reason is RejectReason.DUPLICATE
    assert controls.check(order(quantity=11, ts=101.0), True) is None  # another quantity is another order
    assert controls.check(order(ts=102.5), True) is None


def test_a_re_entry_after_a_closing_order_is_not_a_duplicate():
    controls = PreTradeControls(LIMITS)
    for quantity, position in ((10, 0), (-10, 10), (10, 0)):
        assert controls.check(order(quantity=quantity, price=5.05 if quantity > 0 else 4.95, position=position,
                                    ts=100.0 + abs(position) / 100), True) is None


def test_rejected_orders_do_not_count_towards_the_throttle():
    controls = PreTradeControls(LIMITS)
    for q in range(5):
        assert controls.check(order(quantity=1000 + q, ts=100.0), True) is not None
    assert controls.check(order(ts=100.0), True) is None


def test_a_control_that_fails_refuses_the_order():
    controls = PreTradeControls(LIMITS)
    controls.limits = None  # type: ignore[assignment]  # what a broken config reload would leave
    rejection = controls.check(order(), True)
    assert rejection is not None
    assert rejection.reason is RejectReason.CONTROL_ERROR


async def test_engine_records_rejections_and_fills_nothing_it_refused():
    rows, metrics = Rows(), RuntimeMetrics("SPY")
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
                                 preTrade={"maxOrderQuantity": 1}), True, metrics, rows, seed=0)
    await drive(engine, 3000)
    rejected = rows.by_table.get("order_rejections", [])
    assert rejected, "orders above one contract must be refused"
    assert {row[7] for row in rejected} == {"max-quantity"}
    assert all(abs(row[5]) > 1 for row in rejected)
    assert all(abs(row[3]) <= 1 for row in rows.by_table.get("fills", []))
    text = generate_latest(metrics.registry).decode()
    assert f'tradeops_order_rejections_total{{reason="max-quantity",symbol="SPY"}} {float(len(rejected))}' in text


async def test_kill_switch_cancels_open_orders_records_its_use_and_only_flattens():
    rows, metrics = Rows(), RuntimeMetrics("SPY")
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}), True,
                          metrics, rows, seed=0)
    await drive(engine, 1500)
    held = engine.broker.held()
    engine.set_trading_enabled(False)
    uses = [row for row in rows.by_table.get("risk_events", []) if row[2] == "kill-switch"]
    assert len(uses) == 1
    assert uses[0][4] == {"cancelled_orders": [], "open_positions": held}
    assert engine.broker.held() == {}
    fills_at_halt = len(rows.by_table.get("fills", []))
    await drive(engine, 1500, seed=1)
    assert len(rows.by_table.get("fills", [])) == fills_at_halt, "nothing may open while halted"


async def test_a_runtime_starting_halted_does_not_record_a_kill_switch_use():
    rows = Rows()
    SymbolEngine(config(), False, RuntimeMetrics("SPY"), rows, seed=0)
    assert rows.count("risk_events") == 0
