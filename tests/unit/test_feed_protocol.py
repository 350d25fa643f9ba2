"""The feed protocol, sequence tracking, backoff and the synthetic market (pure parts)."""

from __future__ import annotations

import contextlib
import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_runtime.feeds.client import SequenceTracker, Verdict, backoff_delay
from trading_runtime.feeds.protocol import Quote, Snapshot, Trade, parse_message
from trading_runtime.feeds.synthetic import RATE, MarketSimulator
from trading_runtime.pricing.black_scholes import price

QUOTE = {"type": "quote", "symbol": "SPY", "seq": 3, "ts": 1.5, "instrument": "SPY", "bid": 500.0, "ask": 500.05,
         "bidSize": 100, "askSize": 200}


def test_valid_messages_parse():
    quote = parse_message(json.dumps(QUOTE))
    assert isinstance(quote, Quote)
    assert quote.mid == pytest.approx(500.025)
    trade = parse_message(json.dumps({"type": "trade", "symbol": "ES", "seq": 1, "ts": 2.0,
                                      "instrument": "ES-20261218-C-5000", "price": 12.5, "size": 3}))
    assert isinstance(trade, Trade)


@pytest.mark.parametrize(
    "change",
    [{"bid": -1}, {"ask": 499.0}, {"bid": float("nan")}, {"symbol": "spy"}, {"seq": -1}, {"type": "bogus"},
     {"instrument": "SPY; DROP TABLE"}, {"bidSize": "lots"}],
    ids=["negative-bid", "crossed", "nan", "bad-symbol", "negative-seq", "unknown-type", "hostile-id", "bad-size"],
)
def test_invalid_messages_raise_value_error(change):
    with pytest.raises(ValueError, match="validation error"):
        parse_message(json.dumps({**QUOTE, **change}))


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200),
                 st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                         max_size=4), max_leaves=20)
                 .map(lambda value: json.dumps(value))))
def test_arbitrary_frames_either_parse_or_raise_value_error(frame):
    with contextlib.suppress(ValueError):
        parse_message(frame)


@pytest.mark.parametrize(
    ("events", "verdicts"),
    [([("snap", 5), 6, 7], [Verdict.IN_ORDER, Verdict.IN_ORDER]),
     ([("snap", 5), 7, 8, ("snap", 9), 10], [Verdict.GAP, Verdict.STALE, Verdict.IN_ORDER]),
     ([("snap", 5), 5, 6], [Verdict.STALE, Verdict.IN_ORDER]),
     ([4, ("snap", 5), 6], [Verdict.STALE, Verdict.IN_ORDER])],
    ids=["in-order", "gap-then-resync", "duplicate", "before-first-snapshot"],
)
def test_sequence_tracker(events, verdicts):
    tracker = SequenceTracker()
    seen = []
    for event in events:
        if isinstance(event, tuple):
            tracker.snapshot("SPY", event[1])
        else:
            seen.append(tracker.check("SPY", event))
    assert seen == verdicts


def test_backoff_is_jittered_exponential_and_capped():
    rng = random.Random(1)
    for attempt in range(12):
        delays = [backoff_delay(attempt, rng, base=0.1, cap=5.0) for _ in range(200)]
        assert min(delays) >= 0.0
        assert max(delays) <= min(5.0, 0.1 * 2**attempt)
        assert len(set(delays)) > 150  # jittered, not a fixed schedule


def test_simulator_is_deterministic_by_seed():
    def stream(seed):
        simulator = MarketSimulator(["SPY", "ES"], seed=seed)
        return [m for _ in range(50) for s in ("SPY", "ES") for m in simulator.tick(s, 0.2)]

    assert stream(3) == stream(3)
    assert stream(3) != stream(4)


def test_simulator_messages_follow_the_protocol():
    simulator = MarketSimulator(["SPY", "QQQ", "ES"], seed=0)
    snapshot = parse_message(json.dumps({**simulator.snapshot("ES"), "seq": 0}))
    assert isinstance(snapshot, Snapshot)
    assert len(snapshot.options) == 3 * 11 * 2
    for i in range(300):
        for message in simulator.tick("QQQ", 0.5):
            parse_message(json.dumps({**message, "seq": i}))


def test_simulated_chain_has_a_skew_and_no_arbitrage_in_parity():
    simulator = MarketSimulator(["SPY"], seed=0)
    market = simulator.markets["SPY"]
    by_strike = {}
    for option in market.options[:22]:  # the first expiry
        by_strike.setdefault(option.strike, {})[option.right] = option
    low, high = min(by_strike), max(by_strike)
    assert market.implied_vol(by_strike[low]["P"]) > market.implied_vol(by_strike[high]["C"])  # put skew
    option = by_strike[market.options[0].strike]["C"]
    call = float(price(market.spot, option.strike, option.years, 0.2, RATE, True))
    put = float(price(market.spot, option.strike, option.years, 0.2, RATE, False))
    assert call - put == pytest.approx(market.spot - option.strike * math.exp(-RATE * option.years))
