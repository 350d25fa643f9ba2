"""The engine as a hot standby and as a new leader (trading_runtime/engine.py, execution/ids.py): a standby
decides the same signals as the leader on the same feed and orders nothing; promoted, it takes over the book
and re-issues its view's orders under the very ids the leader used."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_engine import Rows, config, drive
from trading_runtime.engine import SymbolEngine
from trading_runtime.execution import ids
from trading_runtime.execution.paper import Position
from trading_runtime.execution.pretrade import PreTradeControls
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics

STRATEGY = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}}


def engine(rows: Rows, active: bool = True) -> SymbolEngine:
    built = SymbolEngine(config(**STRATEGY), True, RuntimeMetrics("SPY"), rows, seed=0)
    built.active = active
    return built


async def test_a_standby_decides_what_the_leader_decides_and_orders_nothing():
    leader_rows, standby_rows = Rows(), Rows()
    leader, standby = engine(leader_rows), engine(standby_rows, active=False)
    await drive(leader, 1500)
    await drive(standby, 1500)
    assert leader_rows.count("orders") > 0
    assert standby_rows.count("orders") == standby_rows.count("fills") == 0
    assert standby.broker.held() == {}
    # Same feed, same decisions, same ids: the signal ids are deterministic.
    assert [r[0] for r in standby_rows.by_table["signals"]] == [r[0] for r in leader_rows.by_table["signals"]]


async def test_a_promoted_standby_takes_over_the_book_and_never_repeats_a_booked_order():
    leader_rows, standby_rows = Rows(), Rows()
    leader, standby = engine(leader_rows), engine(standby_rows, active=False)
    await drive(leader, 1500)
    await drive(standby, 1500)
    book = {i: Position(p.quantity, p.average_price, p.realized) for i, p in leader.broker.positions.items()}
    assert leader.broker.held()
    standby.promote(book, leader.broker.fees)
    # The view's signal is written again (its orders reference it), under the leader's id.
    assert standby_rows.by_table["signals"][-1][0] == leader_rows.by_table["signals"][-1][0]
    # Whatever it orders is new (its own sizing may differ), never one of the booked orders again...
    leader_ids = {r[0] for r in leader_rows.by_table["orders"]}
    assert not {r[0] for r in standby_rows.by_table.get("orders", [])} & leader_ids
    # ...and it starts from the book: its positions are the book's plus its own fills.
    mine: dict[str, float] = {}
    orders = {r[0]: r[3] for r in standby_rows.by_table.get("orders", [])}
    for fill in standby_rows.by_table.get("fills", []):
        mine[orders[fill[2]]] = mine.get(orders[fill[2]], 0.0) + fill[3]
    for instrument in set(book) | set(mine):
        expected = book.get(instrument, Position()).quantity + mine.get(instrument, 0.0)
        assert standby.broker.position(instrument).quantity == pytest.approx(expected)


class Snapshots(Rows):
    """Rows, and the broker's book as it stood when each signal was recorded (before its orders)."""

    def __init__(self) -> None:
        super().__init__()
        self.engine: SymbolEngine | None = None
        self.book: tuple[dict[str, Position], float] = ({}, 0.0)

    def __call__(self, table, row) -> None:
        if table == "signals" and self.engine is not None:
            broker = self.engine.broker
            self.book = ({i: Position(p.quantity, p.average_price, p.realized) for i, p in broker.positions.items()},
                         broker.fees)
        super().__call__(table, row)


async def test_a_replayed_decision_places_its_order_under_the_same_id():
    """A leader's last orders never reached the book (lost with an unflushed batch): a replica that takes over
    with the same view and the same sizing sends them again under the same ids — a broker or a database that
    did see them keeps them once. The same engine state stands for that replica (demoted, then promoted with
    the book as it was before those orders)."""
    rows = Snapshots()
    trader = engine(rows)
    rows.engine = trader
    simulator = MarketSimulator(["SPY"], seed=0, option_quotes_per_tick=1, trade_probability=0.6)
    await settle(trader.on_message(parse_message(json.dumps({**simulator.snapshot("SPY"), "seq": 0}))))
    seq, placed = 0, 0
    while placed < 3:  # stop right after a decision that sent orders, the third one
        before = rows.count("orders")
        for message in simulator.tick("SPY", 0.25):
            seq += 1
            await settle(trader.on_message(parse_message(json.dumps({**message, "seq": seq}))))
        placed += rows.count("orders") > before
        assert seq < 50_000, "no decision sent orders"
    last_signal = rows.by_table["signals"][-1][0]
    last_orders = [r for r in rows.by_table["orders"] if r[7] == last_signal]
    assert last_orders
    positions, fees = rows.book
    trader.demote()
    # Another process: its pre-trade controls never saw the old leader's order (their duplicate guard would).
    trader.controls = PreTradeControls(trader.config.runtime.pre_trade)
    sent = rows.count("orders")
    trader.promote(positions, fees)
    replayed = rows.by_table["orders"][sent:]
    assert len(replayed) == len(last_orders)
    assert [r[0] for r in replayed] == [r[0] for r in last_orders]
    assert [r[5] for r in replayed] == [r[5] for r in last_orders]


async def test_demotion_stops_orders_and_leaves_no_positions_of_its_own():
    rows = Rows()
    trader = engine(rows)
    await drive(trader, 1000)
    trader.demote()
    before = rows.count("orders")
    await drive(trader, 500, seed=3)
    assert rows.count("orders") == before
    assert trader.broker.open_positions() == 0


@pytest.mark.parametrize(("a", "b"), [
    (("SPY", 1.5, 10, 1), ("SPY", 1.5, 10, -1)),
    (("SPY", 1.5, 10, 1), ("SPY", 1.5, 11, 1)),
    (("SPY", 1.5, 10, 1), ("QQQ", 1.5, 10, 1)),
    (("SPY", 1.5, 10, 1), ("SPY", 1.25, 10, 1)),
], ids=["direction", "message", "symbol", "exchange-time"])
def test_signal_ids_are_deterministic_and_tell_decisions_apart(a, b):
    assert ids.signal_id(*a) == ids.signal_id(*a)
    assert ids.signal_id(*a) != ids.signal_id(*b)
    decision = ids.signal_id(*a)
    assert ids.order_id(decision, "SPY C500", 2) == ids.order_id(decision, "SPY C500", 2.0)
    assert ids.order_id(decision, "SPY C500", 2) != ids.order_id(decision, "SPY P500", 2)
    assert ids.order_id(decision, "SPY C500", 2) != ids.order_id(decision, "SPY C500", 3)  # sized differently
    assert ids.fill_id(ids.order_id("x", "i", 1)) == ids.fill_id(ids.order_id("x", "i", 1))
