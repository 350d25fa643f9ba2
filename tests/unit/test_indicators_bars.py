"""Incremental bars and multi-timeframe agreement against batch references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trading_runtime.indicators.bars import BarBuilder, MultiTimeframe, TimeframeFeatures


def trades(n: int, seed: int = 0, drift: float = 0.0):
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.exponential(0.3, n))
    prices = 100 + np.cumsum(rng.normal(drift, 0.05, n))
    sizes = rng.integers(1, 100, n)
    return [(float(t), float(p), float(s)) for t, p, s in zip(ts, prices, sizes, strict=True)]


def reference_bars(rows, seconds):
    groups: dict[int, list] = {}
    for ts, price, size in rows:
        groups.setdefault(math.floor(ts / seconds), []).append((price, size))
    return [(k * seconds, g[0][0], max(p for p, _ in g), min(p for p, _ in g), g[-1][0], sum(s for _, s in g))
            for k, g in sorted(groups.items())]


@pytest.mark.parametrize("seconds", [1, 5, 60], ids=["1s", "5s", "60s"])
def test_bars_match_a_groupby_reference(seconds):
    rows = trades(2000)
    builder = BarBuilder(seconds)
    closed = [bar for row in rows if (bar := builder.update(*row)) is not None]
    closed.append(builder.current)
    assert [(b.start, b.open, b.high, b.low, b.close, b.volume) for b in closed] == reference_bars(rows, seconds)


def test_trend_and_momentum_follow_the_batch_ema():
    rows = trades(3000, seed=1)
    frame = TimeframeFeatures(5, fast=3, slow=8, momentum_bars=4)
    for row in rows:
        frame.update(*row)
    closes = [b[4] for b in reference_bars(rows, 5)][:-1]  # the last bar is still open

    def ema(values, span):
        out = values[0]
        for v in values[1:]:
            out += 2 / (span + 1) * (v - out)
        return out

    assert frame.trend == np.sign(ema(closes, 3) - ema(closes, 8))
    assert frame.momentum == np.sign(closes[-1] - closes[-5])


def test_breakout_above_the_previous_range():
    frame = TimeframeFeatures(1, breakout_bars=3)
    for ts, price in [(0.5, 100), (1.5, 101), (2.5, 100.5), (3.5, 100.8), (4.5, 105), (5.5, 105)]:
        frame.update(ts, price, 1)
    assert frame.breakout == 1


@pytest.mark.parametrize(("drift", "sign"), [(0.02, 1), (-0.02, -1)], ids=["uptrend", "downtrend"])
def test_timeframes_agree_in_a_trend(drift, sign):
    mtf = MultiTimeframe((1, 5, 15))
    for row in trades(4000, seed=2, drift=drift):
        mtf.update(*row)
    assert mtf.agreement() == sign
    assert mtf.agreeing(sign) == [1, 5, 15]


def test_no_bars_no_opinion():
    assert MultiTimeframe().agreement() == 0.0
