"""Volume profile: POC and the 70 % value area, against hand-worked and brute-force references."""

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
     ([(99, 10), (100, 10), (101, 10)], 101, 99, 101)],
    ids=["single", "grows-up", "tie-goes-up-then-heavier-side", "tie-picks-higher-poc"],
)
def test_hand_worked_profiles(trades, poc, val, vah):
    profile = VolumeProfile(tick=1.0)
    for price, size in trades:
        profile.update(price, size)
    levels = profile.levels()
    assert (levels.poc, levels.val, levels.vah) == (poc, val, vah)


def test_value_area_holds_seventy_percent_and_is_tight():
    rng = np.random.default_rng(0)
    profile = VolumeProfile(tick=0.5)
    prices = rng.normal(500, 3, 5000)
    for price in prices:
        profile.update(float(price), 1.0)
    levels = profile.levels()
    inside = sum(1 for p in prices if levels.val - 0.25 <= round(p / 0.5) * 0.5 <= levels.vah + 0.25)
    assert inside / len(prices) >= 0.70
    assert levels.val < 500 < levels.vah
    assert levels.vah - levels.val < 4 * 3  # roughly ±1 sigma for a normal


def test_a_new_session_starts_a_fresh_profile():
    profile = VolumeProfile(tick=1.0)
    profile.update(100, 50, session="2026-11-24")
    profile.update(120, 5, session="2026-11-25")
    assert profile.levels().poc == 120
    assert profile.levels().volume == 5


@given(st.lists(st.tuples(st.integers(90, 110), st.floats(0.1, 100)), min_size=1, max_size=100))
def test_value_area_contains_poc_and_enough_volume(trades):
    profile = VolumeProfile(tick=1.0)
    for price, size in trades:
        profile.update(price, size)
    levels = profile.levels()
    assert levels.val <= levels.poc <= levels.vah
    inside = sum(s for p, s in trades if levels.val <= p <= levels.vah)
    assert inside >= 0.70 * levels.volume - 1e-6
