"""Market-microstructure indicators, updated incrementally per quote or trade (O(1) amortised each).

Definitions used:

- Order-flow imbalance, OFI (Cont, Kukanov & Stoikov 2014). For successive best quotes n−1 → n:
  e_n = 1{Pb_n ≥ Pb_{n−1}}·qb_n − 1{Pb_n ≤ Pb_{n−1}}·qb_{n−1} − 1{Pa_n ≤ Pa_{n−1}}·qa_n + 1{Pa_n ≥ Pa_{n−1}}·qa_{n−1}.
  `raw` is Σ e over the last `window` events; `value` is that sum divided by the mean depth (qb_n + qa_n)/2
  over the same events (a dimensionless OFI, comparable across symbols).
- Microprice: size-weighted mid (Pb·qa + Pa·qb)/(qa + qb) (the plain mid when both sizes are zero);
  quoted spread Pa − Pb and relative spread (Pa − Pb)/mid in basis points.
- Effective spread of a trade: 2·|P − mid| (mid prevailing at the trade), and 2·|P − mid|/mid in bps;
  the indicator is the mean over the last `window` trades.
- Trade imbalance: (buy volume − sell volume)/(total volume) over the last `window` trades. Sides by
  Lee–Ready: above the mid → buy, below → sell, at the mid → tick rule (up-tick or zero-up-tick → buy,
  down-tick or zero-down-tick → sell, i.e. the sign of the last non-zero trade-price change). A trade at
  the mid before any price change is unclassified: its volume counts in the total only.
- VPIN (Easley, López de Prado & O'Hara 2012) with bulk volume classification, see `Vpin`; its bucket
  volume sized from the traded volume (a session's volume / 50, as the paper does), see `SessionVpin`.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

__all__ = [
    "EffectiveSpread",
    "Microprice",
    "OrderFlowImbalance",
    "RollingSum",
    "SessionVpin",
    "TradeFlow",
    "TradeImbalance",
    "Vpin",
    "lee_ready_side",
    "microprice",
    "quoted_spread",
    "relative_spread_bps",
]

_SQRT2 = math.sqrt(2.0)


def microprice(bid: float, ask: float, bid_size: float, ask_size: float) -> float:
    """(bid·ask_size + ask·bid_size)/(bid_size + ask_size); the mid when there is no depth."""
    depth = bid_size + ask_size
    if depth <= 0:
        return (bid + ask) / 2
    weight = min(1.0, max(0.0, bid_size / depth))  # as a weight: no overflow or underflow at extreme sizes
    return bid + (ask - bid) * weight


def quoted_spread(bid: float, ask: float) -> float:
    """Ask − bid."""
    return ask - bid


def relative_spread_bps(bid: float, ask: float) -> float:
    """(ask − bid)/mid in basis points; NaN when the mid is not positive."""
    mid = (bid + ask) / 2
    return math.nan if mid <= 0 else (ask - bid) / mid * 1e4


def lee_ready_side(price: float, mid: float, tick_direction: int) -> int:
    """+1 buy / −1 sell / 0 unclassified: quote rule against `mid`, else `tick_direction` (the sign of the
    last non-zero trade-price change, including this trade's own change)."""
    if price > mid:
        return 1
    if price < mid:
        return -1
    return tick_direction


class RollingSum:
    """Sum and mean over the last `window` values. The running total is re-summed exactly (math.fsum) once
    per `window` additions, so floating-point drift cannot accumulate in a long-running process."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.values: collections.deque[float] = collections.deque(maxlen=window)
        self.total = 0.0
        self._since_resum = 0

    def add(self, value: float) -> None:
        if len(self.values) == self.values.maxlen:
            self.total -= self.values[0]
        self.values.append(value)
        self.total += value
        self._since_resum += 1
        if self._since_resum >= len(self.values):
            self.total = math.fsum(self.values)
            self._since_resum = 0

    def __len__(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        """Mean of the values held; NaN when empty."""
        return self.total / len(self.values) if self.values else math.nan


@dataclass(frozen=True)
class _Quote:
    bid: float
    ask: float
    bid_size: float
    ask_size: float


class OrderFlowImbalance:
    """Cont–Kukanov–Stoikov OFI over the last `window` best-quote updates (definition in the module doc).
    The first update only sets the reference quote."""

    def __init__(self, window: int = 100) -> None:
        self.flow = RollingSum(window)
        self.depth = RollingSum(window)
        self._last: _Quote | None = None

    @staticmethod
    def event(prev: tuple[float, float, float, float], cur: tuple[float, float, float, float]) -> float:
        """e_n for one transition; each quote is (bid, ask, bid_size, ask_size)."""
        pb, pa, qb0, qa0 = prev
        b, a, qb, qa = cur
        return ((qb if b >= pb else 0.0) - (qb0 if b <= pb else 0.0)
                - (qa if a <= pa else 0.0) + (qa0 if a >= pa else 0.0))

    def update(self, bid: float, ask: float, bid_size: float, ask_size: float) -> float:
        """Feed a best-quote update; returns the depth-normalised OFI (`value`)."""
        last = self._last
        if last is not None:
            self.flow.add(self.event((last.bid, last.ask, last.bid_size, last.ask_size),
                                     (bid, ask, bid_size, ask_size)))
            self.depth.add((bid_size + ask_size) / 2)
        self._last = _Quote(bid, ask, bid_size, ask_size)
        return self.value

    @property
    def raw(self) -> float:
        """Σ e_n over the window (in shares/contracts)."""
        return self.flow.total

    @property
    def value(self) -> float:
        """Σ e_n / mean depth over the window; 0 before two quotes or with zero depth."""
        depth = self.depth.mean
        return 0.0 if not self.flow.values or not depth > 0 else self.flow.total / depth


class Microprice:
    """Latest best quote's microprice, mid and spreads."""

    def __init__(self) -> None:
        self.bid = self.ask = math.nan
        self.value = math.nan
        self.mid = math.nan

    def update(self, bid: float, ask: float, bid_size: float, ask_size: float) -> float:
        """Feed a best-quote update; returns the microprice."""
        self.bid, self.ask = bid, ask
        self.mid = (bid + ask) / 2
        self.value = microprice(bid, ask, bid_size, ask_size)
        return self.value

    @property
    def spread(self) -> float:
        return quoted_spread(self.bid, self.ask)

    @property
    def spread_bps(self) -> float:
        return relative_spread_bps(self.bid, self.ask)

    @property
    def tilt(self) -> float:
        """(microprice − mid)/half-spread in [−1, 1]; 0 with no spread."""
        half = (self.ask - self.bid) / 2
        return (self.value - self.mid) / half if half > 0 else 0.0


class EffectiveSpread:
    """Mean effective spread 2·|P − mid| (and in bps of the mid) over the last `window` trades."""

    def __init__(self, window: int = 200) -> None:
        self.absolute = RollingSum(window)
        self.bps = RollingSum(window)

    def update(self, price: float, mid: float) -> float:
        """Feed a trade with the mid prevailing at it; returns the rolling mean effective spread. Trades with a
        non-positive mid (no valid quote) are skipped."""
        if mid > 0:
            spread = 2 * abs(price - mid)
            self.absolute.add(spread)
            self.bps.add(spread / mid * 1e4)
        return self.value

    @property
    def value(self) -> float:
        """Mean 2·|P − mid| over the window; NaN before the first trade."""
        return self.absolute.mean

    @property
    def value_bps(self) -> float:
        """Mean 2·|P − mid|/mid·10⁴ over the window; NaN before the first trade."""
        return self.bps.mean


class TradeImbalance:
    """(buy − sell volume)/total volume over the last `window` trades, sides by Lee–Ready (module doc)."""

    def __init__(self, window: int = 200) -> None:
        self.signed = RollingSum(window)
        self.volume = RollingSum(window)
        self._last_price: float | None = None
        self._tick = 0

    def classify(self, price: float, mid: float) -> int:
        """Side this trade would get (+1 / −1 / 0) without recording it."""
        tick = self._tick
        if self._last_price is not None and price != self._last_price:
            tick = 1 if price > self._last_price else -1
        return lee_ready_side(price, mid, tick)

    def update(self, price: float, size: float, mid: float) -> float:
        """Feed a trade with the mid prevailing at it; returns the imbalance."""
        side = self.classify(price, mid)
        if self._last_price is not None and price != self._last_price:
            self._tick = 1 if price > self._last_price else -1
        self._last_price = price
        self.signed.add(side * size)
        self.volume.add(size)
        return self.value

    @property
    def value(self) -> float:
        """In [−1, 1]; 0 with no volume."""
        return self.signed.total / self.volume.total if self.volume.total > 0 else 0.0


class TradeFlow:
    """Effective spread and Lee–Ready trade imbalance over the same last `window` trades."""

    def __init__(self, window: int = 200) -> None:
        self.spread = EffectiveSpread(window)
        self.sides = TradeImbalance(window)

    def update(self, price: float, size: float, mid: float) -> None:
        """Feed a trade with the mid prevailing at it."""
        self.spread.update(price, mid)
        self.sides.update(price, size, mid)

    @property
    def imbalance(self) -> float:
        return self.sides.value

    @property
    def effective_spread(self) -> float:
        return self.spread.value

    @property
    def effective_spread_bps(self) -> float:
        return self.spread.value_bps


class Vpin:
    """VPIN with bulk volume classification (BVC).

    Choices:
    - Classification is per trade: ΔP is the change from the previous trade price; σ_ΔP is the running
      (Welford, ddof=1) standard deviation of all ΔP so far, including this one. The trade's buy fraction is
      Φ(ΔP/σ_ΔP) = ½(1 + erf(ΔP/(σ√2))); it is ½ for the first trade and while σ_ΔP = 0.
    - Volume buckets hold exactly `bucket_volume`. A trade larger than the room left fills the bucket and
      carries its remainder (same buy fraction) into the next bucket(s); a partly filled bucket never counts.
    - VPIN = mean over the last `buckets` full buckets of |V_buy − V_sell|/V, in [0, 1]; NaN before the first
      full bucket. Trades with non-positive or non-finite size or non-finite price are ignored.
    """

    def __init__(self, bucket_volume: float, buckets: int = 50) -> None:
        if not bucket_volume > 0 or not math.isfinite(bucket_volume):
            raise ValueError("bucket_volume must be positive and finite")
        self.bucket_volume = bucket_volume
        self.next_bucket_volume = bucket_volume
        self.imbalances = RollingSum(buckets)
        self._buy = 0.0
        self._filled = 0.0
        self._last_price: float | None = None
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0

    @property
    def sigma(self) -> float:
        """Running standard deviation of trade-to-trade price changes (0 with fewer than two)."""
        return math.sqrt(self._m2 / (self._n - 1)) if self._n > 1 else 0.0

    def _buy_fraction(self, price: float) -> float:
        if self._last_price is None:
            return 0.5
        change = price - self._last_price
        self._n += 1
        delta = change - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (change - self._mean)
        sigma = self.sigma
        return 0.5 if sigma == 0 else 0.5 * (1 + math.erf(change / (sigma * _SQRT2)))

    def update(self, price: float, size: float) -> float:
        """Feed a trade; returns `value`."""
        if not (size > 0 and math.isfinite(size) and math.isfinite(price)):
            return self.value
        fraction = self._buy_fraction(price)
        self._last_price = price
        remaining = size
        while remaining > 0:
            room = self.bucket_volume - self._filled
            if remaining < room:
                self._buy += remaining * fraction
                self._filled += remaining
                break
            buy = self._buy + room * fraction
            self.imbalances.add(min(1.0, abs(2 * buy - self.bucket_volume) / self.bucket_volume))
            self._buy = self._filled = 0.0
            self.bucket_volume = self.next_bucket_volume
            remaining -= room
        return self.value

    def resize(self, bucket_volume: float) -> None:
        """Buckets from the next one on hold `bucket_volume` (the one being filled keeps its size)."""
        if not bucket_volume > 0 or not math.isfinite(bucket_volume):
            raise ValueError("bucket_volume must be positive and finite")
        self.next_bucket_volume = bucket_volume

    @property
    def value(self) -> float:
        """Mean |V_buy − V_sell|/V over the last full buckets; NaN before the first."""
        mean = self.imbalances.mean
        return mean if math.isnan(mean) else min(1.0, max(0.0, mean))  # running-sum rounding stays in [0, 1]

    @property
    def full_buckets(self) -> int:
        """Full buckets in the window."""
        return len(self.imbalances)


class SessionVpin:
    """VPIN with its bucket volume taken from the traded volume rather than from any single trade.

    - Warm-up: the first `warmup_trades` trades are held back; the bucket volume is their total volume
      (about `warmup_trades` trades a bucket, so one odd-sized first print or bar moves it by 1/`warmup_trades`
      of itself at most), then they are replayed into the VPIN. `value` is NaN until then.
    - At each session break (`new_session`), the bucket becomes the ended session's volume /
      `buckets_per_session` (Easley et al. size buckets at a fiftieth of the average daily volume), when that
      session saw at least `warmup_trades` trades. Full buckets already counted stay in the window.
    """

    def __init__(self, buckets: int = 50, buckets_per_session: int = 50, warmup_trades: int = 50) -> None:
        if buckets_per_session < 1 or warmup_trades < 1:
            raise ValueError("buckets_per_session and warmup_trades must be at least 1")
        self.buckets = buckets
        self.buckets_per_session = buckets_per_session
        self.warmup_trades = warmup_trades
        self.vpin: Vpin | None = None
        self._warmup: list[tuple[float, float]] = []
        self._session_volume = 0.0
        self._session_trades = 0

    def update(self, price: float, size: float) -> float:
        """Feed a trade; returns `value`."""
        if not (size > 0 and math.isfinite(size) and math.isfinite(price)):
            return self.value
        self._session_volume += size
        self._session_trades += 1
        if self.vpin is not None:
            return self.vpin.update(price, size)
        self._warmup.append((price, size))
        if len(self._warmup) >= self.warmup_trades:
            self.vpin = Vpin(math.fsum(s for _, s in self._warmup), self.buckets)
            for held_price, held_size in self._warmup:
                self.vpin.update(held_price, held_size)
            self._warmup.clear()
        return self.value

    def new_session(self) -> None:
        """A session break: size the next buckets from the session that ended."""
        if self.vpin is not None and self._session_trades >= self.warmup_trades:
            self.vpin.resize(self._session_volume / self.buckets_per_session)
        self._session_volume = 0.0
        self._session_trades = 0

    @property
    def bucket_volume(self) -> float:
        """Volume of the bucket being filled; NaN during the warm-up."""
        return self.vpin.bucket_volume if self.vpin is not None else math.nan

    @property
    def value(self) -> float:
        """VPIN (see `Vpin.value`); NaN during the warm-up and before the first full bucket."""
        return self.vpin.value if self.vpin is not None else math.nan
