"""A deterministic synthetic options market (by seed): the feed of tests, benchmarks and the local default.

Per symbol: the underlying follows a stochastic-volatility diffusion (mean-reverting log-volatility,
correlated with price moves: the leverage effect) with Poisson jumps; quotes have a spread and random
sizes; trades print at the bid or the ask. The chain (strikes around spot × expiries) is priced with
Black–Scholes on an implied-volatility surface that follows the current volatility, with a skew, a smile
and a term structure. Messages are plain dicts in the protocol's shape, without `seq` (the server
numbers them per symbol).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trading_runtime.feeds.protocol import option_id
from trading_runtime.pricing.black_scholes import price

TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600
FLOW_MEMORY_SECONDS = 50.0
"""Memory of the latent order flow behind `SymbolMarket.edge`."""
RATE = 0.04


@dataclass(frozen=True)
class SymbolProfile:
    """Parameters of one simulated underlying and its chain."""

    symbol: str
    spot: float
    vol: float = 0.18
    vol_of_vol: float = 1.2
    vol_mean_reversion: float = 8.0
    leverage: float = -0.7
    jumps_per_year: float = 6.0
    jump_mean: float = -0.01
    jump_std: float = 0.02
    spread_bps: float = 1.0
    tick: float = 0.01
    strike_step: float = 5.0
    strikes_each_side: int = 5
    expiry_days: tuple[int, ...] = (7, 30, 60)
    skew: float = -0.8
    smile: float = 1.5
    term_slope: float = 0.05
    futures: bool = False


DEFAULT_PROFILES = {
    "SPY": SymbolProfile("SPY", 500.0),
    "QQQ": SymbolProfile("QQQ", 430.0, vol=0.22, strike_step=5.0),
    "ES": SymbolProfile("ES", 5000.0, vol=0.17, tick=0.25, strike_step=25.0, futures=True),
    "IWM": SymbolProfile("IWM", 200.0, vol=0.24, strike_step=2.0),
    "DIA": SymbolProfile("DIA", 390.0, vol=0.15, strike_step=5.0),
    "NQ": SymbolProfile("NQ", 18000.0, vol=0.21, tick=0.25, strike_step=100.0, futures=True),
}


def profile_for(symbol: str) -> SymbolProfile:
    """A known profile, or a generic one derived from the symbol's name."""
    if symbol in DEFAULT_PROFILES:
        return DEFAULT_PROFILES[symbol]
    spot = 50.0 + (sum(map(ord, symbol)) % 400)
    return SymbolProfile(symbol, spot, strike_step=max(1.0, round(spot / 100)))


@dataclass
class _Option:
    id: str
    expiry: str
    strike: float
    right: str
    years: float


@dataclass
class SymbolMarket:
    """The evolving state of one symbol."""

    profile: SymbolProfile
    rng: np.random.Generator
    start: datetime.date
    spot: float = 0.0
    log_vol: float = 0.0
    options: list[_Option] = field(default_factory=list)
    edge: float = 0.0
    """Strength of a seeded, learnable order-flow edge (0: none, the stream is unchanged): a latent flow state
    (AR(1), ~50 s memory) tilts the aggressor side of trades and the quoted sizes, and drifts the price the
    same way by `edge` × flow standard deviations of the diffusion per step. What a momentum-on-flow signal
    can find, so that hit rates, Kelly sizes and Sharpe ratios have something to measure."""
    flow: float = 0.0

    def __post_init__(self) -> None:
        self.spot = self.profile.spot
        self.log_vol = math.log(self.profile.vol)
        p = self.profile
        center = round(p.spot / p.strike_step) * p.strike_step
        for days in p.expiry_days:
            expiry = (self.start + datetime.timedelta(days=days)).isoformat()
            for k in range(-p.strikes_each_side, p.strikes_each_side + 1):
                strike = center + k * p.strike_step
                for right in ("C", "P"):
                    self.options.append(_Option(option_id(p.symbol, expiry, right, strike), expiry, strike, right,
                                                days / 365.0))

    @property
    def vol(self) -> float:
        return math.exp(self.log_vol)

    def step(self, dt_seconds: float) -> float:
        """Advance the underlying; returns the log return."""
        p = self.profile
        dt = dt_seconds / TRADING_SECONDS_PER_YEAR
        z1, z2 = (float(z) for z in self.rng.standard_normal(2))
        w_vol = p.leverage * z1 + math.sqrt(1 - p.leverage**2) * z2
        self.log_vol += p.vol_mean_reversion * (math.log(p.vol) - self.log_vol) * dt \
            + p.vol_of_vol * math.sqrt(dt) * w_vol
        vol = self.vol
        ret = -0.5 * vol * vol * dt + vol * math.sqrt(dt) * z1
        if self.edge:  # its own draw only when on: with no edge the random stream is the same as ever
            keep = math.exp(-dt_seconds / FLOW_MEMORY_SECONDS)
            self.flow = keep * self.flow + math.sqrt(1 - keep * keep) * float(self.rng.standard_normal())
            ret += self.edge * self.flow * vol * math.sqrt(dt)
        if self.rng.random() < p.jumps_per_year * dt:
            ret += float(self.rng.normal(p.jump_mean, p.jump_std))
        self.spot *= math.exp(ret)
        return ret

    def implied_vol(self, option: _Option) -> float:
        p = self.profile
        moneyness = math.log(option.strike / self.spot)
        surface = 1.0 + p.skew * moneyness + p.smile * moneyness * moneyness
        term = 1.0 + p.term_slope * math.log(max(option.years, 1 / 365) * 12)
        return max(self.vol * surface * term, 0.01)

    def _round(self, price: float, tick: float) -> float:
        return round(round(price / tick) * tick, 6)

    def underlying_quote(self) -> dict[str, Any]:
        p = self.profile
        half = max(p.tick, self.spot * p.spread_bps / 1e4) / 2
        bid = self._round(self.spot - half, p.tick)
        ask = max(self._round(self.spot + half, p.tick), bid + p.tick)
        bid_size, ask_size = float(self.rng.integers(1, 50) * 100), float(self.rng.integers(1, 50) * 100)
        if self.edge:  # buying pressure shows as a deeper bid
            tilt = math.tanh(self.flow)
            bid_size, ask_size = float(round(bid_size * (1 + 0.5 * tilt))), float(round(ask_size * (1 - 0.5 * tilt)))
        return {"instrument": p.symbol, "bid": bid, "ask": round(ask, 6), "bidSize": bid_size, "askSize": ask_size}

    def option_quote(self, option: _Option) -> dict[str, Any]:
        value = float(price(self.spot, option.strike, option.years, self.implied_vol(option), RATE,
                            option.right == "C", model="black76" if self.profile.futures else "bsm"))
        half = max(0.01, value * 0.01)
        bid = max(round(value - half, 2), 0.0)
        return {"instrument": option.id, "bid": bid, "ask": round(max(value + half, bid + 0.01), 2),
                "bidSize": float(self.rng.integers(1, 100)), "askSize": float(self.rng.integers(1, 100)),
                "expiry": option.expiry, "strike": option.strike, "right": option.right}

    def snapshot(self, ts: float) -> dict[str, Any]:
        return {"type": "snapshot", "symbol": self.profile.symbol, "ts": ts, "underlying": self.underlying_quote(),
                "options": [self.option_quote(o) for o in self.options]}

    def trade(self, ts: float, quote: dict[str, Any]) -> dict[str, Any]:
        buy = bool(self.rng.random() < (0.5 + 0.3 * math.tanh(self.flow) if self.edge else 0.5))
        return {"type": "trade", "symbol": self.profile.symbol, "ts": ts, "instrument": quote["instrument"],
                "price": quote["ask"] if buy else quote["bid"], "size": float(self.rng.integers(1, 20) * 100),
                "aggressor": "buy" if buy else "sell"}


class MarketSimulator:
    """Several symbols in one deterministic stream of market messages."""

    def __init__(self, symbols: list[str], seed: int = 0, start_ts: float = 1_767_225_600.0,
                 option_quotes_per_tick: int = 2, trade_probability: float = 0.3, edge: float = 0.0) -> None:
        rng = np.random.default_rng(seed)
        start = datetime.datetime.fromtimestamp(start_ts, datetime.UTC).date()
        self.markets = {s: SymbolMarket(profile_for(s), np.random.default_rng(rng.integers(2**63)), start, edge=edge)
                        for s in symbols}
        self.rng = rng
        self.ts = start_ts
        self.option_quotes_per_tick = option_quotes_per_tick
        self.trade_probability = trade_probability

    def snapshot(self, symbol: str) -> dict[str, Any]:
        return self.markets[symbol].snapshot(self.ts)

    def tick(self, symbol: str, dt_seconds: float) -> list[dict[str, Any]]:
        """Advance one symbol by dt and return its new messages: an underlying quote, maybe a trade, and a
        few option quotes."""
        self.ts += dt_seconds
        market = self.markets[symbol]
        market.step(dt_seconds)
        quote = market.underlying_quote()
        messages: list[dict[str, Any]] = [{"type": "quote", "symbol": symbol, "ts": self.ts, **quote}]
        if market.rng.random() < self.trade_probability:
            messages.append(market.trade(self.ts, quote))
        picks = market.rng.choice(len(market.options), size=self.option_quotes_per_tick, replace=False)
        for index in picks:
            messages.append({"type": "quote", "symbol": symbol, "ts": self.ts,
                             **market.option_quote(market.options[int(index)])})
        return messages
