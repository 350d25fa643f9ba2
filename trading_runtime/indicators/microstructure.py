"""Market-microstructure indicators, updated incrementally per quote or trade (O(1) each).

- Order-flow imbalance (Cont, Kukanov & Stoikov 2014): per best-quote update
  e = 1{Pb ≥ Pb'}·qb − 1{Pb ≤ Pb'}·qb' − 1{Pa ≤ Pa'}·qa + 1{Pa ≥ Pa'}·qa'   (primes: the previous quote);
  the indicator is the sum of e over the last `window` updates divided by the mean depth (qb+qa)/2 over them.
- Microprice: size-weighted mid (Pb·qa + Pa·qb)/(qa + qb); quoted spread and relative spread (bps).
- Effective spread of trades: 2·|P − mid| (and in bps of mid), averaged over the last `window` trades.
- Trade imbalance: (buy − sell volume)/(buy + sell volume) over the last `window` trades, sides by the
  Lee–Ready rule (above mid → buy, below → sell, at mid → tick rule against the previous trade price).
- VPIN (Easley, López de Prado & O'Hara 2012) with bulk volume classification: trades fill volume buckets
  of size V; each trade's volume is split buy/sell by Φ(ΔP/σ_ΔP) (ΔP: change from the previous trade price,
  σ_ΔP: running standard deviation of ΔP); VPIN = mean of |V_buy − V_sell|/V over the last `buckets` full
  buckets. A trade larger than the room left in a bucket carries over into the next bucket(s).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass


def microprice(bid: float, ask: float, bid_size: float, ask_size: float) -> float:
    depth = bid_size + ask_size
    return (bid + ask) / 2 if depth <= 0 else (bid * ask_size + ask * bid_size) / depth


def quoted_spread(bid: float, ask: float) -> float:
    return ask - bid


def relative_spread_bps(bid: float, ask: float) -> float:
    mid = (bid + ask) / 2
    return math.nan if mid <= 0 else (ask - bid) / mid * 1e4


class RollingSum:
    """Sum over the last `window` values."""

    def __init__(self, window: int) -> None:
        self.values: collections.deque[float] = collections.deque(maxlen=window)
        self.total = 0.0

    def add(self, value: float) -> None:
        if len(self.values) == self.values.maxlen:
            self.total -= self.values[0]
        self.values.append(value)
        self.total += value

    @property
    def mean(self) -> float:
        return self.total / len(self.values) if self.values else math.nan


@dataclass
class _Quote:
    bid: float
    ask: float
    bid_size: float
    ask_size: float


class OrderFlowImbalance:
    def __init__(self, window: int = 100) -> None:
        self.flow = RollingSum(window)
        self.depth = RollingSum(window)
        self._last: _Quote | None = None

    def update(self, bid: float, ask: float, bid_size: float, ask_size: float) -> float:
        """Feed a best-quote update; returns the normalised OFI."""
        if self._last is not None:
            p = self._last
            e = ((bid_size if bid >= p.bid else 0.0) - (p.bid_size if bid <= p.bid else 0.0)
                 - (ask_size if ask <= p.ask else 0.0) + (p.ask_size if ask >= p.ask else 0.0))
            self.flow.add(e)
            self.depth.add((bid_size + ask_size) / 2)
        self._last = _Quote(bid, ask, bid_size, ask_size)
        return self.value

    @property
    def raw(self) -> float:
        return self.flow.total

    @property
    def value(self) -> float:
        depth = self.depth.mean
        return 0.0 if not self.flow.values or not depth else self.flow.total / depth


class TradeFlow:
    """Effective spread and Lee–Ready trade imbalance over the last `window` trades."""

    def __init__(self, window: int = 200) -> None:
        self.effective = RollingSum(window)
        self.effective_bps = RollingSum(window)
        self.signed = RollingSum(window)
        self.volume = RollingSum(window)
        self._last_price: float | None = None
        self._last_sign = 0

    def side(self, price: float, mid: float) -> int:
        """+1 buy, −1 sell (Lee–Ready)."""
        if price > mid:
            sign = 1
        elif price < mid:
            sign = -1
        elif self._last_price is not None and price != self._last_price:
            sign = 1 if price > self._last_price else -1
        else:
            sign = self._last_sign  # zero tick: the previous classification
        return sign

    def update(self, price: float, size: float, mid: float) -> None:
        sign = self.side(price, mid)
        self.effective.add(2 * abs(price - mid))
        self.effective_bps.add(2 * abs(price - mid) / mid * 1e4 if mid > 0 else 0.0)
        self.signed.add(sign * size)
        self.volume.add(size)
        self._last_price, self._last_sign = price, sign

    @property
    def imbalance(self) -> float:
        return self.signed.total / self.volume.total if self.volume.total > 0 else 0.0


class Vpin:
    def __init__(self, bucket_volume: float, buckets: int = 50) -> None:
        if bucket_volume <= 0:
            raise ValueError("bucket_volume must be positive")
        self.bucket_volume = bucket_volume
        self.imbalances: collections.deque[float] = collections.deque(maxlen=buckets)
        self._buy = 0.0
        self._filled = 0.0
        self._last_price: float | None = None
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0

    def _sigma(self) -> float:
        return math.sqrt(self._m2 / (self._n - 1)) if self._n > 1 else 0.0

    def update(self, price: float, size: float) -> float:
        """Feed a trade; returns VPIN over the full buckets so far (NaN before the first)."""
        if self._last_price is None:
            buy_fraction = 0.5
        else:
            change = price - self._last_price
            self._n += 1  # Welford's running variance of price changes
            delta = change - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (change - self._mean)
            sigma = self._sigma()
            buy_fraction = 0.5 if sigma == 0 else 0.5 * (1 + math.erf(change / (sigma * math.sqrt(2))))
        self._last_price = price
        remaining = size
        while remaining > 0:
            room = self.bucket_volume - self._filled
            part = min(room, remaining)
            self._buy += part * buy_fraction
            self._filled += part
            remaining -= part
            if self._filled >= self.bucket_volume - 1e-12:
                sell = self._filled - self._buy
                self.imbalances.append(abs(self._buy - sell) / self.bucket_volume)
                self._buy = self._filled = 0.0
        return self.value

    @property
    def value(self) -> float:
        return sum(self.imbalances) / len(self.imbalances) if self.imbalances else math.nan
