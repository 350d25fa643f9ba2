"""Pre-trade controls (SEC 15c3-5 market-access controls, MiFID II RTS 6 pre-trade controls): every order
is checked before it reaches the broker, and refused with a reason when it fails one.

They fail closed: a control that cannot decide (no quote, a price that is not a number, an error inside a
check) refuses the order. While trading is halted only orders that reduce a position pass (the kill switch
flattens; it never opens), and those are not throttled or held as duplicates; price, size and value limits
apply to every order."""

from __future__ import annotations

import collections
import enum
import math
from dataclasses import dataclass

from trading_runtime.config import PreTradeLimits


class RejectReason(enum.StrEnum):
    KILL_SWITCH = "kill-switch"
    NO_PRICE = "no-price"
    PRICE_COLLAR = "price-collar"
    MAX_QUANTITY = "max-quantity"
    MAX_VALUE = "max-value"
    THROTTLE = "throttle"
    DUPLICATE = "duplicate"
    CONTROL_ERROR = "control-error"
    BROKER = "broker"
    """Refused by the broker's API after it passed these controls (trading_runtime/execution/http_broker.py)."""


@dataclass(frozen=True)
class OrderRequest:
    instrument: str
    quantity: float
    """Signed: + buy, − sell."""
    price: float
    """The price it would execute at (the ask to buy, the bid to sell); NaN without a quote."""
    mid: float
    """The instrument's mid: the collar's reference."""
    multiplier: float
    position: float
    """The position held in the instrument before the order."""
    ts: float

    @property
    def side(self) -> str:
        return "buy" if self.quantity > 0 else "sell"

    @property
    def value(self) -> float:
        return abs(self.quantity) * self.price * self.multiplier

    @property
    def reduces_position(self) -> bool:
        """Moves the position towards zero without crossing it."""
        return self.position * self.quantity < 0 and abs(self.quantity) <= abs(self.position)


@dataclass(frozen=True)
class Rejection:
    reason: RejectReason
    message: str


class PreTradeControls:
    def __init__(self, limits: PreTradeLimits) -> None:
        self.limits = limits
        self._recent: collections.deque[tuple[float, str, float]] = collections.deque()
        """(ts, instrument, quantity) of orders accepted within the throttle and duplicate windows."""

    def check(self, order: OrderRequest, trading: bool) -> Rejection | None:
        """None when the order may go to the broker (and it then counts towards the throttle)."""
        try:
            rejection = self._check(order, trading)
        except Exception as error:  # a control that cannot decide refuses
            return Rejection(RejectReason.CONTROL_ERROR, f"pre-trade check failed: {error!r}")
        if rejection is None:
            self._recent.append((order.ts, order.instrument, order.quantity))
        return rejection

    def _check(self, order: OrderRequest, trading: bool) -> Rejection | None:
        limits = self.limits
        if not trading and not order.reduces_position:
            return Rejection(RejectReason.KILL_SWITCH, "trading is halted: only orders that reduce a position pass")
        if not (math.isfinite(order.price) and math.isfinite(order.mid) and order.price > 0 and order.mid > 0):
            return Rejection(RejectReason.NO_PRICE, f"no usable quote (price {order.price}, mid {order.mid})")
        if abs(order.quantity) > limits.max_order_quantity:
            return Rejection(RejectReason.MAX_QUANTITY,
                             f"quantity {abs(order.quantity):g} above {limits.max_order_quantity:g}")
        if order.value > limits.max_order_value:
            return Rejection(RejectReason.MAX_VALUE, f"value {order.value:.2f} above {limits.max_order_value:.2f}")
        distance = abs(order.price - order.mid) / order.mid
        if distance > limits.price_collar:
            return Rejection(RejectReason.PRICE_COLLAR, f"price {order.price:g} is {distance:.1%} from the mid "
                             f"{order.mid:g} (collar {limits.price_collar:.1%})")
        if not trading:
            return None  # the kill switch's own flattening is neither throttled nor a duplicate
        self._forget_before(order.ts - max(1.0, limits.duplicate_window_seconds))
        last = next((r for r in reversed(self._recent) if r[1] == order.instrument), None)
        if last is not None and last[2] == order.quantity and last[0] > order.ts - limits.duplicate_window_seconds:
            return Rejection(RejectReason.DUPLICATE, f"same order ({order.instrument} {order.quantity:+g}) as the "
                             f"last one accepted, {order.ts - last[0]:.3g} s ago")
        last_second = sum(1 for ts, _, _ in self._recent if ts > order.ts - 1.0)
        if last_second >= limits.max_orders_per_second:
            return Rejection(RejectReason.THROTTLE, f"{last_second} orders in the last second "
                             f"(limit {limits.max_orders_per_second})")
        return None

    def _forget_before(self, horizon: float) -> None:
        while self._recent and self._recent[0][0] <= horizon:
            self._recent.popleft()
