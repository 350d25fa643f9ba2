"""Microstructure indicators against straightforward batch reference implementations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_runtime.indicators.microstructure import (
    OrderFlowImbalance,
    TradeFlow,
    Vpin,
    microprice,
    relative_spread_bps,
)


def random_quotes(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mid = 100 + np.cumsum(rng.choice([-0.01, 0, 0.01], size=n))
    half = rng.choice([0.005, 0.01], size=n)
    return [(round(m - h, 4), round(m + h, 4), float(rng.integers(1, 50)), float(rng.integers(1, 50)))
            for m, h in zip(mid, half, strict=True)]


def reference_ofi(quotes, window):
    e = []
    depth = []
    for prev, cur in itertools.pairwise(quotes):
        pb, pa, qb0, qa0 = prev
        b, a, qb, qa = cur
        e.append((qb if b >= pb else 0) - (qb0 if b <= pb else 0) - (qa if a <= pa else 0) + (qa0 if a >= pa else 0))
        depth.append((qb + qa) / 2)
    flow, mean_depth = sum(e[-window:]), np.mean(depth[-window:])
    return flow / mean_depth


@pytest.mark.parametrize(("n", "window"), [(50, 10), (500, 100), (5, 100)], ids=["short", "long", "warm-up"])
def test_ofi_matches_reference(n, window):
    quotes = random_quotes(n)
    ofi = OrderFlowImbalance(window)
    for q in quotes:
        value = ofi.update(*q)
    assert value == pytest.approx(reference_ofi(quotes, window))


@pytest.mark.parametrize(
    ("prev", "cur", "expected_raw"),
    [((100, 101, 10, 10), (100, 101, 15, 10), 5), ((100, 101, 10, 10), (100.5, 101, 7, 10), 7),
     ((100, 101, 10, 10), (99.5, 101, 7, 10), -10), ((100, 101, 10, 10), (100, 100.5, 10, 4), -4),
     ((100, 101, 10, 10), (100, 101.5, 10, 4), 10)],
    ids=["bid-size-up", "bid-price-up", "bid-price-down", "ask-price-down", "ask-price-up"],
)
def test_ofi_hand_worked_cases(prev, cur, expected_raw):
    ofi = OrderFlowImbalance(10)
    ofi.update(*prev)
    ofi.update(*cur)
    assert ofi.raw == expected_raw


@given(st.floats(1, 1000), st.floats(0.0001, 10), st.floats(0, 1e6), st.floats(0, 1e6))
def test_microprice_lies_within_the_spread(bid, width, bid_size, ask_size):
    ask = bid + width
    assert bid - 1e-9 <= microprice(bid, ask, bid_size, ask_size) <= ask + 1e-9


def test_microprice_leans_toward_the_thin_side_and_spreads():
    assert microprice(100, 101, 90, 10) == pytest.approx(100.9)  # big bid: price likely to tick up
    assert relative_spread_bps(99.99, 100.01) == pytest.approx(2.0)


def test_trade_flow_matches_lee_ready_reference():
    rng = np.random.default_rng(1)
    mids = 100 + np.cumsum(rng.normal(0, 0.01, 300))
    trades = [(round(m + rng.choice([-0.01, 0, 0.01]), 4), float(rng.integers(1, 10)), m) for m in mids]
    flow = TradeFlow(window=100)
    for price, size, mid in trades:
        flow.update(price, size, mid)
    signs, last_price, last_sign = [], None, 0
    for price, _, mid in trades:
        if price > mid:
            sign = 1
        elif price < mid:
            sign = -1
        elif last_price is not None and price != last_price:
            sign = 1 if price > last_price else -1
        else:
            sign = last_sign
        signs.append(sign)
        last_price, last_sign = price, sign
    window = trades[-100:]
    expected = sum(s * t[1] for s, t in zip(signs[-100:], window, strict=True)) / sum(t[1] for t in window)
    assert flow.imbalance == pytest.approx(expected)
    assert flow.effective.mean == pytest.approx(np.mean([2 * abs(p - m) for p, _, m in window]))


def reference_vpin(trades, bucket, n_buckets):
    changes = [b[0] - a[0] for a, b in itertools.pairwise(trades)]
    imbalances, buy, filled = [], 0.0, 0.0
    for i, (_, size) in enumerate(trades):
        if i == 0:
            fraction = 0.5
        else:
            sigma = np.std(changes[:i], ddof=1) if i > 1 else 0.0
            fraction = 0.5 if sigma == 0 else 0.5 * (1 + math.erf(changes[i - 1] / (sigma * math.sqrt(2))))
        remaining = size
        while remaining > 0:
            part = min(bucket - filled, remaining)
            buy += part * fraction
            filled += part
            remaining -= part
            if filled >= bucket - 1e-12:
                imbalances.append(abs(2 * buy - filled) / bucket)
                buy = filled = 0.0
    return float(np.mean(imbalances[-n_buckets:]))


def test_vpin_matches_bulk_volume_reference():
    rng = np.random.default_rng(2)
    prices = 100 + np.cumsum(rng.normal(0, 0.02, 2000))
    trades = [(float(p), float(rng.integers(1, 300))) for p in prices]
    vpin = Vpin(bucket_volume=1000, buckets=20)
    for price, size in trades:
        value = vpin.update(price, size)
    assert value == pytest.approx(reference_vpin(trades, 1000, 20))


@given(st.lists(st.tuples(st.floats(50, 150), st.floats(0.1, 5000)), min_size=1, max_size=200))
def test_vpin_stays_in_the_unit_interval(trades):
    vpin = Vpin(bucket_volume=500, buckets=10)
    for price, size in trades:
        value = vpin.update(price, size)
        assert math.isnan(value) or 0.0 <= value <= 1.0 + 1e-9


def test_one_sided_flow_has_high_vpin():
    vpin = Vpin(bucket_volume=100, buckets=5)
    price = 100.0
    for i in range(200):
        price += 0.01 if i % 10 else -0.001  # steady buying pressure
        vpin.update(price, 50)
    assert vpin.value > 0.5
