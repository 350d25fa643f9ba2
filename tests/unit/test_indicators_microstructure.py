"""Microstructure indicators against straightforward batch references, hand-worked cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_runtime.indicators.microstructure import (
    EffectiveSpread,
    Microprice,
    OrderFlowImbalance,
    RollingSum,
    SessionVpin,
    TradeFlow,
    TradeImbalance,
    Vpin,
    microprice,
    quoted_spread,
    relative_spread_bps,
)


def random_quotes(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mid = 100 + np.cumsum(rng.choice([-0.01, 0, 0.01], size=n))
    half = rng.choice([0.005, 0.01], size=n)
    return [(round(m - h, 4), round(m + h, 4), float(rng.integers(1, 50)), float(rng.integers(1, 50)))
            for m, h in zip(mid, half, strict=True)]


# --- OFI -------------------------------------------------------------------------------------------------


def reference_ofi(quotes, window):
    """Vectorised over the whole series: e_n from shifted arrays, then the last `window` events."""
    q = np.array(quotes, dtype=float)
    pb, pa, qb, qa = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    e = ((pb[1:] >= pb[:-1]) * qb[1:] - (pb[1:] <= pb[:-1]) * qb[:-1]
         - (pa[1:] <= pa[:-1]) * qa[1:] + (pa[1:] >= pa[:-1]) * qa[:-1])
    depth = (qb[1:] + qa[1:]) / 2
    return e[-window:].sum(), e[-window:].sum() / depth[-window:].mean()


@pytest.mark.parametrize(("n", "window", "seed"), [(50, 10, 0), (500, 100, 1), (5, 100, 2), (3000, 7, 3)],
                         ids=["short", "long", "warm-up", "many-small-windows"])
def test_ofi_matches_reference(n, window, seed):
    quotes = random_quotes(n, seed)
    ofi = OrderFlowImbalance(window)
    for q in quotes:
        value = ofi.update(*q)
    raw, normalised = reference_ofi(quotes, window)
    assert ofi.raw == pytest.approx(raw)
    assert value == pytest.approx(normalised)


@pytest.mark.parametrize(
    ("prev", "cur", "expected_raw"),
    [((100, 101, 10, 10), (100, 101, 15, 10), 5),       # same prices: Δqb − Δqa
     ((100, 101, 10, 10), (100, 101, 10, 16), -6),
     ((100, 101, 10, 10), (100.5, 101, 7, 10), 7),      # bid improves: all new bid size is added
     ((100, 101, 10, 10), (99.5, 101, 7, 10), -10),     # bid drops: all old bid size is removed
     ((100, 101, 10, 10), (100, 100.5, 10, 4), -4),     # ask improves
     ((100, 101, 10, 10), (100, 101.5, 10, 4), 10),     # ask recedes
     ((100, 101, 10, 10), (100.5, 100.5, 3, 4), 3 - 4)],
    ids=["bid-size-up", "ask-size-up", "bid-price-up", "bid-price-down", "ask-price-down", "ask-price-up",
         "both-move-in"],
)
def test_ofi_hand_worked_cases(prev, cur, expected_raw):
    ofi = OrderFlowImbalance(10)
    assert ofi.update(*prev) == 0.0  # one quote: no event yet
    ofi.update(*cur)
    assert ofi.raw == expected_raw
    assert ofi.value == pytest.approx(expected_raw / ((cur[2] + cur[3]) / 2))


def test_ofi_window_forgets_old_events():
    ofi = OrderFlowImbalance(2)
    for q in [(100, 101, 10, 10), (100, 101, 20, 10), (100, 101, 20, 10), (100, 101, 20, 10)]:
        ofi.update(*q)
    assert ofi.raw == 0.0  # the +10 event has left the window


# --- microprice and spreads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "expected"),
    [((100, 101, 90, 10), 100.9), ((100, 101, 10, 90), 100.1), ((100, 101, 5, 5), 100.5), ((100, 101, 0, 0), 100.5)],
    ids=["big-bid-leans-up", "big-ask-leans-down", "balanced-is-mid", "no-depth-is-mid"],
)
def test_microprice_hand_worked(quote, expected):
    assert microprice(*quote) == pytest.approx(expected)
    tracker = Microprice()
    assert tracker.update(*quote) == pytest.approx(expected)
    assert tracker.mid == pytest.approx(100.5)
    assert tracker.spread == pytest.approx(1.0)
    assert tracker.tilt == pytest.approx((expected - 100.5) / 0.5)


@pytest.mark.parametrize(("bid", "ask", "absolute", "bps"), [(99.99, 100.01, 0.02, 2.0), (9.5, 10.5, 1.0, 1000.0)],
                         ids=["two-bps", "wide"])
def test_quoted_spreads(bid, ask, absolute, bps):
    assert quoted_spread(bid, ask) == pytest.approx(absolute)
    assert relative_spread_bps(bid, ask) == pytest.approx(bps)


def test_relative_spread_without_a_positive_mid_is_nan():
    assert math.isnan(relative_spread_bps(0.0, 0.0))


@given(st.floats(1, 1000), st.floats(0.0001, 10), st.floats(0, 1e6), st.floats(0, 1e6))
def test_microprice_lies_within_the_spread(bid, width, bid_size, ask_size):
    ask = bid + width
    tracker = Microprice()
    value = tracker.update(bid, ask, bid_size, ask_size)
    assert bid - 1e-9 <= value <= ask + 1e-9
    assert -1 - 1e-6 <= tracker.tilt <= 1 + 1e-6


# --- effective spread and trade imbalance ----------------------------------------------------------------


def random_trades_around_mid(n: int, seed: int):
    """Mids on a half-cent grid and trades at mid ± {0, 1, 2} half-cents, so many trades print at the mid."""
    rng = np.random.default_rng(seed)
    mids = 100 + np.cumsum(rng.choice([-0.005, 0.0, 0.005], size=n))
    offsets = rng.choice([-0.01, -0.005, 0.0, 0.0, 0.005, 0.01], size=n)
    return [(round(float(m + o), 4), float(rng.integers(1, 10)), round(float(m), 4))
            for m, o in zip(mids, offsets, strict=True)]


def reference_lee_ready(trades):
    """Quote rule, else the tick rule found by scanning back for the last different trade price."""
    sides = []
    for i, (price, _, mid) in enumerate(trades):
        if price != mid:
            sides.append(1 if price > mid else -1)
            continue
        side = 0
        for j in range(i, 0, -1):
            if trades[j][0] != trades[j - 1][0]:
                side = 1 if trades[j][0] > trades[j - 1][0] else -1
                break
        sides.append(side)
    return sides


@pytest.mark.parametrize(("n", "window", "seed"), [(300, 100, 1), (50, 200, 2), (2000, 17, 3)],
                         ids=["full-window", "warm-up", "small-window"])
def test_trade_flow_matches_batch_reference(n, window, seed):
    trades = random_trades_around_mid(n, seed)
    flow = TradeFlow(window=window)
    for price, size, mid in trades:
        flow.update(price, size, mid)
    sides = np.array(reference_lee_ready(trades))[-window:]
    prices, sizes, mids = (np.array(column)[-window:] for column in zip(*trades, strict=True))
    assert sum((prices == mids) & (sides != 0)) > 0  # the tick rule is exercised
    assert flow.imbalance == pytest.approx((sides * sizes).sum() / sizes.sum())
    assert flow.effective_spread == pytest.approx(np.mean(2 * np.abs(prices - mids)))
    assert flow.effective_spread_bps == pytest.approx(np.mean(2 * np.abs(prices - mids) / mids * 1e4))


@pytest.mark.parametrize(
    ("trades", "sides"),
    [([(100.02, 100.00), (99.98, 100.00)], [1, -1]),                       # quote rule
     ([(100.00, 100.00)], [0]),                                            # at mid, no price history
     ([(99.99, 100.00), (100.00, 100.00)], [-1, 1]),                       # up-tick at the mid
     ([(100.01, 100.00), (100.00, 100.00)], [1, -1]),                      # down-tick at the mid
     ([(99.99, 100.00), (100.00, 100.00), (100.00, 100.00)], [-1, 1, 1]),  # zero-up-tick
     ([(100.01, 100.02), (100.00, 99.99), (100.00, 100.00)], [-1, 1, -1])],  # zero-down-tick, not the last side
    ids=["quote-rule", "unclassified", "uptick", "downtick", "zero-uptick", "zero-downtick"],
)
def test_lee_ready_hand_worked(trades, sides):
    imbalance = TradeImbalance(window=10)
    got = []
    for price, mid in trades:
        got.append(imbalance.classify(price, mid))
        imbalance.update(price, 1.0, mid)
    assert got == sides
    assert imbalance.value == pytest.approx(sum(sides) / len(sides))


def test_effective_spread_hand_worked():
    spread = EffectiveSpread(window=2)
    spread.update(100.02, 100.00)
    spread.update(99.97, 100.00)
    assert spread.value == pytest.approx((0.04 + 0.06) / 2)
    assert spread.value_bps == pytest.approx((4 + 6) / 2, rel=1e-3)
    spread.update(100.00, 100.00)
    assert spread.value == pytest.approx(0.03)
    spread.update(100.00, math.nan)  # no valid mid: skipped
    assert spread.value == pytest.approx(0.03)


@given(st.lists(st.tuples(st.floats(99, 101), st.floats(0, 1e4), st.floats(99, 101)), min_size=1, max_size=100))
def test_trade_imbalance_stays_in_the_unit_interval(trades):
    imbalance = TradeImbalance(window=20)
    for price, size, mid in trades:
        assert -1 - 1e-9 <= imbalance.update(price, size, mid) <= 1 + 1e-9


def test_rolling_sum_does_not_drift():
    rolling = RollingSum(3)
    for value in [1e16, 1.0, -1e16, *([0.1] * 1000)]:
        rolling.add(value)
    assert rolling.total == pytest.approx(0.3, abs=1e-12)
    assert rolling.mean == pytest.approx(0.1)


# --- VPIN ------------------------------------------------------------------------------------------------


def reference_vpin(trades, bucket, n_buckets):
    """Batch BVC: buy fractions from the expanding std of price changes, then each bucket's buy volume as the
    overlap of every trade's cumulative-volume interval with the bucket's interval [jV, (j+1)V)."""
    prices = np.array([p for p, _ in trades])
    sizes = np.array([s for _, s in trades])
    changes = np.diff(prices)
    fractions = [0.5]
    for i in range(1, len(trades)):
        sigma = np.std(changes[:i], ddof=1) if i > 1 else 0.0
        fractions.append(0.5 if sigma == 0 else 0.5 * (1 + math.erf(changes[i - 1] / (sigma * math.sqrt(2)))))
    ends = np.cumsum(sizes)
    starts = ends - sizes
    imbalances = []
    for j in range(int(ends[-1] // bucket)):
        overlap = np.clip(np.minimum(ends, (j + 1) * bucket) - np.maximum(starts, j * bucket), 0, None)
        buy = float(np.dot(overlap, fractions))
        imbalances.append(abs(2 * buy - bucket) / bucket)
    return float(np.mean(imbalances[-n_buckets:])) if imbalances else math.nan, len(imbalances)


@pytest.mark.parametrize(("seed", "bucket", "n_buckets", "max_size"),
                         [(2, 1000, 20, 300), (3, 50, 10, 300), (4, 5000, 50, 100)],
                         ids=["typical", "trades-span-buckets", "few-buckets"])
def test_vpin_matches_bulk_volume_reference(seed, bucket, n_buckets, max_size):
    rng = np.random.default_rng(seed)
    prices = 100 + np.cumsum(rng.normal(0, 0.02, 2000))
    trades = [(float(p), float(rng.integers(1, max_size))) for p in prices]
    vpin = Vpin(bucket_volume=bucket, buckets=n_buckets)
    for price, size in trades:
        value = vpin.update(price, size)
    expected, full = reference_vpin(trades, bucket, n_buckets)
    assert value == pytest.approx(expected)
    assert vpin.full_buckets == min(full, n_buckets)


PHI_MINUS = 0.5 * (1 + math.erf(-1 / math.sqrt(2) / math.sqrt(2)))  # Φ(−1/√2): ΔP = −1, σ = √2


@pytest.mark.parametrize(
    ("trades", "bucket", "expected"),
    [([(100, 10), (101, 10)], 10, 0.0),                                # σ undefined → ½ each → balanced
     ([(100, 10), (101, 10), (100, 10)], 10, abs(2 * PHI_MINUS - 1) / 3),
     ([(100, 5), (101, 20)], 10, 0.0),                                 # a trade spanning two buckets
     ([(100, 5), (101, 4)], 10, math.nan)],                            # no full bucket yet
    ids=["balanced", "sell-pressure", "carry-over", "no-bucket"],
)
def test_vpin_hand_worked(trades, bucket, expected):
    vpin = Vpin(bucket_volume=bucket, buckets=3)
    for price, size in trades:
        vpin.update(price, size)
    if math.isnan(expected):
        assert math.isnan(vpin.value)
    else:
        assert vpin.value == pytest.approx(expected)


@given(st.lists(st.tuples(st.floats(50, 150), st.floats(0.1, 5000)), min_size=1, max_size=200))
def test_vpin_stays_in_the_unit_interval(trades):
    vpin = Vpin(bucket_volume=500, buckets=10)
    for price, size in trades:
        value = vpin.update(price, size)
        assert math.isnan(value) or 0.0 <= value <= 1.0


@given(st.lists(st.integers(1, 10**4), min_size=1, max_size=100), st.integers(1000, 10**6))
def test_vpin_closes_exactly_one_bucket_per_bucket_volume(sizes, bucket):
    vpin = Vpin(bucket_volume=bucket / 7, buckets=10**9)  # non-integer bucket: no exact float arithmetic
    for i, size in enumerate(sizes):
        vpin.update(100.0 + i % 3, float(size))
    expected = math.floor(sum(sizes) / (bucket / 7))
    assert abs(vpin.full_buckets - expected) <= 1  # ±1 only at an exact boundary, where rounding decides


def test_one_sided_flow_has_high_vpin():
    vpin = Vpin(bucket_volume=100, buckets=5)
    price = 100.0
    for i in range(200):
        price += 0.01 if i % 10 else -0.001  # steady buying pressure
        vpin.update(price, 50)
    assert vpin.value > 0.5


def test_vpin_ignores_empty_trades_and_rejects_bad_buckets():
    vpin = Vpin(bucket_volume=10)
    vpin.update(100, 0)
    vpin.update(math.nan, 5)
    assert vpin.full_buckets == 0
    with pytest.raises(ValueError, match="bucket_volume"):
        Vpin(bucket_volume=0)


def bar_volumes(n, seed=0):
    """Minute-bar volumes like SPY's: 5k to 95k shares a bar, and a random walk of closes."""
    rng = np.random.default_rng(seed)
    return (500 * np.exp(np.cumsum(rng.normal(0, 1e-4, n))), rng.integers(5, 95, n) * 1000.0)


def test_vpin_buckets_do_not_hinge_on_the_first_trade():
    """The defect: the bucket was 50 × the first trade; a 100-share first bar made buckets 500× too small
    (every bar overflowed ten buckets, VPIN read toxic, confidence and coverage halved)."""
    prices, sizes = bar_volumes(3000)
    with_small_first, without = SessionVpin(), SessionVpin()
    with_small_first.update(500.0, 100.0)
    for price, size in zip(prices, sizes, strict=True):
        with_small_first.update(price, size)
        without.update(price, size)
    assert with_small_first.bucket_volume == pytest.approx(without.bucket_volume, rel=0.03)
    assert with_small_first.bucket_volume > 100 * 50 * 100.0  # the old sizing: 50 × 100 shares
    assert abs(with_small_first.value - without.value) < 0.05
    assert without.value < 0.5  # balanced flow over ~50 bars a bucket reads as balanced


def test_vpin_buckets_follow_the_session_volume():
    prices, sizes = bar_volumes(780)
    vpin = SessionVpin(buckets_per_session=50)
    for price, size in zip(prices[:390], sizes[:390], strict=True):
        vpin.update(price, size)
    assert math.isnan(SessionVpin().value)
    vpin.new_session()
    for price, size in zip(prices[390:400], sizes[390:400], strict=True):  # the bucket being filled keeps its size
        vpin.update(price, size)
    for price, size in zip(prices[400:], sizes[400:], strict=True):
        vpin.update(price, size)
    assert vpin.bucket_volume == pytest.approx(sizes[:390].sum() / 50)


def test_vpin_resize_applies_from_the_next_bucket():
    vpin = Vpin(bucket_volume=100.0)
    vpin.update(10.0, 60.0)
    vpin.resize(10.0)
    assert vpin.bucket_volume == 100.0
    vpin.update(10.1, 40.0)  # closes the 100-share bucket
    assert vpin.bucket_volume == 10.0
    assert vpin.full_buckets == 1
    with pytest.raises(ValueError, match="positive"):
        vpin.resize(0.0)
