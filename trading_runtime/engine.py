"""The per-symbol engine: market messages in; indicators, a signal, risk checks and paper orders out.

Everything here runs on the tick path and is synchronous except for the fault injector's extra latency (then
`on_message` returns an awaitable); storage, Redis and metrics are fire-and-forget sinks (the write-behind queue
never blocks)."""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

from trading_runtime.chain_analysis import RATE, ChainAnalysis, ChainSample, InlineAnalysis
from trading_runtime.clock import Clock, WallClock
from trading_runtime.config import RenderedConfig
from trading_runtime.execution import ids
from trading_runtime.execution.options import Contract, choose_contract, contract_greeks, contracts_for, parse_option_id
from trading_runtime.execution.paper import Broker, Fill, OrderResult, PaperBroker, Position, Working
from trading_runtime.execution.pretrade import OrderRequest, PreTradeControls, Rejection, RejectReason
from trading_runtime.execution.reconcile import Booked, Difference
from trading_runtime.feeds.protocol import Heartbeat, Quote, Snapshot, Trade
from trading_runtime.indicators.bars import MultiTimeframe
from trading_runtime.indicators.microstructure import OrderFlowImbalance, SessionVpin, TradeFlow, microprice
from trading_runtime.indicators.volume_profile import VolumeProfile
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.loop import MlLoop, Recorder
from trading_runtime.pricing.black_scholes import Model
from trading_runtime.pricing.surface import SurfaceFeatures
from trading_runtime.risk.blackswan import BlackSwanDetector
from trading_runtime.risk.drawdown import DrawdownGuard
from trading_runtime.risk.sizing import position_notional
from trading_runtime.sessions import Calendar, PeriodTracker, calendar_for
from trading_runtime.signals.accuracy import AccuracyTracker
from trading_runtime.signals.combiner import Evidence, Signal, combine
from trading_runtime.telemetry import DecisionTracer

log = logging.getLogger(__name__)

Row = tuple[object, ...]
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600
SURFACE_EVERY = 50
"""Option quotes between two cross-strike analyses (IVs of the whole chain are solved at once, off the tick path
on the live feed: trading_runtime/chain_analysis.py)."""
TIMEFRAMES = (1, 5, 30, 60)
"""Seconds of the multi-timeframe bars."""
Sink = Callable[[str, Row], None]
Message = Snapshot | Quote | Trade | Heartbeat


def _discard(table: str, row: Row) -> None:
    """The sink while history is replayed: what the engine did not do live is not recorded."""


class InjectedFaultError(RuntimeError):
    """An error produced on purpose by the fault-injection config."""


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


@dataclass
class EngineState:
    mid: float = math.nan
    spread: float = math.nan
    direction: int = 0
    halted: dict[str, bool] = field(default_factory=dict)


class SymbolEngine:
    def __init__(self, config: RenderedConfig, trading_enabled: bool, metrics: RuntimeMetrics, sink: Sink,
                 broker: Broker | None = None, seed: int | None = None, clock: Clock | None = None,
                 calendar: Calendar | None = None, tracer: DecisionTracer | None = None,
                 ml_recorder: Recorder | None = None, origin: Callable[[], int] | None = None,
                 decided: Callable[[Message, float], None] | None = None,
                 analysis: ChainAnalysis | None = None) -> None:
        """`clock`, `broker` and `calendar` are injected by replays and backtests (the wall clock, the paper
        broker and the market's calendar otherwise): the engine itself is the same code live and simulated.
        `ml_recorder` receives every labelled decision (modelops/ builds training sets with it).
        `origin` gives the perf_counter_ns where the message in hand started (the live feed: when the feed was
        due to send it), from which tick-to-signal latency counts; without it, from `on_message`'s call.
        `decided` hears of every signal decision with its latency in seconds. `analysis` analyses the option
        chain (in line, deterministic, unless the live runtime passes a background one)."""
        self.config = config
        self.trace = tracer or DecisionTracer(None, config.symbol, config.revision)
        self.symbol = config.symbol
        self.metrics = metrics
        self.sink = sink
        self.broker: Broker = broker or PaperBroker()
        self.clock: Clock = clock or WallClock()
        self.periods = PeriodTracker(calendar or calendar_for(config.market))
        self.state = EngineState()
        self.ofi = OrderFlowImbalance(100)
        self.flow = TradeFlow(200)
        self.vpin = SessionVpin()
        self.profile: VolumeProfile | None = None
        self.timeframes = MultiTimeframe(TIMEFRAMES)
        self.accuracy = AccuracyTracker(horizon=float(config.runtime.strategy.horizon_seconds))
        self.drawdown = DrawdownGuard(halt_at=config.runtime.risk.max_drawdown)
        self.position_cap = math.inf
        """Largest notional the correlation limits leave this symbol (set from the portfolio view)."""
        self.black_swan = BlackSwanDetector()
        self._rng = random.Random(seed)
        self._microprice = math.nan
        self._last_quote = (0.0, 0.0)
        self._variance_rate = 0.0
        self.chain: dict[str, dict[tuple[float, str], float]] = {}
        self.contracts: dict[str, Contract] = {}
        self.multiplier = 50.0 if config.market == "futures-options" else 100.0
        self.analysis: ChainAnalysis = analysis or InlineAnalysis()
        self._option_updates = 0
        self.controls = PreTradeControls(config.runtime.pre_trade)
        self.ml = MlLoop(config, metrics, ml_recorder)
        self._origin, self._decided = origin, decided
        # The tick path's own series, looked up once (a labels() lookup costs more than the observation).
        self._tick_to_signal = metrics.tick_to_signal.labels(self.symbol)
        self._ticks = {kind: metrics.ticks.labels(self.symbol, kind) for kind in ("snapshot", "quote", "trade")}
        self._gauges: dict[tuple[Gauge, tuple[str, ...]], Gauge] = {}
        self.active = True
        """False in a hot standby: everything is computed, no order is sent (trading_runtime/leadership.py)."""
        self._seq = -1
        self._last_signal: Row | None = None
        self._working: dict[str, tuple[OrderRequest, str | None, int]] = {}
        """Orders sent to a broker whose result comes later: (request, signal id, when submitted)."""
        self.replaying = False
        """Warming up from history (`warm`): indicators and scored calls only; no row, order or signal count."""
        self._live_sink: Sink = sink
        self._live_halts: dict[str, bool] = {}
        self.set_trading_enabled(trading_enabled)
        metrics.set_build("0.1.0", config.revision)

    # Config -----------------------------------------------------------------------------------------

    def apply_config(self, config: RenderedConfig) -> None:
        """A hot-reloaded config: thresholds, risk and pre-trade limits and the tick-path faults (latency,
        errors, accuracy) apply from the next tick. The writer's parameters are the runtime's to apply
        (trading_runtime/main.py); the process faults (crash, never ready, ballast) act at start only."""
        self.config = config
        self.accuracy.horizon = float(config.runtime.strategy.horizon_seconds)
        self.drawdown.halt_at = config.runtime.risk.max_drawdown
        self.controls.limits = config.runtime.pre_trade
        self.ml.apply_config(config)
        self.metrics.set_build("0.1.0", config.revision)
        self.trace.revision = config.revision

    def set_trading_enabled(self, enabled: bool) -> None:
        was_enabled = self.state.halted.get("kill-switch") is False
        self._halt("kill-switch", not enabled)
        if not enabled:
            now = self.clock.now()
            cancelled = self.broker.cancel_all()
            if was_enabled:  # the kill switch was used now (not a runtime starting halted)
                self.sink("risk_events", (_utc(now), self.symbol, "kill-switch", "warning",
                                          {"cancelled_orders": cancelled, "open_positions": self.broker.held()}))
            self._flatten(now, "kill-switch")

    # Leadership -------------------------------------------------------------------------------------

    def promote(self, positions: dict[str, Position], fees: float, adopted: Sequence[Difference] = (),
                replayed: Sequence[Booked] = ()) -> None:
        """This replica now leads: take over the book's positions (never start flat), then hold what the
        current view calls for. The view's signal is written again (same id) and its orders are ids of the
        decision, instrument and target: an order the old leader placed and booked is not needed again, one it
        placed and did not book is sent again under the same id (a broker that saw it refuses the second).
        `adopted`: instruments whose booked quantity was not the broker's (`positions` holds the broker's), each
        recorded as a risk event and a position row, so the book says what the broker holds. `replayed`: the
        broker's fills the book did not hold (`fees` counts theirs), booked first — order, fill and position rows
        under the ids the old leader would have written, stamped with the latest market time like every row of
        the takeover (so the book's latest position is the last one written), and one `fills-replayed` event."""
        self.broker.restore(positions, fees)
        self.active = True
        ts = self.last_ts if math.isfinite(self.last_ts) and self.last_ts > 0 else self.clock.now()
        self._book_replayed(ts, replayed)
        for difference in adopted:
            instrument, position = difference.instrument, positions[difference.instrument]
            self.metrics.book_reconciled.labels(self.symbol, instrument).inc()
            log.error("book of %s differs from the broker's: %s booked %+g, the broker holds %+g (adopted)",
                      self.symbol, instrument, difference.book, difference.broker)
            self.sink("risk_events", (_utc(ts), self.symbol, "book-reconciled", "critical",
                                      {"instrument": instrument, "book": difference.book,
                                       "broker": difference.broker}))
            self.sink("positions", (_utc(ts), self.symbol, instrument, position.quantity, position.average_price,
                                    position.realized))
        if self._last_signal is not None and self.trading:
            self.sink("signals", self._last_signal)
            self._rebalance(self.last_ts, str(self._last_signal[0]))

    def _book_replayed(self, ts: float, replayed: Sequence[Booked]) -> None:
        for booked in replayed:
            fill, position = booked.fill, booked.position
            side = "buy" if fill.quantity > 0 else "sell"
            self.sink("orders", (fill.order_id, _utc(ts), self.symbol, fill.instrument, side, abs(fill.quantity), None,
                                 None, "filled"))
            self.sink("fills", (ids.fill_id(fill.order_id), _utc(ts), fill.order_id, fill.quantity, fill.price,
                                fill.fee))
            self.sink("positions", (_utc(ts), self.symbol, fill.instrument, position.quantity, position.average_price,
                                    position.realized))
        if not replayed:
            return
        self.metrics.fills_replayed.labels(self.symbol).inc(len(replayed))
        log.warning("booked %d fill(s) of %s the book did not hold, from the broker's fills", len(replayed),
                    self.symbol)
        self.sink("risk_events", (_utc(ts), self.symbol, "fills-replayed", "warning",
                                  {"fills": [{"order_id": b.fill.order_id, "instrument": b.fill.instrument,
                                              "quantity": b.fill.quantity, "price": b.fill.price, "fee": b.fill.fee,
                                              "filled_at": b.fill.ts} for b in replayed]}))

    def demote(self) -> None:
        """Leadership lost: from now on no order. The positions stay in the book for the next leader; this
        replica holds none of its own (a drain asking it for open positions hears none)."""
        self.active = False
        self.broker.restore({}, 0.0)
        self._working.clear()

    def _halt(self, reason: str, on: bool) -> None:
        self.state.halted[reason] = on
        self.metrics.trading_halted.labels(self.symbol, reason).set(1 if on else 0)

    @property
    def trading(self) -> bool:
        return not any(self.state.halted.values())

    # Tick path --------------------------------------------------------------------------------------

    def on_message(self, message: Message) -> Awaitable[None] | None:
        """Handle one message: None once done, or (with an injected latency) an awaitable that finishes it, the
        decision counted after the delay. Processing errors are counted and logged, never raised."""
        started = self._origin() if self._origin is not None else time.perf_counter_ns()
        self.trace.begin(message)
        faults = self.config.runtime.fault_injection
        try:
            # Counted before anything can fail: errors over processed messages is then the share that failed
            # (an injected error rate p reads p, not p / (1 - p)). Heartbeats are not market messages.
            if isinstance(message, Heartbeat):
                signal = None
            else:
                self._ticks[message.type].inc()
                if faults.error_rate and self._rng.random() < faults.error_rate:
                    raise InjectedFaultError("injected processing error")
                signal = self._process(message)
        except Exception as exc:
            self.metrics.errors.labels(self.symbol, "process").inc()
            log.debug("tick failed: %s", exc)
            self.trace.finish(exc)
            return None
        if faults.extra_latency_ms:
            return self._decide_after(faults.extra_latency_ms / 1000, message, signal, started)
        self._decided_on(message, signal, started)
        return None

    async def _decide_after(self, delay: float, message: Message, signal: Signal | None, started: int) -> None:
        await asyncio.sleep(delay)
        self._decided_on(message, signal, started)

    def _decided_on(self, message: Message, signal: Signal | None, started: int) -> None:
        """The tick is over: its latency, from `started` (perf_counter_ns), counts if it made a decision."""
        if signal is not None:
            latency = (time.perf_counter_ns() - started) / 1e9
            self._tick_to_signal.observe(latency)
            if self._decided is not None:
                self._decided(message, latency)
        self.trace.finish(None, None if signal is None else self.state.direction)

    # Warm-up from history ----------------------------------------------------------------------------

    def start_warmup(self) -> None:
        """History is about to be replayed (`warm`): from now until `go_live`, nothing leaves the engine."""
        self._live_sink, self._live_halts = self.sink, dict(self.state.halted)
        self.sink, self.replaying = _discard, True

    def warm(self, message: Quote | Trade) -> None:
        """One event of recent history, through the same path as a live tick (`_process`: indicators, the
        signal, its scoring on the horizon grid), with nothing leaving the engine: no row is written, no order
        sent, no latency or tick counted. Raises what `_process` raises (the caller counts and skips it)."""
        assert self.replaying, "start_warmup first"
        self._process(message)

    def go_live(self) -> None:
        """The history is over. The scored calls so far are retrospective. What the replay left that would act
        on trading is undone: a halt it raised (a black swan or drawdown in the history was not recorded, so it
        must not stop live trading unexplained: the detectors, warm, see the live market themselves) and the view
        it ended on (the first live tick decides afresh, as at a cold start, so an order is made on a live
        price). Positions, fills and orders were never touched: the replay sends none."""
        if not self.replaying:
            return
        self.sink, self.replaying = self._live_sink, False
        for reason in set(self.state.halted) | set(self._live_halts):
            if self.state.halted.get(reason, False) != self._live_halts.get(reason, False):
                self._halt(reason, self._live_halts.get(reason, False))
        self.accuracy.go_live()
        self.state.direction = 0
        self._last_signal = None

    def _process(self, message: Snapshot | Quote | Trade) -> Signal | None:
        if isinstance(message, Snapshot) or message.instrument == self.symbol:
            self._track_period(message.ts)
        if isinstance(message, Snapshot):
            self._on_quote(message.underlying.bid, message.underlying.ask, message.underlying.bid_size,
                           message.underlying.ask_size, message.ts)
            for option in message.options:
                self._on_option(option.instrument, option.bid, option.ask, message.ts)
            return None
        if message.instrument != self.symbol:
            if isinstance(message, Quote):
                self._on_option(message.instrument, message.bid, message.ask, message.ts)
            return None
        if isinstance(message, Quote):
            self._on_quote(message.bid, message.ask, message.bid_size, message.ask_size, message.ts)
            self.sink("ticks", (_utc(message.ts), self.symbol, message.instrument, "quote", message.bid, message.ask,
                                message.bid_size, message.ask_size, None, None, message.seq))
        else:
            self._on_trade(message)
            self.sink("ticks", (_utc(message.ts), self.symbol, message.instrument, "trade", None, None, None, None,
                                message.price, message.size, message.seq))
        if math.isnan(self.state.mid):
            return None
        self._seq = message.seq
        self.trace.mark("indicators")
        return self._decide(message.ts)

    # Session breaks (begin) ---------------------------------------------------------------------------

    def _track_period(self, ts: float) -> None:
        """At a session open or close (trading_runtime/sessions.py), end what must not span the break."""
        if not self.periods.update(ts):
            return
        period = self.periods.current
        assert period is not None
        self.accuracy.new_period()
        self.ml.new_period()
        self.black_swan.new_period()
        self.vpin.new_session()
        self.timeframes = MultiTimeframe(TIMEFRAMES)
        if period.open and self.state.halted.get("black-swan"):
            self._halt("black-swan", False)  # a black-swan halt lasts until the next session opens
            self.sink("risk_events", (_utc(ts), self.symbol, "black-swan-cleared", "info",
                                      {"session": period.key}))
            log.warning("black-swan halt on %s cleared at the open of session %s", self.symbol, period.key)

    # Session breaks (end) -----------------------------------------------------------------------------

    def _on_quote(self, bid: float, ask: float, bid_size: float, ask_size: float, ts: float) -> None:
        mid = (bid + ask) / 2
        self._update_volatility(ts, mid)
        self.state.mid, self.state.spread = mid, ask - bid
        self.ofi.update(bid, ask, bid_size, ask_size)
        self._microprice = microprice(bid, ask, bid_size, ask_size)
        self.broker.quote(self.symbol, bid, ask)
        regime = self.ml.on_quote(ts, mid, ask - bid, bid_size + ask_size)
        if regime is not None:
            self.sink("risk_events", (_utc(ts), self.symbol, "regime-change", "warning",
                                      {"features": list(regime.features)}))
            log.warning("regime change on %s (%s): sizing tightened", self.symbol, ", ".join(regime.features))
        swan = self.black_swan.update(ts, self.state.mid, self.state.spread, bid_size + ask_size)
        if swan is not None and not self.state.halted.get("black-swan"):
            self._halt("black-swan", True)
            self.sink("risk_events", (_utc(ts), self.symbol, swan.kind, "critical", swan.detail))
            log.error("black swan on %s: %s %s; trading halted", self.symbol, swan.kind, swan.detail)
            self._flatten(ts, "black-swan")

    def _update_volatility(self, ts: float, mid: float) -> None:
        """EWMA of squared log returns per second of exchange time, annualised on trading seconds."""
        last_ts, last_mid = self._last_quote
        if last_mid > 0 and ts > last_ts and mid > 0:
            rate = math.log(mid / last_mid) ** 2 / (ts - last_ts)
            self._variance_rate += 0.01 * (rate - self._variance_rate) if self._variance_rate else rate
        self._last_quote = (ts, mid)

    @property
    def realised_vol(self) -> float:
        """Annualised realised volatility of the underlying (0 until the first return)."""
        return math.sqrt(self._variance_rate * TRADING_SECONDS_PER_YEAR)

    def _on_option(self, instrument: str, bid: float, ask: float, ts: float) -> None:
        """Keep the chain's quotes (tradable by the broker); every SURFACE_EVERY updates, analyse the IVs
        across strikes."""
        contract = parse_option_id(instrument)
        if contract is None:
            return
        self.contracts[instrument] = contract
        self.broker.quote(instrument, bid, ask, self.multiplier)
        self.chain.setdefault(contract.expiry, {})[(contract.strike, contract.right)] = (bid + ask) / 2
        self._option_updates += 1
        if self._option_updates % SURFACE_EVERY == 0 and not math.isnan(self.state.mid):
            chain = {expiry: dict(quotes) for expiry, quotes in self.chain.items()}
            self.analysis.submit(ChainSample(ts, self.state.mid, self.model, chain))

    @property
    def surface_features(self) -> SurfaceFeatures | None:
        """The latest finished cross-strike analysis of the chain."""
        return self.analysis.latest

    @property
    def model(self) -> Model:
        return "black76" if self.config.market == "futures-options" else "bsm"

    def _on_trade(self, trade: Trade) -> None:
        if self.profile is None:
            self.profile = VolumeProfile(tick=max(0.01, round(trade.price * 0.0002, 2)))
        if not math.isnan(self.state.mid):
            self.flow.update(trade.price, trade.size, self.state.mid)
        self.vpin.update(trade.price, trade.size)
        period = self.periods.current
        self.profile.update(trade.price, trade.size, session=period.key if period else None)
        for seconds, bar in self.timeframes.update(trade.ts, trade.price, trade.size):
            self.sink("bars", (_utc(bar.start), self.symbol, int(seconds), bar.open, bar.high, bar.low, bar.close,
                               bar.volume))

    def _evidence(self) -> Evidence:
        mid, half = self.state.mid, self.state.spread / 2
        value_area = 0.0
        levels = self.profile.levels() if self.profile else None
        if levels is not None and levels.volume > 0:
            value_area = 1.0 if mid > levels.vah else -1.0 if mid < levels.val else 0.0
        return Evidence(
            ofi=self.ofi.value,
            microprice_tilt=(self._microprice - mid) / half if half > 0 else 0.0,
            trade_imbalance=self.flow.imbalance,
            timeframe_agreement=self.timeframes.agreement(),
            value_area_position=value_area,
            vpin=self.vpin.value,
            dislocated=self._dislocated(),
            skew_z=self.surface_features.skew_z if self.surface_features else math.nan,
            term_z=self.surface_features.term_z if self.surface_features else math.nan,
        )

    def _dislocated(self) -> bool:
        """Strikes breaking away only mean something when the chain otherwise moves together."""
        features = self.surface_features
        return bool(features and features.avg_correlation >= 0.5 and features.dislocated_strikes)

    def _decide(self, ts: float) -> Signal:
        strategy = self.ml.strategy(self.config.runtime.strategy)
        evidence = self._evidence()
        signal = combine(evidence, strategy)
        direction = signal.direction
        if direction and self._rng.random() < self.config.runtime.fault_injection.accuracy_degradation:
            direction = -direction
        direction = self.ml.decide(ts, evidence, signal, direction, self.state.mid, self.state.spread,
                                   self.realised_vol, self.surface_features)
        self.trace.mark("signal")
        if not direction and self.state.direction and abs(signal.score) >= strategy.exit_score \
                and signal.score * self.state.direction > 0:
            direction = self.state.direction  # hold until the score falls below the exit threshold
        self.accuracy.update(ts, self.state.mid, self.state.spread, direction)
        if direction != self.state.direction:
            self.state.direction = direction
            if not self.replaying:
                self.metrics.signals.labels(self.symbol, {1: "long", -1: "short", 0: "flat"}[direction]).inc()
            signal_id = ids.signal_id(self.symbol, ts, self._seq, direction)
            self._last_signal = (signal_id, _utc(ts), self.symbol, self.config.revision, direction, signal.score,
                                 signal.confidence, {})
            self.sink("signals", self._last_signal)
            self._rebalance(ts, signal_id)
        self._publish_risk()
        self.trace.mark("drawdown")
        return signal

    # Orders and risk --------------------------------------------------------------------------------

    def _equity(self) -> float:
        return self.config.runtime.risk.capital + self.broker.realized() + self.broker.unrealized()

    def _target_notional(self, ts: float) -> float:
        """Delta notional the position should have (0 when flat or halted): the risk rules' size, which the
        machine-learning multipliers can only shrink."""
        if not self.trading or not self.state.direction:
            return 0.0
        report = self.accuracy.report
        hit_rate = report.hit_rate if report.calls >= 30 else 0.55
        state = self.drawdown.update(self._equity())
        notional = position_notional(self._equity(), realised_vol=max(self.realised_vol, 0.02),
                                     target_vol=self.config.runtime.risk.target_volatility, hit_rate=hit_rate,
                                     payoff_ratio=1.0) * state.size_multiplier
        risk = self.config.runtime.risk
        return self.ml.size(min(notional, self.position_cap), ts, self._equity(), risk.capital, self.realised_vol,
                            risk.target_volatility)

    def _rebalance(self, ts: float, signal_id: str) -> None:
        """Hold the view's contract in the right size; close anything else. The orders carry the id of the
        signal that moved the view."""
        target: Contract | None = None
        contracts = 0
        notional = self._target_notional(ts)
        if notional > 0:
            target = choose_contract(list(self.contracts.values()), self.state.mid, self.state.direction, ts)
            quote = self.broker.quotes.get(target.instrument) if target else None
            greeks = contract_greeks(target, (quote[0] + quote[1]) / 2, self.state.mid, ts, RATE, self.model) \
                if target and quote else None
            contracts = contracts_for(notional, greeks.delta, self.state.mid, self.multiplier) if greeks else 0
        self.trace.mark("risk")
        for instrument, quantity in self.broker.held().items():
            if target is None or instrument != target.instrument:
                self._order(instrument, -quantity, ts, signal_id)
        if target is not None:
            self._order(target.instrument, contracts - self.broker.position(target.instrument).quantity, ts,
                        signal_id)

    def _flatten(self, ts: float, reason: str) -> None:
        """Close everything: a risk action (kill switch, halt), recorded in risk_events, not a signal's order."""
        action = ids.action_id(self.symbol, reason, ts)
        for instrument, quantity in self.broker.held().items():
            self._order(instrument, -quantity, ts, None, action)

    def _order(self, instrument: str, quantity: float, ts: float, signal_id: str | None,
               decision: str | None = None) -> None:
        """One order of a decision (`signal_id`, or `decision` for a risk action): its id follows from both."""
        if not self.active or self.replaying:
            return  # a hot standby decides, the leader orders; history is never traded
        order_id = ids.order_id(decision or signal_id or "", instrument,
                                self.broker.position(instrument).quantity + quantity)
        submitted = self.trace.now()
        bid, ask = self.broker.quotes.get(instrument, (math.nan, math.nan))
        request = OrderRequest(instrument, quantity, ask if quantity > 0 else bid, (bid + ask) / 2,
                               self.broker.multipliers.get(instrument, 1.0),
                               self.broker.position(instrument).quantity, ts)
        self.metrics.orders.labels(self.symbol).inc()
        rejection = self.controls.check(request, self.trading)
        if rejection is not None:
            self._reject(request, rejection)
            return
        fill = self.broker.submit(instrument, quantity, ts, order_id=order_id)
        if isinstance(fill, Working):
            self._working[fill.order_id] = (request, signal_id, submitted)
        elif fill is not None:
            self._filled(fill, request, signal_id, submitted)

    def order_result(self, result: OrderResult) -> None:
        """A working order ended (a broker over the network): record its fill, its refusal (by the broker, or
        because it never reached it), or halt trading when its outcome is unknown (the position cannot be known:
        no new risk until someone looks)."""
        request, signal_id, submitted = self._working.pop(result.order_id, (None, None, self.trace.now()))
        if request is None:
            return
        if result.fill is not None:
            self._filled(result.fill, request, signal_id, submitted, result.position)
        elif result.outcome in ("rejected", "unsent"):
            self._reject(request, Rejection(RejectReason.BROKER, result.reason))
        else:
            self.metrics.errors.labels(self.symbol, "broker").inc()
            log.error("order %s %s %+g: outcome unknown (%s)", result.order_id, result.instrument, result.quantity,
                      result.reason, extra={"order_id": result.order_id})
            if not self.state.halted.get("broker"):
                log.error("trading on %s halted: an order's outcome is unknown", self.symbol)
                self._halt("broker", True)
                self.sink("risk_events", (_utc(request.ts), self.symbol, "broker-unknown", "critical",
                                          {"order_id": result.order_id, "instrument": result.instrument,
                                           "quantity": result.quantity, "reason": result.reason}))

    def _filled(self, fill: Fill, request: OrderRequest, signal_id: str | None, submitted: int,
                position: Position | None = None) -> None:
        """Record a fill: its order, the fill, and the instrument's `position` after it (the broker's, by
        default)."""
        ts, instrument, quantity = request.ts, request.instrument, request.quantity
        filled = self.trace.now()
        self.metrics.fills.labels(self.symbol).inc()
        if request.mid > 0:  # no quote, no mid: the fill is counted, its slippage is unknown
            self.metrics.fill_slippage.labels(self.symbol).observe(
                (fill.price - request.mid) / request.mid * 1e4 * (1 if quantity > 0 else -1))
        side = "buy" if quantity > 0 else "sell"
        self.sink("orders", (fill.order_id, _utc(ts), self.symbol, instrument, side, abs(quantity), None, signal_id,
                             "filled"))
        self.sink("fills", (ids.fill_id(fill.order_id), _utc(ts), fill.order_id, quantity, fill.price, fill.fee))
        position = position or self.broker.position(instrument)
        self.sink("positions", (_utc(ts), self.symbol, instrument, position.quantity, position.average_price,
                                position.realized))
        self.trace.order(submitted, filled, instrument, quantity, fill.price)
        # Orders are rare (a signal's change of view): each one is logged with the id it was placed under.
        log.info("order %s %s %+g at %.4f", fill.order_id, instrument, quantity, fill.price,
                 extra={"order_id": fill.order_id, "instrument": instrument, "quantity": quantity, "exchange_ts": ts})

    def _reject(self, request: OrderRequest, rejection: Rejection) -> None:
        self.metrics.order_rejections.labels(self.symbol, rejection.reason.value).inc()
        price = request.price if math.isfinite(request.price) else None
        self.sink("order_rejections", (str(uuid.uuid4()), _utc(request.ts), self.symbol, request.instrument,
                                       request.side, abs(request.quantity), price, rejection.reason.value,
                                       {"message": rejection.message, "position": request.position}))
        log.warning("order rejected: %s %s %+g: %s", self.symbol, request.instrument, request.quantity,
                    rejection.message)

    def decisions_report(self) -> dict[str, Any]:
        """The latest scored signal calls (`/decisions`): what a shadow run pairs with the stable revision's."""
        tracker = self.accuracy
        report: dict[str, Any] = {"symbol": self.symbol, "revision": self.config.revision,
                                  "horizonSeconds": tracker.horizon,
                                  "points": [[p.slot, p.direction, p.actual] for p in tracker.decisions]}
        # Points on slots before it were called on replayed history; during the replay, every point so far.
        before = tracker.next_slot if self.replaying else tracker.retrospective_before
        if before is not None:
            report["retrospectiveBefore"] = before
        return report

    @property
    def last_ts(self) -> float:
        """Exchange time of the last underlying quote."""
        return self._last_quote[0]

    def book_greeks(self, ts: float) -> dict[str, float]:
        """The held options' greeks in currency units of the underlying (× contracts × multiplier)."""
        total = {"delta": 0.0, "gamma": 0.0, "vega": 0.0}
        for instrument, quantity in self.broker.held().items():
            contract, quote = self.contracts.get(instrument), self.broker.quotes.get(instrument)
            if contract is None or quote is None:
                continue
            g = contract_greeks(contract, (quote[0] + quote[1]) / 2, self.state.mid, ts, RATE, self.model)
            if g is None:
                continue
            scale = quantity * self.multiplier
            total["delta"] += g.delta * scale
            total["gamma"] += g.gamma * scale
            total["vega"] += g.vega * scale
        total["notional"] = total["delta"] * self.state.mid
        return total

    def _publish_risk(self) -> None:
        equity = self._equity()
        state = self.drawdown.update(equity)
        if state.halted and not self.state.halted.get("drawdown"):
            self._halt("drawdown", True)
            self._flatten(self.clock.now(), "drawdown")
        m, series = self.metrics, self._series
        series(m.pnl, "realized").set(self.broker.realized())
        series(m.pnl, "unrealized").set(self.broker.unrealized())
        series(m.drawdown).set(state.drawdown)
        report = self.accuracy.report
        if report.scored:
            series(m.coverage).set(report.coverage)
        if report.calls:  # no calls yet: no data, not a hit rate of 0
            series(m.hit_rate).set(report.hit_rate)
            series(m.baseline_hit_rate, "persistence").set(report.persistence_hit_rate)
            series(m.baseline_hit_rate, "majority").set(report.majority_hit_rate)

    def _series(self, metric: Gauge, *labels: str) -> Gauge:
        """This symbol's child of `metric`, created on first use (a series without data stays absent) and
        looked up once: prometheus_client's labels() costs more than the update."""
        key = (metric, labels)
        child = self._gauges.get(key)
        if child is None:
            child = self._gauges[key] = metric.labels(self.symbol, *labels)
        return child
