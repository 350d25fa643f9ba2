"""The book against the broker at takeover (and at start): the broker is the truth for what it filled.

A leader killed with SIGKILL loses the rows it had not flushed; with a broker over its API those fills happened
all the same. `replay` takes the book as PostgreSQL holds it, the broker's fills of this symbol's instruments
and the broker's positions, and plans the book to trade from in two steps. First every broker fill whose order
the book does not hold is booked — order and fill rows at the broker's price and fee, the position after it —
so the book catches up the way it would have, fill by fill. Then `reconcile` checks the result against the
positions: an instrument whose quantity still differs (a fill older than the listing, a trade made outside the
runtime) takes the broker's quantity (at its average price; the book's realised P&L kept, a positions API does
not report it), each difference named so that it is recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from trading_runtime.execution.paper import Position, apply_fill

TOLERANCE = 1e-9
"""Quantities closer than this are the same (floats summed in a different order)."""


@dataclass(frozen=True)
class BrokerPosition:
    quantity: float
    average_price: float


@dataclass(frozen=True)
class BrokerFill:
    """One execution as the broker lists it; `order_id` is the client order id the runtime sent."""

    order_id: str
    instrument: str
    quantity: float
    """Signed: + bought, − sold."""
    price: float
    fee: float
    ts: float
    """When the broker filled it (epoch seconds, the broker's clock)."""


@dataclass(frozen=True)
class Booked:
    """A broker fill the book did not hold, to record: the fill and the instrument's position after it."""

    fill: BrokerFill
    position: Position


@dataclass(frozen=True)
class Difference:
    """An instrument whose booked quantity is not the broker's: the broker's is adopted."""

    instrument: str
    book: float
    broker: float


@dataclass(frozen=True)
class Reconciled:
    positions: dict[str, Position]
    differences: list[Difference]


def owns(symbol: str, instrument: str) -> bool:
    """Whether `instrument` is traded by the runtime of `symbol`: the underlying itself or one of its options
    (`SPY-20250117-C-450`)."""
    return instrument == symbol or instrument.startswith(f"{symbol}-")


def is_order_id(text: str) -> bool:
    """Whether `text` can be an order id of the runtime's (a UUID)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def reconcile(book: dict[str, Position], broker: dict[str, BrokerPosition]) -> Reconciled:
    """The book to trade from: the broker's quantities where they differ from the book's (an instrument the
    broker does not list is flat there), everything else as booked. Differences come sorted by instrument."""
    positions = {i: Position(p.quantity, p.average_price, p.realized) for i, p in book.items()}
    differences = []
    for instrument in sorted(set(book) | set(broker)):
        booked = book.get(instrument, Position())
        held = broker.get(instrument, BrokerPosition(0.0, 0.0))
        if abs(booked.quantity - held.quantity) <= TOLERANCE:
            continue
        differences.append(Difference(instrument, booked.quantity, held.quantity))
        average = held.average_price if held.quantity else 0.0
        positions[instrument] = Position(held.quantity, average, booked.realized)
    return Reconciled(positions, differences)


@dataclass(frozen=True)
class Replayed:
    """The plan of a takeover: fills to book (in the broker's order), the fees they add, and the positions to
    trade from after the positions check, with the differences it still found."""

    booked: list[Booked]
    fees: float
    positions: dict[str, Position]
    differences: list[Difference]


def replay(book: dict[str, Position], booked_orders: set[str], fills: list[BrokerFill],
           broker: dict[str, BrokerPosition], multipliers: dict[str, float]) -> Replayed:
    """Book every fill of `fills` (the broker's, oldest first) whose order is not in `booked_orders` and whose
    client order id is one the runtime sends (a UUID: `execution/ids.py`), applied to `book` in turn (realised
    P&L at each instrument's contract multiplier, 1 by default); then `reconcile` the result with the broker's
    positions. A fill listed twice is booked once."""
    positions = {i: Position(p.quantity, p.average_price, p.realized) for i, p in book.items()}
    booked: list[Booked] = []
    seen = set(booked_orders)
    for fill in fills:
        if fill.order_id in seen or not is_order_id(fill.order_id):
            continue  # booked already, or not the runtime's (its ids are UUIDs): left to the positions check
        seen.add(fill.order_id)
        position = positions.setdefault(fill.instrument, Position())
        apply_fill(position, fill.quantity, fill.price, multipliers.get(fill.instrument, 1.0))
        booked.append(Booked(fill, Position(position.quantity, position.average_price, position.realized)))
    checked = reconcile(positions, broker)
    return Replayed(booked, sum(b.fill.fee for b in booked), checked.positions, checked.differences)
