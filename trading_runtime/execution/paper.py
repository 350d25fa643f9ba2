"""Paper trading: orders filled against the current quote (buys at the ask, sells at the bid — the spread
is paid), with a per-unit fee; positions, average price and realised/unrealised P&L tracked per
instrument, in currency (price × quantity × the instrument's contract multiplier, e.g. 100 for equity
options). `Broker` is the interface a live broker adapter implements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class Fill:
    order_id: str
    instrument: str
    quantity: float  # signed: + bought, − sold
    price: float
    fee: float
    ts: float


@dataclass(frozen=True)
class Working:
    """An order sent and not yet answered (a broker over the network): its result comes later, through the
    broker's `on_result`."""

    order_id: str


Outcome = Literal["filled", "rejected", "unsent", "unknown"]


@dataclass(frozen=True)
class OrderResult:
    """How a working order ended (a broker over the network, `execution/http_broker.py`)."""

    order_id: str
    instrument: str
    quantity: float
    fill: Fill | None
    outcome: Outcome
    """Filled (`fill`), refused by the broker, never reached it, or unknown (no answer in time)."""
    reason: str = ""
    position: Position | None = None
    """The instrument's filled position after the fill (the book's row: other working orders not counted)."""


@dataclass
class Position:
    quantity: float = 0.0
    average_price: float = 0.0
    realized: float = 0.0


class Broker(Protocol):
    """What the engine needs of a broker: quotes in, market orders, positions and P&L out. `PaperBroker`
    trades on paper live; the backtester's simulated broker adds slippage and latency."""

    quotes: dict[str, tuple[float, float]]
    """Latest (bid, ask) per instrument."""
    multipliers: dict[str, float]
    """Contract multiplier per instrument."""

    def quote(self, instrument: str, bid: float, ask: float, multiplier: float = 1.0) -> None: ...

    def submit(self, instrument: str, quantity: float, ts: float,
               order_id: str | None = None) -> Fill | Working | None:
        """A market order for a signed quantity: its fill; `Working` when its result comes later; None when
        nothing was sent or nothing filled. `order_id` is the client order id (deterministic: a broker refuses a
        second order with the same one)."""
        ...

    def restore(self, positions: dict[str, Position], fees: float) -> None:
        """Take over positions and fees from the book (a new leader)."""
        ...

    def position(self, instrument: str) -> Position: ...

    def cancel_all(self) -> list[str]:
        """Cancel every open (unfilled) order; returns their ids (the kill switch calls it)."""
        ...

    def held(self) -> dict[str, float]: ...

    def realized(self) -> float: ...

    def unrealized(self) -> float: ...

    def open_positions(self) -> int: ...


@dataclass
class PaperBroker:
    fee_per_unit: float = 0.005
    quotes: dict[str, tuple[float, float]] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    multipliers: dict[str, float] = field(default_factory=dict)
    fees: float = 0.0

    def quote(self, instrument: str, bid: float, ask: float, multiplier: float = 1.0) -> None:
        self.quotes[instrument] = (bid, ask)
        self.multipliers[instrument] = multiplier

    def position(self, instrument: str) -> Position:
        return self.positions.setdefault(instrument, Position())

    def cancel_all(self) -> list[str]:
        """Paper orders fill at once against the quote: none is ever open to cancel."""
        return []

    def restore(self, positions: dict[str, Position], fees: float) -> None:
        self.positions = {instrument: Position(p.quantity, p.average_price, p.realized)
                          for instrument, p in positions.items()}
        self.fees = fees

    def submit(self, instrument: str, quantity: float, ts: float,
               order_id: str | None = None) -> Fill | Working | None:
        """A market order for a signed quantity, filled at once; None when there is no quote to trade against."""
        if quantity == 0 or instrument not in self.quotes:
            return None
        bid, ask = self.quotes[instrument]
        price = ask if quantity > 0 else bid
        fee = abs(quantity) * self.fee_per_unit
        self.fees += fee
        self._apply(self.position(instrument), quantity, price, self.multipliers.get(instrument, 1.0))
        return Fill(order_id or str(uuid.uuid4()), instrument, quantity, price, fee, ts)

    @staticmethod
    def _apply(position: Position, quantity: float, price: float, multiplier: float) -> None:
        apply_fill(position, quantity, price, multiplier)

    def unrealized(self) -> float:
        total = 0.0
        for instrument, position in self.positions.items():
            if position.quantity and instrument in self.quotes:
                bid, ask = self.quotes[instrument]
                mark = bid if position.quantity > 0 else ask  # liquidation value
                total += position.quantity * (mark - position.average_price) * self.multipliers.get(instrument, 1.0)
        return total

    def realized(self) -> float:
        return sum(p.realized for p in self.positions.values()) - self.fees

    def held(self) -> dict[str, float]:
        """Instruments with a non-zero position and their quantities."""
        return {i: p.quantity for i, p in self.positions.items() if p.quantity}

    def open_positions(self) -> int:
        return sum(1 for p in self.positions.values() if p.quantity)


def apply_fill(position: Position, quantity: float, price: float, multiplier: float) -> None:
    """A fill of signed `quantity` at `price` moves `position`: its average entry price, and the realised P&L (in
    currency, at the contract `multiplier`) of what it closes."""
    if position.quantity == 0 or (position.quantity > 0) == (quantity > 0):
        total = position.quantity + quantity
        position.average_price = (position.average_price * position.quantity + price * quantity) / total
        position.quantity = total
        return
    closing = min(abs(quantity), abs(position.quantity)) * (1 if quantity < 0 else -1)
    position.realized += closing * (price - position.average_price) * multiplier
    position.quantity += quantity
    if position.quantity == 0:
        position.average_price = 0.0
    elif (position.quantity > 0) == (quantity > 0):  # flipped through zero
        position.average_price = price
