"""Risk: portfolio VaR/CVaR, correlation limits, sizing, drawdown tiers and black-swan halts."""

from __future__ import annotations

import numpy as np
import pytest

from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.risk.blackswan import BlackSwanDetector
from trading_runtime.risk.drawdown import DrawdownGuard
from trading_runtime.risk.limits import check_correlated_limits, correlated_groups, headroom
from trading_runtime.risk.portfolio import (
    historical_var_cvar,
    parametric_var_cvar,
    portfolio_exposure,
    portfolio_risk,
)
from trading_runtime.risk.sizing import kelly_fraction, position_notional


def test_portfolio_exposure_sums_across_symbols():
    book = {"SPY": {"notional": 50_000, "delta": 100, "gamma": 2, "vega": 30},
            "QQQ": {"notional": -20_000, "delta": -40, "gamma": 1, "vega": -10}}
    exposure = portfolio_exposure(book)
    assert (exposure.gross, exposure.net, exposure.delta, exposure.gamma, exposure.vega) == (70_000, 30_000, 60, 3,
                                                                                               20)


def test_historical_var_and_cvar():
    pnl = np.arange(-99, 1)  # losses 0..99
    var, cvar = historical_var_cvar(pnl, alpha=0.95)
    assert var == pytest.approx(np.quantile(np.arange(100), 0.95))
    assert cvar == pytest.approx(np.mean([x for x in range(100) if x >= var]))


def test_parametric_var_matches_simulation():
    cov = np.array([[0.0004, 0.0003], [0.0003, 0.0009]])
    w = np.array([1e6, -5e5])
    var, cvar = parametric_var_cvar(w, cov, alpha=0.99)
    rng = np.random.default_rng(0)
    pnl = rng.multivariate_normal([0, 0], cov, 400_000) @ w
    sim_var, sim_cvar = historical_var_cvar(pnl, 0.99)
    assert var == pytest.approx(sim_var, rel=0.02)
    assert cvar == pytest.approx(sim_cvar, rel=0.02)
    assert cvar > var


CORR = {("SPY", "QQQ"): 0.9, ("QQQ", "IWM"): 0.75, ("SPY", "GLD"): 0.05, ("SPY", "VXX"): -0.8}


def test_groups_chain_through_correlated_pairs():
    groups = correlated_groups(["SPY", "QQQ", "IWM", "GLD", "VXX"], CORR, threshold=0.7)
    assert sorted(groups) == [["GLD"], ["IWM", "QQQ", "SPY", "VXX"]]


@pytest.mark.parametrize(
    ("exposures", "breached"),
    [({"SPY": 60, "QQQ": 50}, True), ({"SPY": 60, "VXX": 50}, False), ({"SPY": 60, "GLD": 90}, False),
     ({"SPY": 40, "QQQ": 30, "IWM": 20}, False)],
    ids=["duplicates-add", "hedge-offsets", "uncorrelated-separate", "under-cap"],
)
def test_correlated_limits(exposures, breached):
    checks = check_correlated_limits(exposures, CORR, threshold=0.7, cap=100)
    assert any(c.breached for c in checks) is breached


def test_headroom_shrinks_with_correlated_exposure():
    assert headroom("QQQ", {"SPY": 70, "QQQ": 0}, CORR, 0.7, 100) == 30
    assert headroom("GLD", {"SPY": 70, "GLD": 0}, CORR, 0.7, 100) == 100


@pytest.mark.parametrize(("p", "b", "f"), [(0.5, 1.0, 0.0), (0.6, 1.0, 0.2), (0.4, 1.0, 0.0), (0.55, 2.0, 0.325)],
                         ids=["no-edge", "edge", "negative-edge", "payoff"])
def test_kelly(p, b, f):
    assert kelly_fraction(p, b) == pytest.approx(f)


def test_sizing_targets_volatility_and_is_capped():
    base = position_notional(1e6, realised_vol=0.2, target_vol=0.1, hit_rate=0.6, payoff_ratio=1.0)
    calmer = position_notional(1e6, realised_vol=0.1, target_vol=0.1, hit_rate=0.6, payoff_ratio=1.0)
    assert calmer == pytest.approx(2 * base)
    assert position_notional(1e6, 0.2, 0.1, 0.5, 1.0) == 0.0
    assert position_notional(1e6, 0.001, 0.5, 0.99, 10.0, max_leverage=1.0) == 1e6


def test_drawdown_tiers_then_halt_until_reset():
    guard = DrawdownGuard(tiers=((0.03, 0.5), (0.06, 0.25)), halt_at=0.10)
    assert guard.update(100).size_multiplier == 1.0
    assert guard.update(96).size_multiplier == 0.5
    assert guard.update(93).size_multiplier == 0.25
    state = guard.update(89)
    assert state.halted
    assert state.size_multiplier == 0.0
    assert guard.update(120).halted  # a recovery does not un-halt
    guard.reset(120)
    assert not guard.update(120).halted


def feed(detector, simulator, symbol, ticks, dt=0.2):
    events = []
    for _ in range(ticks):
        quote = simulator.tick(symbol, dt)[0]
        mid = (quote["bid"] + quote["ask"]) / 2
        event = detector.update(simulator.ts, mid, quote["ask"] - quote["bid"], quote["bidSize"] + quote["askSize"])
        if event:
            events.append(event)
    return events


def test_normal_market_raises_no_black_swan():
    simulator = MarketSimulator(["SPY"], seed=11)
    assert feed(BlackSwanDetector(), simulator, "SPY", 3000) == []


def test_a_synthetic_crash_is_detected():
    simulator = MarketSimulator(["SPY"], seed=12)
    detector = BlackSwanDetector()
    assert feed(detector, simulator, "SPY", 1000) == []
    simulator.markets["SPY"].spot *= 0.93  # a 7 % gap down
    events = feed(detector, simulator, "SPY", 5)
    assert events
    assert events[0].kind in {"extreme-move", "jump"}


def test_liquidity_collapse_is_detected():
    detector = BlackSwanDetector(warmup_ticks=50)
    for i in range(300):
        assert detector.update(i, 100.0 + 0.01 * (i % 2), 0.02, 1000) is None
    event = detector.update(301, 100.0, 0.5, 20)
    assert event is not None
    assert event.kind == "liquidity-collapse"


def test_portfolio_risk_from_shared_returns():
    rng = np.random.default_rng(3)
    common = rng.normal(0, 0.001, 500)
    returns = {"SPY": list(common + rng.normal(0, 0.0002, 500)), "QQQ": list(common + rng.normal(0, 0.0002, 500)),
               "GLD": list(rng.normal(0, 0.001, 500))}
    book = {"SPY": {"notional": 1e6}, "QQQ": {"notional": 1e6}, "GLD": {"notional": -1e6}, "NEW": {"notional": 5}}
    risk = portfolio_risk(book, returns, alpha=0.99)
    assert risk.correlations[("QQQ", "SPY")] > 0.9
    assert abs(risk.correlations[("GLD", "SPY")]) < 0.2
    assert risk.parametric_var == pytest.approx(risk.historical_var, rel=0.3)
    assert risk.parametric_cvar > risk.parametric_var > 0
    assert risk.exposure.gross == 3e6 + 5


def test_portfolio_risk_needs_history():
    risk = portfolio_risk({"SPY": {"notional": 1e6}}, {"SPY": [0.001] * 5})
    assert np.isnan(risk.historical_var)
    assert risk.correlations == {}


def quiet(detector, n, spread=0.01, depth=1000.0, noise=1e-5, seed=0):
    """n quotes around 100 with tiny moves (a quiet history); returns the events raised."""
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n):
        mid = 100.0 * (1 + noise * float(rng.standard_normal()))
        event = detector.update(float(i), mid, spread, depth)
        if event:
            events.append(event)
    return events


def test_zero_spreads_and_depths_are_not_a_liquidity_collapse():
    """The defect: bars replayed with bid = ask and no sizes halted on 0 ≥ 8 × 0 once warmed up."""
    assert quiet(BlackSwanDetector(), 600, spread=0.0, depth=0.0) == []


def test_a_few_basis_points_after_a_quiet_start_are_not_an_extreme_move():
    """The defect: a 3 bp move against a short, flat history scored dozens of sigmas and halted."""
    detector = BlackSwanDetector()
    assert quiet(detector, 300) == []
    assert detector.update(300.0, 100.03, 0.01, 1000.0) is None


def test_the_overnight_gap_is_not_an_intraday_move():
    detector = BlackSwanDetector()
    assert quiet(detector, 300) == []
    detector.new_period()  # the close; the engine calls this at every session break
    detector.new_period()  # the next open
    assert detector.update(70_000.0, 101.5, 0.01, 1000.0) is None  # a 1.5 % gap up overnight
    assert detector.update(70_001.0, 101.5, 0.01, 1000.0) is None
