"""The backtester's pure parts: the simulated broker, walk-forward folds, parameter grids and the
statistics of a run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.broker import FillModel, SimulatedBroker
from backtest.data import SessionWindow
from backtest.folds import walk_forward
from backtest.metrics import chained, max_drawdown, sharpe_sortino, verdict
from backtest.params import apply, candidates, parse_grid
from trading_runtime.clock import EventClock
from trading_runtime.config import RuntimeConfig

OPTION = "SPY-20260320-C-500"


def broker(**fill) -> tuple[SimulatedBroker, EventClock]:
    clock = EventClock(100.0)
    b = SimulatedBroker(fill_model=FillModel(**fill), clock=clock)
    b.quote(OPTION, 5.0, 5.2, multiplier=100.0)
    return b, clock


def test_fills_pay_the_spread_slippage_and_fees_in_contract_units():
    b, _ = broker(fee_per_contract=0.65, slippage_ticks=2)
    buy = b.submit(OPTION, 3, 100.0)
    assert buy is not None
    assert buy.price == pytest.approx(5.22)
    b.quote(OPTION, 6.0, 6.2, multiplier=100.0)
    b.submit(OPTION, -3, 100.0)
    assert b.realized() == pytest.approx(3 * (5.98 - 5.22) * 100 - 6 * 0.65)
    assert [f.touch for f in b.ledger] == [5.2, 6.0]


def test_a_latent_order_fills_at_the_first_quote_after_its_latency_and_counts_while_working():
    b, clock = broker(latency_ms=500)
    assert b.submit(OPTION, 2, 100.0) is None
    assert b.position(OPTION).quantity == 2  # projected: the engine will not send it twice
    assert b.held() == {OPTION: 2}
    assert b.realized() == 0
    clock.advance(100.4)
    b.quote(OPTION, 5.1, 5.3, multiplier=100.0)  # too early
    assert b.ledger == []
    clock.advance(100.7)
    b.quote(OPTION, 5.4, 5.6, multiplier=100.0)
    (fill,) = b.ledger
    assert (fill.decided_at, fill.filled_at, fill.price) == (100.0, 100.7, 5.6)
    assert b.positions[OPTION].quantity == 2
    assert b.working == []


def test_the_kill_switch_cancels_working_orders():
    b, clock = broker(latency_ms=500)
    b.submit(OPTION, 2, 100.0)
    assert b.cancel_all() == ["1"]
    clock.advance(101.0)
    b.quote(OPTION, 5.4, 5.6, multiplier=100.0)
    assert b.ledger == []
    assert b.held() == {}


def session_windows(n: int, gap: float = 0.0) -> list[SessionWindow]:
    return [SessionWindow(f"d{i}", i * (100.0 + gap), i * (100.0 + gap) + 100.0) for i in range(n)]


@given(n=st.integers(1, 40), train=st.integers(1, 8), test=st.integers(1, 4), embargo=st.integers(0, 2),
       purge=st.sampled_from([0.0, 10.0]), anchored=st.booleans())
def test_walk_forward_folds_never_train_on_or_near_what_they_test(n, train, test, embargo, purge, anchored):
    windows = session_windows(n)
    try:
        folds = walk_forward(windows, train, test, embargo=embargo, purge_s=purge, anchored=anchored)
    except ValueError:
        assert n < train + embargo + test
        return
    for fold in folds:
        assert fold.train_end + purge <= fold.test_start
        assert len(fold.test_sessions) == test
        assert set(fold.train_sessions).isdisjoint(fold.test_sessions)
        last_train = int(fold.train_sessions[-1][1:])
        assert int(fold.test_sessions[0][1:]) - last_train == embargo + 1
        assert len(fold.train_sessions) == (last_train + 1 if anchored else train)
    tests = [(f.test_start, f.test_end) for f in folds]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(tests))


def test_purge_trims_the_train_window_when_sessions_touch():
    (fold,) = walk_forward(session_windows(3), train=2, test=1, purge_s=60.0)
    assert fold.train_end == fold.test_start - 60.0


def test_grids_expand_in_order_and_the_config_model_judges_each_candidate():
    grid = parse_grid(["strategy.entryScore=0.4,0.5", "strategy.exitScore=0.45"])
    assert candidates(grid) == [{"strategy.entryScore": 0.4, "strategy.exitScore": 0.45},
                                {"strategy.entryScore": 0.5, "strategy.exitScore": 0.45}]
    with pytest.raises(ValueError, match="must be below entryScore"):
        apply(RuntimeConfig(), candidates(grid)[0])
    config = apply(RuntimeConfig(), {**candidates(grid)[1], "strategy.horizonSeconds": 30.0})
    assert (config.strategy.entry_score, config.strategy.horizon_seconds) == (0.5, 30)
    with pytest.raises(ValueError, match=r"unknown parameter 'strategy\.entry'"):
        apply(RuntimeConfig(), {"strategy.entry": 1.0})
    with pytest.raises(ValueError, match="expected PATH=V1,V2"):
        parse_grid(["strategy.entryScore"])


def test_sharpe_has_an_interval_and_no_data_is_none():
    rng = np.random.default_rng(0)
    returns = rng.normal(0.001, 0.01, 2500)
    sharpe, ci, sortino = sharpe_sortino(returns, 252)
    assert ci is not None
    assert sortino is not None
    assert ci[0] < sharpe < ci[1]
    assert ci[0] < 0.1 * math.sqrt(252) < ci[1]  # the true per-period Sharpe is 0.1
    assert sharpe_sortino(returns[:10], 252) == (None, None, None)  # too few returns
    assert sharpe_sortino(np.zeros(100), 252) == (None, None, None)  # equity never moved


def test_drawdown_and_chained_folds():
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 130.0])) == pytest.approx(0.25)
    curve = chained([[(0, 100.0), (1, 110.0)], [(2, 100.0), (3, 90.0)]], capital=100.0)
    assert [e for _, e in curve] == pytest.approx([100.0, 110.0, 110.0, 99.0])


@pytest.mark.parametrize(("calls", "hits", "baseline", "expected"), [
    (20, 18, 10, "inconclusive"),
    (400, 240, 200, "edge"),
    (400, 160, 200, "worse-than-baseline"),
    (400, 205, 200, "no-significant-edge"),
], ids=["few-calls", "edge", "worse", "noise"])
def test_verdicts_need_enough_calls_and_an_interval_clear_of_the_baseline(calls, hits, baseline, expected):
    assert verdict(calls, hits, baseline)[0] == expected
