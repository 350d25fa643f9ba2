"""The simulated broker the backtester gives the engine in place of the paper broker: market orders fill at
the touch (buys at the ask, sells at the bid) plus slippage, after a latency, with per-contract fees and
the instrument's contract multiplier; every fill goes into a ledger.

Latency without look-ahead: an order sent at t is working until the first quote of its instrument stamped
at or after t + latency, and fills at that quote — a quote the data has reached, never one from the future.
While it works, `position` and `held` count it (the engine sizes against what it will hold, as an order
manager's projected position does, so it does not send the same order twice); P&L counts fills only.
With zero latency an order fills at once at the current quote, as the paper broker does."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from trading_runtime.clock import EventClock
from trading_runtime.execution.paper import Fill, PaperBroker, Position


class FillModel(BaseModel):
    """How orders fill (all in the instrument's quote currency unless said otherwise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fee_per_contract: float = Field(0.65, ge=0.0)
    """Commission and exchange fees per contract (or share) traded."""
    slippage_ticks: float = Field(0.0, ge=0.0)
    """Ticks paid beyond the touch on every fill."""
    tick_size: float = Field(0.01, gt=0.0)
    latency_ms: float = Field(0.0, ge=0.0)
    """Time from the decision to the order reaching the market."""


@dataclass(frozen=True)
class LedgerEntry:
    order_id: int
    instrument: str
    quantity: float
    decided_at: float
    filled_at: float
    price: float
    touch: float
    """The bid or ask the fill was taken from (price − touch is the slippage)."""
    fee: float
    multiplier: float


@dataclass
class _Working:
    order_id: int
    instrument: str
    quantity: float
    decided_at: float
    due: float


@dataclass
class SimulatedBroker(PaperBroker):
    fill_model: FillModel = field(default_factory=FillModel)
    clock: EventClock = field(default_factory=EventClock)
    """The backtest's clock: working orders become due against it."""
    ledger: list[LedgerEntry] = field(default_factory=list)
    working: list[_Working] = field(default_factory=list)
    _next_id: int = 1

    def __post_init__(self) -> None:
        self.fee_per_unit = self.fill_model.fee_per_contract

    def quote(self, instrument: str, bid: float, ask: float, multiplier: float = 1.0) -> None:
        super().quote(instrument, bid, ask, multiplier)
        self._fill_due(instrument)

    def submit(self, instrument: str, quantity: float, ts: float, order_id: str | None = None) -> Fill | None:
        """The backtest numbers its own orders (its ledger's keys): `order_id` is not needed here."""
        if quantity == 0 or instrument not in self.quotes:
            return None
        order = _Working(self._next_id, instrument, quantity, ts, ts + self.fill_model.latency_ms / 1000)
        self._next_id += 1
        if self.fill_model.latency_ms == 0:
            return self._fill(order, ts)
        self.working.append(order)
        return None

    def cancel_all(self) -> list[str]:
        """Cancel the working orders (the kill switch): they never fill."""
        cancelled = [str(o.order_id) for o in self.working]
        self.working.clear()
        return cancelled

    def _fill_due(self, instrument: str) -> None:
        if not self.working:
            return
        now = self.clock.now()
        due = [o for o in self.working if o.instrument == instrument and o.due <= now]
        for order in due:
            self.working.remove(order)
            self._fill(order, now)

    def _fill(self, order: _Working, ts: float) -> Fill:
        bid, ask = self.quotes[order.instrument]
        touch = ask if order.quantity > 0 else bid
        slip = self.fill_model.slippage_ticks * self.fill_model.tick_size
        price = touch + slip if order.quantity > 0 else max(touch - slip, 0.0)
        fee = abs(order.quantity) * self.fee_per_unit
        multiplier = self.multipliers.get(order.instrument, 1.0)
        self.fees += fee
        self._apply(super().position(order.instrument), order.quantity, price, multiplier)
        self.ledger.append(LedgerEntry(order.order_id, order.instrument, order.quantity, order.decided_at, ts,
                                       price, touch, fee, multiplier))
        return Fill(str(order.order_id), order.instrument, order.quantity, price, fee, ts)

    def position(self, instrument: str) -> Position:
        """The filled position plus working orders' quantity (module doc)."""
        filled = super().position(instrument)
        pending = sum(o.quantity for o in self.working if o.instrument == instrument)
        if not pending:
            return filled
        return Position(filled.quantity + pending, filled.average_price, filled.realized)

    def held(self) -> dict[str, float]:
        projected = {i: p.quantity for i, p in self.positions.items()}
        for order in self.working:
            projected[order.instrument] = projected.get(order.instrument, 0.0) + order.quantity
        return {i: q for i, q in projected.items() if q}
