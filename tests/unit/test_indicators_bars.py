"""Incremental bars and multi-timeframe features against batch references, hand-worked cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_runtime.indicators.bars import BarBuilder, MultiTimeframe, TimeframeFeatures


def trades(n: int, seed: int = 0, drift: float = 0.0, gap: float = 0.3):
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.exponential(gap, n))
    prices = 100 + np.cumsum(rng.normal(drift, 0.05, n))
    sizes = rng.integers(1, 100, n)
    return [(float(t), float(p), float(s)) for t, p, s in zip(ts, prices, sizes, strict=True)]


def reference_bars(rows, seconds):
    """Group trades by floor(ts / seconds); one bar per non-empty window."""
    groups: dict[int, list] = {}
    for ts, price, size in rows:
        groups.setdefault(math.floor(ts / seconds), []).append((price, size))
    return [(k * seconds, g[0][0], max(p for p, _ in g), min(p for p, _ in g), g[-1][0], sum(s for _, s in g))
            for k, g in sorted(groups.items())]


@pytest.mark.parametrize(("seconds", "gap"), [(1, 0.3), (5, 0.3), (60, 0.3), (0.25, 0.3), (1, 3.0)],
                         ids=["1s", "5s", "60s", "quarter-second", "sparse-trades-skip-empty-windows"])
def test_bars_match_a_groupby_reference(seconds, gap):
    rows = trades(2000, gap=gap)
    builder = BarBuilder(seconds)
    closed = [bar for row in rows if (bar := builder.update(*row)) is not None]
    closed.append(builder.current)
    assert [(b.start, b.open, b.high, b.low, b.close, b.volume) for b in closed] == reference_bars(rows, seconds)
    starts = [b.start for b in closed]
    assert len(starts) == len(set(starts))


@pytest.mark.parametrize(
    ("rows", "closed", "open_bar"),
    [([(0.1, 10, 1), (0.5, 12, 2), (0.9, 9, 3)], [], (0, 10, 12, 9, 9, 6)),
     ([(0.1, 10, 1), (1.0, 11, 2)], [(0, 10, 10, 10, 10, 1)], (1, 11, 11, 11, 11, 2)),
     ([(0.1, 10, 1), (3.2, 11, 2), (3.7, 12, 1)], [(0, 10, 10, 10, 10, 1)], (3, 11, 12, 11, 12, 3)),
     ([(2.5, 10, 1), (3.2, 11, 1), (2.9, 8, 1)], [(2, 10, 10, 10, 10, 1)], (3, 11, 11, 8, 8, 2))],
    ids=["one-window", "boundary-belongs-to-next-bar", "empty-windows-skipped", "late-trade-folds-in"],
)
def test_bars_hand_worked(rows, closed, open_bar):
    builder = BarBuilder(1)
    got = [bar for row in rows if (bar := builder.update(*row)) is not None]
    assert [(b.start, b.open, b.high, b.low, b.close, b.volume) for b in got] == closed
    current = builder.current
    assert (current.start, current.open, current.high, current.low, current.close, current.volume) == open_bar


def reference_features(closes, highs, lows, fast, slow, k, m):
    """Per closed bar: (trend, momentum, breakout, vote), from full-series loops."""
    out = []
    ema_f = ema_s = closes[0]
    momentum = breakout = 0
    for t, close in enumerate(closes):
        if t:
            ema_f += 2 / (fast + 1) * (close - ema_f)
            ema_s += 2 / (slow + 1) * (close - ema_s)
        trend = int(np.sign(ema_f - ema_s))
        if t >= k:
            momentum = int(np.sign(close / closes[t - k] - 1))
        if t >= m:
            breakout = 1 if close > max(highs[t - m:t]) else -1 if close < min(lows[t - m:t]) else 0
        out.append((trend, momentum, breakout, int(np.sign(trend + momentum + breakout))))
    return out


@pytest.mark.parametrize(("seconds", "fast", "slow", "k", "m", "seed"),
                         [(5, 3, 8, 4, 6, 1), (1, 5, 20, 5, 20, 2), (30, 2, 3, 1, 1, 3)],
                         ids=["5s", "1s-defaults", "30s-short-lookbacks"])
def test_features_match_batch_reference_at_every_bar(seconds, fast, slow, k, m, seed):
    rows = trades(3000, seed=seed)
    frame = TimeframeFeatures(seconds, fast=fast, slow=slow, momentum_bars=k, breakout_bars=m)
    got = []
    for row in rows:
        if frame.update(*row) is not None:
            got.append((frame.trend, frame.momentum, frame.breakout, frame.vote))
    bars = reference_bars(rows, seconds)[:-1]  # the last bar is still open
    closes, highs, lows = [b[4] for b in bars], [b[2] for b in bars], [b[3] for b in bars]
    assert got == reference_features(closes, highs, lows, fast, slow, k, m)
    assert frame.momentum_return == pytest.approx(closes[-1] / closes[-1 - k] - 1)


def test_breakout_above_and_below_the_previous_range():
    frame = TimeframeFeatures(1, breakout_bars=3)
    for ts, price in [(0.5, 100), (1.5, 101), (2.5, 100.5), (3.5, 100.8), (4.5, 105), (5.5, 105)]:
        frame.update(ts, price, 1)
    assert frame.breakout == 1
    for ts, price in [(6.5, 90), (7.5, 90)]:
        frame.update(ts, price, 1)
    assert frame.breakout == -1


@pytest.mark.parametrize(("drift", "sign"), [(0.02, 1), (-0.02, -1)], ids=["uptrend", "downtrend"])
def test_timeframes_agree_in_a_trend(drift, sign):
    mtf = MultiTimeframe((1, 5, 15))
    for row in trades(4000, seed=2, drift=drift):
        mtf.update(*row)
    assert mtf.agreement() == sign
    assert mtf.agreeing() == [1, 5, 15]
    assert mtf.agreeing(-sign) == []


def test_agreement_is_the_mean_vote_over_all_timeframes():
    mtf = MultiTimeframe((1, 5, 30, 60), fast=2, slow=4, momentum_bars=2, breakout_bars=3)
    for row in trades(3000, seed=7):
        mtf.update(*row)
        votes = mtf.votes()
        assert mtf.agreement() == pytest.approx(np.mean([votes[s] for s in (1, 5, 30, 60)]))


def test_no_bars_no_opinion():
    mtf = MultiTimeframe()
    assert mtf.agreement() == 0.0
    assert mtf.agreeing() == []
    mtf.update(0.5, 100, 1)  # opens bars but closes none
    assert mtf.votes() == {1: 0, 5: 0, 30: 0, 60: 0}


@given(st.lists(st.tuples(st.floats(0, 5), st.floats(1, 1000), st.floats(0, 100)), min_size=1, max_size=100))
def test_bars_are_consistent(steps):
    builder = BarBuilder(2)
    mtf = MultiTimeframe((1, 2, 4), fast=2, slow=3, momentum_bars=1, breakout_bars=2)
    ts, bars = 0.0, []
    for dt, price, size in steps:
        ts += dt
        bar = builder.update(ts, price, size)
        if bar is not None:
            bars.append(bar)
        mtf.update(ts, price, size)
        assert -1.0 <= mtf.agreement() <= 1.0
        assert set(mtf.agreeing(1)).isdisjoint(mtf.agreeing(-1))
    bars.append(builder.current)
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close)
        assert max(bar.open, bar.close) <= bar.high
    assert [b.start for b in bars] == sorted({b.start for b in bars})
    assert math.fsum(b.volume for b in bars) == pytest.approx(math.fsum(s for _, _, s in steps))
