"""The backtester drives the live engine: deterministic, citable results, and no look-ahead — proven by
cutting the data (a run on a prefix decides exactly as the full run did before the cut) and by catching a
strategy that peeks one bar ahead."""

from __future__ import annotations

import json
import math

import pytest

from backtest.data import SyntheticSource, load
from backtest.lookahead import check
from backtest.runner import RunSpec, live_engine, run
from trading_runtime.feeds.events import QUOTE
from trading_runtime.signals.combiner import Evidence

ACTIVE = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}}


@pytest.fixture(scope="module")
def events():
    """Two sessions of the synthetic market, 30 minutes each."""
    return load(SyntheticSource(days=2, session_minutes=30, seed=1), "equity-options").events


def test_a_run_is_deterministic_and_citable(events):
    spec = RunSpec.model_validate({"config": ACTIVE})
    first, second = run(events, spec), run(events, spec)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.run_id == second.run_id
    assert run(events, RunSpec()).run_id != first.run_id
    assert first.performance.fills == len(first.ledger) > 0
    assert first.errors == 0
    assert first.data.sessions == 2
    document = json.loads(first.model_dump_json())
    assert "wall_s" not in document
    assert document["data"]["fingerprint"] == events.fingerprint()


def test_orders_fill_at_the_touch_with_fees_and_the_multiplier(events):
    result = run(events, RunSpec.model_validate({"config": ACTIVE, "fill": {"fee_per_contract": 1.0}}))
    assert {f.multiplier for f in result.ledger} == {100.0}
    assert all(f.price == f.touch for f in result.ledger)
    assert result.performance.fees == pytest.approx(sum(abs(f.quantity) for f in result.ledger))


def test_latency_fills_later_never_earlier(events):
    slow = run(events, RunSpec.model_validate({"config": ACTIVE, "fill": {"latency_ms": 1500, "slippage_ticks": 1}}))
    assert slow.ledger
    for fill in slow.ledger:
        assert fill.filled_at >= fill.decided_at + 1.5
        assert fill.price == pytest.approx(fill.touch + (0.01 if fill.quantity > 0 else -0.01))


def test_cutting_the_data_changes_nothing_before_the_cut(events):
    """No look-ahead: the live engine decides before each cut exactly as it does with all the data."""
    spec = RunSpec.model_validate({"config": ACTIVE, "fill": {"latency_ms": 250}})
    cuts = [events.start + 900, events.start + 1800, events.end - 600]
    assert check(events, spec, cuts) == []


def test_a_strategy_peeking_one_bar_ahead_is_caught(events):
    spec = RunSpec.model_validate({"config": ACTIVE})

    def peeking(config, sink, broker, clock, data):
        """Evidence from the mid one minute ahead in the run's own data: what a bar-close-at-bar-start bug
        or an off-by-one index into the data set gives a strategy."""
        engine = live_engine(config, sink, broker, clock, data)
        underlying = (data.kind == QUOTE) & (data.instrument == data.instruments.index(data.symbol))
        times, mids = data.ts[underlying], (data.bid[underlying] + data.ask[underlying]) / 2

        def evidence() -> Evidence:
            index = int(times.searchsorted(clock.now() + 60))
            if index >= len(times) or mids[index] == engine.state.mid:
                return Evidence()
            sign = math.copysign(1.0, float(mids[index]) - engine.state.mid)
            return Evidence(ofi=3 * sign, microprice_tilt=sign, trade_imbalance=sign, timeframe_agreement=sign,
                            value_area_position=sign)

        engine._evidence = evidence  # type: ignore[method-assign]
        return engine

    assert run(events, spec, peeking).performance.hit_rate > 0.9  # it does see the future
    cut = events.start + 1800
    problems = check(events, spec, [cut], engine_factory=peeking)
    assert problems
    assert problems[0].startswith(f"cut at {cut:.0f}: ")
