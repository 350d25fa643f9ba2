"""Cross-strike analysis on synthetic chains with planted structure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trading_runtime.pricing.black_scholes import implied_vol, price
from trading_runtime.pricing.surface import CrossStrikeAnalyzer, skew_slope

STRIKES = np.arange(80.0, 121.0, 5.0)


def chain_ivs(level: float, skew: float, strikes=STRIKES, forward=100.0):
    return level + skew * np.log(strikes / forward)


@pytest.mark.parametrize("planted", [0.0, -0.5, 0.3], ids=["flat", "put-skew", "call-skew"])
def test_skew_slope_recovers_the_planted_skew_through_prices(planted):
    ivs = chain_ivs(0.2, planted)
    prices = price(100, STRIKES, 0.25, ivs, 0.0, True, model="black76")
    recovered = implied_vol(prices, 100, STRIKES, 0.25, 0.0, True, model="black76")
    assert skew_slope(STRIKES, recovered, 100.0) == pytest.approx(planted, abs=1e-6)


def run(analyzer, samples, shock_strike=None, steepen_at=None, seed=0):
    rng = np.random.default_rng(seed)
    level = 0.2
    features = None
    for i in range(samples):
        level += rng.normal(0, 0.002)  # the whole chain moves together
        front = chain_ivs(level, -0.4) + rng.normal(0, 0.0001, STRIKES.size)
        back = chain_ivs(level - 0.01, -0.3) + rng.normal(0, 0.0001, STRIKES.size)
        if shock_strike is not None:
            front[list(STRIKES).index(shock_strike)] += rng.normal(0, 0.01)  # moves on its own
        if steepen_at is not None and i >= steepen_at:
            front = front + 0.05
        features = analyzer.update(100.0, {"front": (STRIKES, front), "back": (STRIKES, back)})
    return features


def test_a_coherent_chain_is_highly_correlated_with_no_dislocation():
    features = run(CrossStrikeAnalyzer(window=60), 80)
    assert features.avg_correlation > 0.9
    assert features.dislocated_strikes == ()
    assert features.skew_slope == pytest.approx(-0.4, abs=0.01)
    assert abs(features.skew_z) < 5


def test_a_strike_moving_on_its_own_is_a_dislocation():
    features = run(CrossStrikeAnalyzer(window=60), 80, shock_strike=95.0)
    assert features.dislocated_strikes == (95.0,)


def test_a_term_structure_jump_has_a_large_z_score():
    features = run(CrossStrikeAnalyzer(window=60), 80, steepen_at=79)
    assert features.term_z > 5


def test_warm_up_is_nan_not_an_error():
    features = CrossStrikeAnalyzer().update(100.0, {"front": (STRIKES, chain_ivs(0.2, -0.4))})
    assert math.isnan(features.avg_correlation)
    assert math.isnan(features.skew_z)
    assert math.isnan(features.term_spread)
