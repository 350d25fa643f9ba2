"""The book against the broker at takeover (trading_runtime/execution/reconcile.py): the broker's fills the book
does not hold replayed onto it, then the positions check; the engine recording what it booked and adopted, and
the paper broker's positions (devstack/paper_broker.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.paper_broker import Holding
from tests.unit.test_engine import Rows, config, drive
from trading_runtime.engine import SymbolEngine
from trading_runtime.execution import ids
from trading_runtime.execution.paper import Position, apply_fill
from trading_runtime.execution.reconcile import (
    Booked,
    BrokerFill,
    BrokerPosition,
    Difference,
    owns,
    reconcile,
    replay,
)
from trading_runtime.metrics import RuntimeMetrics

CASES = [
    pytest.param(
        {"SPY": Position(10, 100.0, 5.0)},
        {"SPY": BrokerPosition(10, 100.0)},
        {"SPY": Position(10, 100.0, 5.0)},
        [],
        id="agree",
    ),
    pytest.param(
        {"SPY": Position(10, 100.0, 5.0)},
        {"SPY": BrokerPosition(25, 101.0)},
        {"SPY": Position(25, 101.0, 5.0)},
        [Difference("SPY", 10, 25)],
        id="unflushed-buy-adopted",
    ),
    pytest.param(
        {},
        {"SPY-20250117-C-450": BrokerPosition(-2, 3.5)},
        {"SPY-20250117-C-450": Position(-2, 3.5, 0.0)},
        [Difference("SPY-20250117-C-450", 0, -2)],
        id="never-booked",
    ),
    pytest.param(
        {"SPY": Position(10, 100.0, 5.0)},
        {},
        {"SPY": Position(0, 0.0, 5.0)},
        [Difference("SPY", 10, 0)],
        id="closed-at-broker-keeps-realised",
    ),
    pytest.param({"SPY": Position(0, 0.0, 7.0)}, {}, {"SPY": Position(0, 0.0, 7.0)}, [], id="flat-both"),
    pytest.param(
        {"SPY": Position(0.1 + 0.2, 100.0, 0.0)},
        {"SPY": BrokerPosition(0.3, 100.0)},
        {"SPY": Position(0.1 + 0.2, 100.0, 0.0)},
        [],
        id="float-noise-is-agreement",
    ),
    pytest.param(
        {"B": Position(1, 1.0), "A": Position(1, 1.0)},
        {"A": BrokerPosition(2, 1.0)},
        {"A": Position(2, 1.0), "B": Position(0, 0.0)},
        [Difference("A", 1, 2), Difference("B", 1, 0)],
        id="sorted-differences",
    ),
]


@pytest.mark.parametrize(("book", "broker", "positions", "differences"), CASES)
def test_reconcile_adopts_the_brokers_quantity_and_names_each_difference(book, broker, positions, differences):
    reconciled = reconcile(book, broker)
    assert reconciled.positions == positions
    assert reconciled.differences == differences


def test_reconcile_does_not_change_the_book_it_was_given():
    book = {"SPY": Position(1, 1.0)}
    reconcile(book, {"SPY": BrokerPosition(3, 2.0)})
    assert book == {"SPY": Position(1, 1.0)}


@pytest.mark.parametrize(
    ("instrument", "owned"),
    [("SPY", True), ("SPY-20250117-C-450", True), ("SPYG", False), ("QQQ", False), ("QQQ-20250117-P-400", False)],
)
def test_a_runtime_owns_its_underlying_and_its_options(instrument, owned):
    assert owns("SPY", instrument) is owned


async def warm_standby(rows: Rows, metrics: RuntimeMetrics) -> SymbolEngine:
    """A standby that has seen 200 ticks, its kill switch on: promoted, it takes the book over and orders
    nothing, so the rows are what the takeover recorded."""
    engine = SymbolEngine(
        config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}), False, metrics, rows, seed=0
    )
    engine.active = False
    await drive(engine, 200)
    return engine


async def test_a_new_leader_records_every_adopted_difference_as_a_risk_event_and_a_position():
    rows = Rows()
    metrics = RuntimeMetrics("SPY")
    engine = await warm_standby(rows, metrics)
    reconciled = reconcile({"SPY": Position(10, 100.0, 2.0)}, {"SPY": BrokerPosition(30, 101.0)})
    engine.promote(reconciled.positions, 0.0, reconciled.differences)
    assert engine.broker.position("SPY") == Position(30, 101.0, 2.0)
    event = next(r for r in rows.by_table["risk_events"] if r[2] == "book-reconciled")
    assert event[3] == "critical"
    assert event[4] == {"instrument": "SPY", "book": 10, "broker": 30}
    assert rows.by_table["positions"][0][2:] == ("SPY", 30, 101.0, 2.0)
    assert (
        metrics.registry.get_sample_value("tradeops_book_reconciled_total", {"symbol": "SPY", "instrument": "SPY"})
        == 1.0
    )


async def test_a_new_leader_whose_book_agrees_records_nothing():
    rows = Rows()
    engine = SymbolEngine(config(), True, RuntimeMetrics("SPY"), rows, seed=0)
    engine.promote({"SPY": Position(10, 100.0)}, 0.0, [])
    assert "risk_events" not in rows.by_table
    assert "positions" not in rows.by_table


@pytest.mark.parametrize(
    ("fills", "quantity", "average"),
    [
        pytest.param([(10, 100.0), (10, 110.0)], 20, 105.0, id="grows"),
        pytest.param([(10, 100.0), (-4, 120.0)], 6, 100.0, id="shrinks-keeps-average"),
        pytest.param([(10, 100.0), (-15, 90.0)], -5, 90.0, id="flips-restarts"),
        pytest.param([(10, 100.0), (-10, 90.0)], 0, 0.0, id="closes"),
        pytest.param([(-3, 50.0), (-1, 54.0)], -4, 51.0, id="short-grows"),
    ],
)
def test_the_paper_brokers_holdings_follow_a_brokers_average_entry_price(fills, quantity, average):
    holding = Holding()
    for filled, price in fills:
        holding.add(filled, price)
    assert holding.quantity == quantity
    assert holding.average_price == pytest.approx(average)


O1, O2, O3, O4 = (ids.order_id("decision", "SPY", float(n)) for n in range(4))


def fill(order_id: str, quantity: float, price: float, instrument: str = "SPY", fee: float = 0.01) -> BrokerFill:
    return BrokerFill(order_id, instrument, quantity, price, fee, 1000.0)


def test_a_lost_tail_of_fills_is_booked_in_order_and_explains_the_brokers_position():
    book = {"SPY": Position(10, 100.0, 0.0)}
    fills = [fill(O1, 10, 100.0), fill(O2, 5, 106.0, fee=0.025), fill(O3, -15, 104.0, fee=0.075)]
    plan = replay(book, {O1}, fills, {}, {})
    assert [b.fill.order_id for b in plan.booked] == [O2, O3]
    assert plan.booked[0].position == Position(15, pytest.approx(102.0), 0.0)
    assert plan.booked[1].position == Position(0, 0.0, pytest.approx(15 * 2.0))
    assert plan.fees == pytest.approx(0.1)
    assert plan.differences == []
    assert plan.positions["SPY"] == Position(0, 0.0, pytest.approx(30.0))
    assert book == {"SPY": Position(10, 100.0, 0.0)}  # the book given is not changed


def test_a_difference_left_after_the_fills_is_named_and_the_brokers_quantity_adopted():
    # A fill older than the listing (or a trade outside the runtime): replaying cannot explain it.
    plan = replay({"SPY": Position(10, 100.0, 0.0)}, set(), [fill(O2, 5, 102.0)], {"SPY": BrokerPosition(20, 101.0)},
                  {})
    assert [b.fill.order_id for b in plan.booked] == [O2]
    assert plan.differences == [Difference("SPY", 15, 20)]
    assert plan.positions["SPY"] == Position(20, 101.0, 0.0)


def test_a_fill_listed_twice_and_one_not_the_runtimes_are_not_booked():
    fills = [fill(O2, 5, 100.0), fill(O2, 5, 100.0), fill("manual-ticket-7", 1, 100.0)]
    plan = replay({}, set(), fills, {"SPY": BrokerPosition(6, 100.0)}, {})
    assert [b.fill.order_id for b in plan.booked] == [O2]
    assert plan.differences == [Difference("SPY", 5, 6)]


def test_an_options_fill_realises_pnl_at_its_contract_multiplier():
    option = "SPY-20250117-C-450"
    book = {option: Position(-2, 3.5, 0.0)}
    plan = replay(book, set(), [fill(O4, 2, 3.0, instrument=option)], {}, {option: 100.0})
    assert plan.booked == [Booked(fill(O4, 2, 3.0, instrument=option), Position(0, 0.0, pytest.approx(100.0)))]
    assert plan.differences == []


def test_nothing_to_replay_when_the_book_holds_every_fill():
    plan = replay({"SPY": Position(5, 100.0)}, {O1}, [fill(O1, 5, 100.0)], {"SPY": BrokerPosition(5, 100.0)}, {})
    assert plan.booked == []
    assert plan.differences == []
    assert plan.fees == 0.0


async def test_a_new_leader_books_the_replayed_fills_with_their_exact_price_and_fee():
    rows = Rows()
    metrics = RuntimeMetrics("SPY")
    engine = await warm_standby(rows, metrics)
    plan = replay({}, set(), [fill(O2, 5, 102.0, fee=0.025)], {"SPY": BrokerPosition(5, 102.0)}, {})
    engine.promote(plan.positions, 1.0 + plan.fees, plan.differences, plan.booked)
    order_row, = rows.by_table["orders"]
    assert order_row[0] == O2
    assert order_row[3:6] == ("SPY", "buy", 5)
    assert rows.by_table["fills"] == [(ids.fill_id(O2), order_row[1], O2, 5, 102.0, 0.025)]
    assert rows.by_table["positions"][0][2:] == ("SPY", 5, 102.0, 0.0)
    event = next(r for r in rows.by_table["risk_events"] if r[2] == "fills-replayed")
    assert event[4]["fills"][0]["order_id"] == O2
    assert engine.broker.fees == pytest.approx(1.025)
    assert metrics.registry.get_sample_value("tradeops_fills_replayed_total", {"symbol": "SPY"}) == 1.0
    assert metrics.registry.get_sample_value("tradeops_book_reconciled_total",
                                             {"symbol": "SPY", "instrument": "SPY"}) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["SPY", "SPY-20250117-C-450"]),
                  st.integers(-20, 20).filter(bool), st.integers(9000, 11000)),
        min_size=1, max_size=30,
    ),
    st.data(),
)
def test_replaying_the_unflushed_tail_gives_the_book_the_broker_has(trades, data):
    """Whatever the old leader flushed (a prefix of its fills), the replay of the rest ends where the broker is,
    with no difference left to adopt and every missing fill booked once."""
    multipliers = {"SPY": 1.0, "SPY-20250117-C-450": 100.0}
    fills = [fill(ids.order_id("d", instrument, float(n)), quantity, price / 100, instrument=instrument)
             for n, (instrument, quantity, price) in enumerate(trades)]
    flushed = data.draw(st.integers(0, len(fills)))
    broker = {}
    for f in fills:
        broker.setdefault(f.instrument, Holding()).add(f.quantity, f.price)
    book: dict[str, Position] = {}
    for f in fills[:flushed]:
        apply_fill(book.setdefault(f.instrument, Position()), f.quantity, f.price, multipliers[f.instrument])
    held = {i: BrokerPosition(h.quantity, h.average_price) for i, h in broker.items() if h.quantity}
    plan = replay(book, {f.order_id for f in fills[:flushed]}, fills, held, multipliers)
    assert [b.fill for b in plan.booked] == fills[flushed:]
    assert plan.differences == []
    assert plan.fees == pytest.approx(sum(f.fee for f in fills[flushed:]))
    everything: dict[str, Position] = {}
    for f in fills:
        apply_fill(everything.setdefault(f.instrument, Position()), f.quantity, f.price, multipliers[f.instrument])
    for instrument, position in everything.items():
        assert plan.positions[instrument].quantity == pytest.approx(position.quantity)
        assert plan.positions[instrument].realized == pytest.approx(position.realized)
