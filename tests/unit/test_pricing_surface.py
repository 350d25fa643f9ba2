"""Cross-strike analysis on synthetic chains priced with the shared pricer and read back through the solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trading_runtime.pricing.black_scholes import implied_vol, price
from trading_runtime.pricing.surface import (
    CrossStrikeAnalyzer,
    RollingCorrelation,
    RollingStats,
    SurfaceFeatures,
    atm_iv,
    skew_slope,
)

STRIKES = np.arange(80.0, 121.0, 5.0)
FRONT, BACK = 30 / 365, 120 / 365


def smile(level: float, skew: float, strikes=STRIKES, forward=100.0):
    return level + skew * np.log(strikes / forward)


def observed_ivs(ivs, t, forward=100.0, strikes=STRIKES):
    """Price out-of-the-money futures options at `ivs` and read the IVs back through the solver."""
    calls = strikes >= forward
    mids = price(forward, strikes, t, ivs, 0.02, calls, model="black76")
    return implied_vol(mids, forward, strikes, t, 0.02, calls, model="black76"), mids


@pytest.mark.parametrize("planted", [0.0, -0.5, 0.3], ids=["flat", "put-skew", "call-skew"])
def test_skew_slope_recovers_the_planted_skew_through_prices(planted):
    recovered, _ = observed_ivs(smile(0.2, planted), FRONT)
    assert skew_slope(STRIKES, recovered, 100.0) == pytest.approx(planted, abs=1e-9)


def test_skew_slope_and_atm_iv_skip_missing_quotes():
    ivs = smile(0.2, -0.4)
    ivs[[0, 4]] = np.nan
    assert skew_slope(STRIKES, ivs, 100.0) == pytest.approx(-0.4, abs=1e-12)
    assert atm_iv(STRIKES, ivs, 100.0) == pytest.approx(0.2, abs=2e-3)  # interpolated across the gap
    assert math.isnan(skew_slope(STRIKES[:2], ivs[:2], 100.0))


def run(analyzer, samples, *, skew=-0.4, shock_strike=None, steepen_at=None, forward=100.0, seed=0):
    """A chain whose level random-walks (every strike moves together) with small independent quote noise."""
    rng = np.random.default_rng(seed)
    level = 0.2
    features = []
    for i in range(samples):
        level += rng.normal(0, 0.002)
        front = smile(level, skew) + rng.normal(0, 0.0001, STRIKES.size)
        back = smile(level - 0.01, skew * 0.75) + rng.normal(0, 0.0001, STRIKES.size)
        if shock_strike is not None:
            front[list(STRIKES).index(shock_strike)] += rng.normal(0, 0.01)  # moves on its own
        if steepen_at is not None and i >= steepen_at:
            front = front + 0.05
        front_ivs, _ = observed_ivs(front, FRONT, forward)
        back_ivs, _ = observed_ivs(back, BACK, forward)
        features.append(analyzer.update(forward, {"front": (STRIKES, front_ivs), "back": (STRIKES, back_ivs)}))
    return features


SKEW_CASES = [(0.0, "flat"), (-0.4, "put-skew"), (0.25, "call-skew")]


@pytest.mark.parametrize("planted", [c[0] for c in SKEW_CASES], ids=[c[1] for c in SKEW_CASES])
def test_the_analyzer_reports_the_planted_skew(planted):
    features = run(CrossStrikeAnalyzer(window=60), 80, skew=planted)[-1]
    assert features.skew_slope == pytest.approx(planted, abs=0.005)
    assert abs(features.skew_z) < 5


def test_a_coherent_chain_is_highly_correlated_with_no_dislocation():
    features = run(CrossStrikeAnalyzer(window=60), 80)[-1]
    assert features.avg_correlation > 0.9
    assert features.dislocated_strikes == ()
    assert abs(features.term_z) < 5


@pytest.mark.parametrize("strike", [80.0, 95.0, 120.0], ids=["wing-low", "inner", "wing-high"])
def test_a_strike_moving_on_its_own_is_a_dislocation(strike):
    features = run(CrossStrikeAnalyzer(window=60), 80, shock_strike=strike)[-1]
    assert features.dislocated_strikes == (strike,)
    assert features.avg_correlation > 0.5  # the rest of the chain still moves together


def test_a_steepened_term_structure_has_a_large_z_score():
    features = run(CrossStrikeAnalyzer(window=60), 80, steepen_at=79)
    assert abs(features[-2].term_z) < 5
    assert features[-1].term_z > 20
    assert features[-1].term_spread == pytest.approx(features[-2].term_spread + 0.05, abs=0.01)


def test_a_skew_jump_has_a_large_skew_z():
    analyzer = CrossStrikeAnalyzer(window=60)
    run(analyzer, 60)
    rng = np.random.default_rng(1)
    steeper = smile(0.2, -0.8) + rng.normal(0, 0.0001, STRIKES.size)
    features = analyzer.update(100.0, {"front": (STRIKES, steeper), "back": (STRIKES, smile(0.19, -0.3))})
    assert features.skew_slope == pytest.approx(-0.8, abs=0.01)
    assert features.skew_z < -20
    assert analyzer.skew("front") == (features.skew_slope, features.skew_z)


def test_warm_up_is_nan_not_an_error():
    analyzer = CrossStrikeAnalyzer()
    features = analyzer.update(100.0, {"front": (STRIKES, smile(0.2, -0.4))})
    assert isinstance(features, SurfaceFeatures)
    assert math.isnan(features.avg_correlation)
    assert math.isnan(features.skew_z)
    assert math.isnan(features.term_spread)
    assert math.isnan(features.term_z)
    assert features.dislocated_strikes == ()
    assert features.skew_slope == pytest.approx(-0.4)
    with pytest.raises(AttributeError):
        features.skew_slope = 0.0  # type: ignore[misc]


def test_missing_quotes_and_impossible_prices_are_nan_safe():
    analyzer = CrossStrikeAnalyzer(window=30)
    rng = np.random.default_rng(3)
    level = 0.2
    features = None
    for i in range(50):
        level += rng.normal(0, 0.002)
        ivs = smile(level, -0.3) + rng.normal(0, 0.0001, STRIKES.size)
        if i % 7 == 0:
            ivs[3] = np.nan  # no quote this sample
        features = analyzer.update(100.0, {"front": (STRIKES, ivs), "back": (STRIKES, np.full(STRIKES.size, np.nan))})
    assert features is not None
    assert features.avg_correlation > 0.9
    assert features.dislocated_strikes == ()
    assert math.isnan(features.term_spread)  # no back-month IVs at all


def test_listing_new_strikes_keeps_the_history_of_the_others():
    analyzer = CrossStrikeAnalyzer(window=40)
    run(analyzer, 40)
    wider = np.append(STRIKES, 125.0)
    rng = np.random.default_rng(5)
    level = 0.2
    for _ in range(3):
        level += rng.normal(0, 0.002)
        features = analyzer.update(100.0, {"front": (wider, smile(level, -0.4, wider)),
                                           "back": (STRIKES, smile(level - 0.01, -0.3))})
    strikes, corr = analyzer.correlation("front")
    assert strikes == tuple(float(k) for k in wider)
    assert np.isnan(corr[-1, :-1]).all()  # the new strike has too little history yet
    assert features.avg_correlation > 0.9  # the others kept theirs
    assert features.dislocated_strikes == ()


def test_per_quote_updates_match_a_snapshot():
    snapshot, quoted = CrossStrikeAnalyzer(window=20), CrossStrikeAnalyzer(window=20)
    rng = np.random.default_rng(11)
    level = 0.2
    for _ in range(30):
        level += rng.normal(0, 0.002)
        front = smile(level, -0.4) + rng.normal(0, 0.0001, STRIKES.size)
        back = smile(level - 0.01, -0.3) + rng.normal(0, 0.0001, STRIKES.size)
        expected = snapshot.update(100.0, {"front": (STRIKES, front), "back": (STRIKES, back)})
        for expiry, ivs in (("front", front), ("back", back)):
            for k, v in zip(STRIKES[::-1], ivs[::-1], strict=True):  # any quote order
                quoted.on_quote(expiry, float(k), float(v))
        got = quoted.flush(100.0)
    assert got.skew_slope == pytest.approx(expected.skew_slope)
    assert got.skew_z == pytest.approx(expected.skew_z)
    assert got.term_z == pytest.approx(expected.term_z)
    assert got.avg_correlation == pytest.approx(expected.avg_correlation)
    assert math.isfinite(got.skew_z)
    assert math.isfinite(got.term_z)


def test_correlation_of_price_changes_and_per_expiry_forwards():
    analyzer = CrossStrikeAnalyzer(window=40, changes_of="price")
    rng = np.random.default_rng(2)
    level = 0.2
    for _ in range(50):
        level += rng.normal(0, 0.003)
        front_ivs, front_mids = observed_ivs(smile(level, -0.4), FRONT)
        back_ivs, back_mids = observed_ivs(smile(level, -0.3, forward=101.0), BACK, forward=101.0)
        features = analyzer.update({"front": 100.0, "back": 101.0},
                                   {"front": (STRIKES, front_ivs, front_mids), "back": (STRIKES, back_ivs, back_mids)})
    assert features.avg_correlation > 0.9
    assert analyzer.atm_ivs()["back"] == pytest.approx(level, abs=1e-9)
    with pytest.raises(ValueError, match="mids"):
        analyzer.update(100.0, {"front": (STRIKES, front_ivs)})


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (57, 4), elements=st.floats(-1, 1)), st.integers(3, 20))
def test_incremental_correlation_equals_a_full_recomputation(rows, window):
    rolling = RollingCorrelation(window, 4, min_periods=3)
    for row in rows:
        rolling.push(row)
    recent = rows[-window:]
    got = rolling.matrix()
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.corrcoef(recent, rowvar=False)
    spread = recent.std(axis=0)
    for i in range(4):
        for j in range(4):
            if spread[i] > 1e-6 * max(1.0, np.abs(recent[:, i]).max()) and spread[j] > 1e-6 * max(
                    1.0, np.abs(recent[:, j]).max()):
                assert got[i, j] == pytest.approx(expected[i, j], abs=1e-6)


def test_pairwise_complete_correlation_skips_missing_values():
    rng = np.random.default_rng(4)
    base = rng.normal(size=200)
    rows = np.c_[base, base * 2 + 1, -base]
    rows[::5, 1] = np.nan
    rolling = RollingCorrelation(50, 3)
    for row in rows:
        rolling.push(row)
    np.testing.assert_allclose(rolling.matrix(), [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=80), st.integers(2, 25))
def test_rolling_stats_match_numpy(values, capacity):
    stats = RollingStats(capacity, min_periods=2)
    for v in values:
        stats.push(v)
    recent = np.array(values[-capacity:])
    mean, std = stats.mean_std()
    if recent.size < 2:
        assert math.isnan(mean)
    else:
        assert mean == pytest.approx(recent.mean(), abs=1e-9)
        assert std == pytest.approx(recent.std(ddof=1), abs=1e-6)
