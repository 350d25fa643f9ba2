"""A broker over its HTTP API (`RuntimeConfig.broker`): market orders go out through the client pool
(trading_runtime/gateway/) with the runtime's deterministic order id as the client order id, so an order sent
again — after an answer was lost, by a retry of the pool or by a new leader — is the same order at the broker,
never a second one.

The tick path does not wait for the network: `submit` starts the order and answers `Working`; the result comes
back through `on_result`. While an order works, `position` and `held` count it (as the backtester's simulated
broker does: the engine sizes against what it will hold and does not send the same order twice); P&L counts
fills only. An order that gets no answer is sent again, with the same id, until `order_timeout` has passed.
Then, if no attempt can have reached the broker (no key had capacity, no endpoint was reachable), it was not
placed: the result is "unsent" (the engine records a rejection). Otherwise its outcome is unknown and the
result says so (the engine halts trading).

Fencing by time (execution/fencing.py): each attempt carries the expiry `expiry()` gives at the moment it is
sent — no later than the Lease's renew deadline — and none is sent once it gives None (the deadline passed). An
attempt that got no answer may still be on the wire until its expiry: `quiet_at` is the latest such, what a
leader that releases its Lease waits out first. The broker answers `expired` to an order that arrived later:
it was not filled (a rejection for the engine)."""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from trading_runtime.execution.paper import Fill, OrderResult, Outcome, PaperBroker, Position, Working
from trading_runtime.gateway.market_api import MarketApi, OrderTicket
from trading_runtime.gateway.pool import ApiError

log = logging.getLogger(__name__)


@dataclass
class _Order:
    instrument: str
    quantity: float
    ts: float


@dataclass
class HttpBroker(PaperBroker):
    api: MarketApi | None = None
    order_timeout: float = 30.0
    on_result: Callable[[OrderResult], None] | None = None
    expiry: Callable[[], float | None] | None = None
    """The wall-clock expiry (epoch seconds) of an attempt sent now; None from it: send nothing. The
    attribute None: orders carry no expiry (`broker.orderExpiry: false`)."""
    quiet_at: float = 0.0
    """Wall clock: the latest expiry of an attempt that got no answer (it may land until then)."""
    working: dict[str, _Order] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def submit(self, instrument: str, quantity: float, ts: float,
               order_id: str | None = None) -> Fill | Working | None:
        """Start the order; None when there is nothing to send (no quantity, no quote) or the same order id is
        already working (a decision written again sends nothing new)."""
        if quantity == 0 or instrument not in self.quotes or order_id is None or order_id in self.working:
            return None
        self.working[order_id] = _Order(instrument, quantity, ts)
        task = asyncio.get_running_loop().create_task(self._send(order_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Working(order_id)

    async def _send(self, order_id: str) -> None:
        order = self.working[order_id]
        assert self.api is not None
        give_up, delay, sent = time.monotonic() + self.order_timeout, 0.1, False
        while True:
            expire_at = self.expiry() if self.expiry is not None else None
            if self.expiry is not None and expire_at is None:  # past the lease's deadline: nothing more is sent
                self._finish(order_id, None, "unknown" if sent else "unsent",
                             "not sent: the lease's renew deadline passed")
                return
            ticket = OrderTicket(client_order_id=order_id, instrument=order.instrument, quantity=order.quantity,
                                 expire_at=datetime.datetime.fromtimestamp(expire_at, datetime.UTC)
                                 if expire_at is not None else None)
            answered = False
            try:
                ack = await self.api.submit_order(ticket)
                answered = True
                break
            except ApiError as exc:  # no answer: the same id again is safe (the broker keeps the first)
                error, sent = str(exc), sent or exc.sent
                if time.monotonic() + delay >= give_up:
                    self._finish(order_id, None, "unknown" if sent else "unsent",
                                 f"no answer within {self.order_timeout:g}s: {error}")
                    return
                log.warning("order %s not answered (%s); sending it again in %.1fs", order_id, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                if not answered and expire_at is not None:  # may still be on the wire: it can land until then
                    self.quiet_at = max(self.quiet_at, expire_at)
        if ack.status == "filled" and ack.price is not None:
            fee = ack.fee if ack.fee is not None else abs(order.quantity) * self.fee_per_unit
            fill = Fill(order_id, order.instrument, order.quantity, ack.price, fee, order.ts)
            self._finish(order_id, fill, "filled")
        elif ack.status in ("rejected", "expired"):
            self._finish(order_id, None, "rejected", ack.reason or f"{ack.status} by the broker")
        else:  # accepted, not yet filled: market orders here fill or fail at once
            self._finish(order_id, None, "unknown", f"broker answered {ack.status!r} without a fill")

    def _finish(self, order_id: str, fill: Fill | None, outcome: Outcome, reason: str = "") -> None:
        order = self.working.pop(order_id, None)
        if order is None:  # forgotten by `restore` (leadership moved): the book and the next leader own it
            return
        position = None
        if fill is not None:
            self.fees += fill.fee
            filled = super().position(fill.instrument)
            self._apply(filled, fill.quantity, fill.price, self.multipliers.get(fill.instrument, 1.0))
            position = Position(filled.quantity, filled.average_price, filled.realized)
        if self.on_result is not None:
            self.on_result(OrderResult(order_id, order.instrument, order.quantity, fill, outcome, reason, position))

    def cancel_all(self) -> list[str]:
        """Market orders already sent cannot be called back: none is cancelled (the kill switch's flattening
        counts them, as `held` does)."""
        return []

    def restore(self, positions: dict[str, Position], fees: float) -> None:
        """Take over the book's positions. Orders still working are forgotten and their sending stops (a
        demoted leader sends nothing more, not even again); the book and the next leader own them."""
        super().restore(positions, fees)
        self.working.clear()
        for task in self._tasks:
            task.cancel()

    async def drain(self, within: float) -> int:
        """Wait for working orders to end (shutdown); returns how many were still working at the timeout."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)
        return len(self.working)

    def position(self, instrument: str) -> Position:
        """The filled position plus working orders' quantity (module doc)."""
        filled = super().position(instrument)
        pending = sum(o.quantity for o in self.working.values() if o.instrument == instrument)
        if not pending:
            return filled
        return Position(filled.quantity + pending, filled.average_price, filled.realized)

    def held(self) -> dict[str, float]:
        projected = {i: p.quantity for i, p in self.positions.items()}
        for order in self.working.values():
            projected[order.instrument] = projected.get(order.instrument, 0.0) + order.quantity
        return {i: q for i, q in projected.items() if q}
