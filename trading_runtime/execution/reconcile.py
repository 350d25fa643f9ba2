"""The book against the broker at takeover (and at start): the broker is the truth for what it filled.

A leader killed with SIGKILL loses the rows it had not flushed; with a broker over its API those fills happened
all the same. `reconcile` takes the book as PostgreSQL holds it and the broker's positions of this symbol's
instruments, and gives the book to trade from: the broker's quantity for every instrument where the two differ
(at the broker's average price), the book's realised P&L kept (a positions API does not report it), and each
difference named so that it is recorded."""

from __future__ import annotations

from dataclasses import dataclass

from trading_runtime.execution.paper import Position

TOLERANCE = 1e-9
"""Quantities closer than this are the same (floats summed in a different order)."""


@dataclass(frozen=True)
class BrokerPosition:
    quantity: float
    average_price: float


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
