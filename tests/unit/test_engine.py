"""The per-symbol engine driven by the synthetic market: signals, orders, the kill switch and faults."""

from __future__ import annotations

import datetime
import json
import math

from prometheus_client import generate_latest

from tests.unit.recorded_files import MONDAY, minute_bars, open_at, write_csv
from trading_runtime.clock import EventClock
from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.recorded import load_recorded
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics


def config(**runtime) -> RenderedConfig:
    return RenderedConfig(symbol="SPY", market="equity-options", revision=1,
                          runtime=RuntimeConfig.model_validate(runtime))


class Rows:
    def __init__(self) -> None:
        self.by_table: dict[str, list] = {}

    def __call__(self, table, row) -> None:
        self.by_table.setdefault(table, []).append(row)

    def count(self, table) -> int:
        return len(self.by_table.get(table, []))


async def drive(engine: SymbolEngine, ticks: int, seed: int = 0) -> None:
    simulator = MarketSimulator(["SPY"], seed=seed, option_quotes_per_tick=1, trade_probability=0.6)
    seq = 0
    await settle(engine.on_message(parse_message(json.dumps({**simulator.snapshot("SPY"), "seq": seq}))))
    for _ in range(ticks):
        for message in simulator.tick("SPY", 0.25):
            seq += 1
            await settle(engine.on_message(parse_message(json.dumps({**message, "seq": seq}))))


async def test_ticks_become_signals_orders_and_rows():
    rows, metrics = Rows(), RuntimeMetrics("SPY")
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}), True,
                          metrics, rows, seed=0)
    await drive(engine, 3000)
    assert rows.count("ticks") > 3000
    assert rows.count("signals") > 10
    assert rows.count("fills") > 0
    assert rows.count("orders") == rows.count("fills")
    text = generate_latest(metrics.registry).decode()
    assert 'tradeops_tick_to_signal_seconds_count{symbol="SPY"}' in text
    assert engine.accuracy.report.scored > 0


async def test_kill_switch_flattens_and_stops_new_positions():
    rows, metrics = Rows(), RuntimeMetrics("SPY")
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}), True,
                          metrics, rows, seed=0)
    await drive(engine, 1500)
    engine.set_trading_enabled(False)
    assert engine.broker.open_positions() == 0
    fills_after_halt = rows.count("fills")
    await drive(engine, 1500, seed=1)
    assert rows.count("fills") == fills_after_halt
    assert 'tradeops_trading_halted{reason="kill-switch",symbol="SPY"} 1.0' in generate_latest(
        metrics.registry).decode()


async def test_injected_errors_are_counted_and_do_not_stop_the_engine():
    rows, metrics = Rows(), RuntimeMetrics("SPY")
    engine = SymbolEngine(config(faultInjection={"errorRate": 0.5}), True, metrics, rows, seed=0)
    await drive(engine, 500)
    errors = metrics.registry.get_sample_value("tradeops_errors_total", {"symbol": "SPY", "stage": "process"})
    processed = sum(metrics.registry.get_sample_value("tradeops_ticks_total", {"symbol": "SPY", "kind": kind}) or 0
                    for kind in ("snapshot", "quote", "trade"))
    assert errors is not None
    assert processed > 1000
    # The SLI's ratio reads the injected rate itself (not p / (1 - p) = 1.0): within 5 binomial sigmas of 0.5.
    assert abs(errors / processed - 0.5) < 5 * (0.25 / processed) ** 0.5
    assert rows.count("ticks") > 300


async def test_injected_latency_shows_in_the_latency_histogram():
    metrics = RuntimeMetrics("SPY")
    engine = SymbolEngine(config(faultInjection={"extraLatencyMs": 5}), True, metrics, Rows(), seed=0)
    await drive(engine, 100)
    histogram = metrics.tick_to_signal.labels("SPY")
    total, count = histogram._sum.get(), sum(b.get() for b in histogram._buckets)
    assert count > 50
    assert total / count > 0.004


async def test_option_quotes_feed_the_cross_strike_analysis():
    engine = SymbolEngine(config(), True, RuntimeMetrics("SPY"), Rows(), seed=0)
    await drive(engine, 3000)
    features = engine.surface_features
    assert features is not None
    assert features.skew_slope < 0  # the synthetic market has a put skew
    assert not (features.avg_correlation < 0.5 and engine._dislocated())
    # The skew and term z-scores reach the combiner's evidence.
    evidence = engine._evidence()
    assert math.isfinite(features.skew_z)
    assert evidence.skew_z == features.skew_z
    assert evidence.term_z == features.term_z or math.isnan(evidence.term_z) == math.isnan(features.term_z) is True


async def test_realised_volatility_and_bars_come_from_the_feed():
    rows = Rows()
    engine = SymbolEngine(config(), True, RuntimeMetrics("SPY"), rows, seed=0)
    await drive(engine, 3000)
    assert 0.08 < engine.realised_vol < 0.4  # the synthetic SPY runs at about 18 % volatility
    timeframes = {row[2] for row in rows.by_table["bars"]}
    assert timeframes == {1, 5, 30, 60}


async def test_views_are_expressed_with_options_and_their_greeks():
    rows = Rows()
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
                                 risk={"capital": 50_000_000}), True, RuntimeMetrics("SPY"), rows, seed=0)
    simulator = MarketSimulator(["SPY"], seed=0, option_quotes_per_tick=1, trade_probability=0.6)
    await settle(engine.on_message(parse_message(json.dumps({**simulator.snapshot("SPY"), "seq": 0}))))
    seq, holding = 0, False
    for _ in range(5000):
        for message in simulator.tick("SPY", 0.25):
            seq += 1
            await settle(engine.on_message(parse_message(json.dumps({**message, "seq": seq}))))
        if engine.broker.held() and engine.state.direction:
            holding = True
            break
    assert holding
    traded = {row[3] for row in rows.by_table["orders"]}
    assert all("-C-" in i or "-P-" in i for i in traded)
    book = engine.book_greeks(engine.last_ts)
    assert book["delta"] * engine.state.direction > 0  # calls when long, puts when short
    assert book["gamma"] > 0


async def test_a_synthetic_crash_halts_trading_and_records_a_risk_event():
    rows = Rows()
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
                                 risk={"capital": 50_000_000}), True, RuntimeMetrics("SPY"), rows, seed=0)
    simulator = MarketSimulator(["SPY"], seed=5, option_quotes_per_tick=1, trade_probability=0.6)
    seq = 0

    async def ticks(n: int) -> None:
        nonlocal seq
        for _ in range(n):
            for message in simulator.tick("SPY", 0.25):
                seq += 1
                await settle(engine.on_message(parse_message(json.dumps({**message, "seq": seq}))))

    await settle(engine.on_message(parse_message(json.dumps({**simulator.snapshot("SPY"), "seq": 0}))))
    await ticks(1500)
    assert not engine.state.halted.get("black-swan")
    simulator.markets["SPY"].spot *= 0.92  # an 8 % gap down
    await ticks(20)
    assert engine.state.halted["black-swan"]
    assert engine.broker.held() == {}
    assert rows.by_table["risk_events"][0][2] in {"extreme-move", "jump"}
    fills = rows.count("fills")
    await ticks(500)
    assert rows.count("fills") == fills  # halted: nothing new


async def test_drawdown_past_the_limit_halts_and_flattens():
    rows = Rows()
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
                                 risk={"capital": 2_000_000, "maxDrawdown": 0.0005}), True, RuntimeMetrics("SPY"),
                          rows, seed=0)
    await drive(engine, 3000)  # paying option spreads alone loses more than 0.05 % of capital
    assert engine.state.halted.get("drawdown")
    assert engine.broker.held() == {}


async def replay(engine: SymbolEngine, events, clock: EventClock) -> None:
    for message in events.messages():
        clock.advance(message.ts)
        await settle(engine.on_message(message))


async def test_a_multi_day_bar_replay_with_overnight_gaps_is_never_halted(tmp_path):
    """The defects together: zero spreads, the first small move after the open and the overnight gap all
    halted the black-swan detector, and a halt never cleared for the rest of a multi-day replay."""
    days = [MONDAY + datetime.timedelta(days=i) for i in range(3)]
    rows = minute_bars(days)
    for row in rows[390:]:  # a 1.5 % gap up overnight into Tuesday
        for key in ("open", "high", "low", "close"):
            row[key] = round(row[key] * 1.015, 2)
    events = load_recorded(write_csv(tmp_path / "bars.csv", rows)).events
    rows_out, clock = Rows(), EventClock()
    engine = SymbolEngine(config(), True, RuntimeMetrics("SPY"), rows_out, seed=0, clock=clock)
    await replay(engine, events, clock)
    assert not any(engine.state.halted.values())
    assert "risk_events" not in rows_out.by_table
    assert engine.accuracy.report.unscored_breaks > 0  # the last points of each day were not scored


async def test_a_black_swan_halt_lasts_until_the_next_session_opens(tmp_path):
    rows = minute_bars([MONDAY, MONDAY + datetime.timedelta(days=1)])
    for row in rows[300:390]:  # a 6 % crash at 14:30 on Monday
        for key in ("open", "high", "low", "close"):
            row[key] = round(row[key] * 0.94, 2)
    events = load_recorded(write_csv(tmp_path / "bars.csv", rows)).events
    rows_out, clock = Rows(), EventClock()
    engine = SymbolEngine(config(), True, RuntimeMetrics("SPY"), rows_out, seed=0, clock=clock)
    tuesday_open = open_at(MONDAY + datetime.timedelta(days=1)).timestamp()
    await replay(engine, events.between(0, tuesday_open), clock)
    assert engine.state.halted["black-swan"]
    assert not engine.trading
    await replay(engine, events.between(tuesday_open, math.inf), clock)
    assert not engine.state.halted["black-swan"]
    assert engine.trading
    kinds = [row[2] for row in rows_out.by_table["risk_events"]]
    assert kinds[0] in {"extreme-move", "jump"}
    assert kinds[-1] == "black-swan-cleared"


async def test_the_kill_switch_flattens_at_the_injected_clock_time():
    clock = EventClock(1_772_461_800.0)
    rows = Rows()
    engine = SymbolEngine(config(strategy={"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}), True,
                          RuntimeMetrics("SPY"), rows, seed=0, clock=clock)
    await drive(engine, 1500)
    assert engine.broker.held()
    engine.set_trading_enabled(False)
    assert rows.by_table["orders"][-1][1] == datetime.datetime.fromtimestamp(clock.now(), datetime.UTC)


async def test_the_hit_rate_gauges_read_no_data_until_a_call_is_scored():
    rows, metrics = Rows(), RuntimeMetrics("SPY")
    engine = SymbolEngine(config(strategy={"horizonSeconds": 3600}), True, metrics, rows, seed=0)
    await drive(engine, 200)  # 50 s of market time: no horizon has passed, nothing scored
    assert engine.accuracy.report.calls == 0
    text = generate_latest(metrics.registry).decode()
    assert "tradeops_signal_hit_rate{" not in text  # absent, not 0
    assert "tradeops_signal_baseline_hit_rate{" not in text
    assert "tradeops_signal_coverage{" not in text
    assert 'tradeops_drawdown_ratio{symbol="SPY"}' in text  # the risk gauges were published
