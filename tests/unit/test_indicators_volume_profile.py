"""Volume profile: POC and the 70 % value area, against hand-worked cases, a dense numpy reference and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_runtime.indicators.volume_profile import VolumeProfile


@pytest.mark.parametrize(
    ("trades", "poc", "val", "vah"),
    [([(100, 10)], 100, 100, 100),
     ([(99, 10), (100, 50), (101, 20), (102, 20)], 100, 100, 101),
     ([(98, 30), (99, 5), (100, 40), (101, 5), (102, 20)], 100, 99, 102),
     ([(99, 10), (100, 10), (101, 10)], 101, 99, 101),
     ([(97, 30), (98, 5), (100, 45), (102, 20)], 100, 98, 102),
     ([(99, 30), (100, 40), (101, 30)], 100, 100, 101),
     ([(100, 70), (101, 30)], 100, 100, 100)],
    ids=["single", "grows-up", "tie-goes-up-then-heavier-side", "tie-picks-higher-poc", "gap-counts-as-zero",
         "tie-extends-upwards", "poc-alone-is-enough"],
)
def test_hand_worked_profiles(trades, poc, val, vah):
    profile = VolumeProfile(tick=1.0)
    for price, size in trades:
        profile.update(price, size)
    levels = profile.levels()
    assert (levels.poc, levels.val, levels.vah) == (poc, val, vah)
    assert levels.volume == pytest.approx(sum(s for _, s in trades))


def reference_value_area(prices, sizes, tick, share=0.70):
    """Dense histogram over the traded range with numpy, then the textbook expansion by array index."""
    bins = np.round(np.asarray(prices) / tick).astype(int)
    base = bins.min()
    hist = np.bincount(bins - base, weights=sizes)
    poc = len(hist) - 1 - int(np.argmax(hist[::-1]))  # highest of the max-volume bins
    lo = hi = poc
    while hist[lo:hi + 1].sum() < share * hist.sum():
        up = hist[hi + 1] if hi + 1 < len(hist) else -1.0
        down = hist[lo - 1] if lo > 0 else -1.0
        if up >= down:
            hi += 1
        else:
            lo -= 1
    return (poc + base) * tick, (lo + base) * tick, (hi + base) * tick


@pytest.mark.parametrize(("seed", "tick", "share"), [(0, 0.5, 0.70), (1, 0.01, 0.70), (2, 0.25, 0.9), (3, 1.0, 0.5)],
                         ids=["half-tick", "cent-tick", "ninety-percent", "fifty-percent"])
def test_matches_dense_reference_on_random_sessions(seed, tick, share):
    rng = np.random.default_rng(seed)
    prices = np.concatenate([rng.normal(500, 3, 3000), rng.normal(507, 1, 1000)])  # two humps
    sizes = rng.integers(1, 100, len(prices)).astype(float)
    profile = VolumeProfile(tick=tick, value_area=share)
    for price, size in zip(prices, sizes, strict=True):
        profile.update(float(price), float(size))
    levels = profile.levels()
    assert (levels.poc, levels.val, levels.vah) == pytest.approx(reference_value_area(prices, sizes, tick, share))
    assert levels.volume == pytest.approx(sizes.sum())
    assert levels.value_area_volume >= share * sizes.sum() - 1e-6


def test_a_new_session_starts_a_fresh_profile():
    profile = VolumeProfile(tick=1.0)
    profile.update(100, 50, session="2026-11-24")
    profile.update(101, 50)  # no key: same session
    profile.update(120, 5, session="2026-11-25")
    assert profile.levels().poc == 120
    assert profile.levels().volume == 5
    assert profile.session == "2026-11-25"


def test_reset_and_ignored_trades():
    profile = VolumeProfile(tick=0.05)
    profile.update(10.02, 3)
    assert profile.volume_at_price(10.0) == 3  # 10.02 rounds to the 10.00 level
    profile.update(10.0, 0)
    profile.update(10.0, -5)
    assert profile.total == 3
    profile.reset()
    assert profile.levels() is None
    with pytest.raises(ValueError, match="tick"):
        VolumeProfile(tick=0)


@given(st.lists(st.tuples(st.integers(90, 110), st.floats(0.1, 100)), min_size=1, max_size=100),
       st.floats(0.05, 1.0))
def test_value_area_contains_poc_and_enough_volume(trades, share):
    profile = VolumeProfile(tick=1.0, value_area=share)
    for price, size in trades:
        profile.update(price, size)
    levels = profile.levels()
    by_price: dict[int, float] = {}
    for price, size in trades:
        by_price[price] = by_price.get(price, 0.0) + size
    assert levels.val <= levels.poc <= levels.vah
    assert min(by_price) <= levels.val
    assert levels.vah <= max(by_price)
    assert by_price[int(levels.poc)] == max(by_price.values())
    inside = sum(s for p, s in trades if levels.val <= p <= levels.vah)
    assert inside >= share * levels.volume - 1e-6
    assert inside == pytest.approx(levels.value_area_volume)
