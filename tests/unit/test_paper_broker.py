"""Paper fills pay the spread and fees; P&L bookkeeping through increases, reductions and flips."""

from __future__ import annotations

import pytest

from trading_runtime.execution.paper import PaperBroker


def test_fills_cross_the_spread_and_pay_fees():
    broker = PaperBroker(fee_per_unit=0.01)
    assert broker.submit("SPY", 10, 0.0) is None  # no quote yet
    broker.quote("SPY", 100.0, 100.02)
    buy = broker.submit("SPY", 10, 1.0)
    assert buy.price == 100.02
    assert buy.fee == pytest.approx(0.1)
    sell = broker.submit("SPY", -10, 2.0)
    assert sell.price == 100.0
    assert broker.position("SPY").quantity == 0
    assert broker.realized() == pytest.approx(-0.2 - 0.2)  # the spread on 10 units and two fees
    assert broker.open_positions() == 0


def test_average_price_realised_and_unrealised_through_a_flip():
    broker = PaperBroker(fee_per_unit=0.0)
    broker.quote("X", 10.0, 10.0)
    broker.submit("X", 10, 0)
    broker.quote("X", 12.0, 12.0)
    broker.submit("X", 10, 1)
    assert broker.position("X").average_price == pytest.approx(11.0)
    broker.quote("X", 13.0, 13.0)
    broker.submit("X", -30, 2)  # sell 20 to close (+40), 10 more short at 13
    position = broker.position("X")
    assert position.realized == pytest.approx(40.0)
    assert position.quantity == -10
    assert position.average_price == 13.0
    broker.quote("X", 12.0, 12.5)
    assert broker.unrealized() == pytest.approx(-10 * (12.5 - 13.0))


def test_option_pnl_uses_the_contract_multiplier():
    broker = PaperBroker(fee_per_unit=0.65)
    broker.quote("SPY-20261218-C-500", 10.0, 10.2, multiplier=100)
    broker.submit("SPY-20261218-C-500", 2, 0)
    broker.quote("SPY-20261218-C-500", 11.0, 11.2, multiplier=100)
    assert broker.unrealized() == pytest.approx(2 * (11.0 - 10.2) * 100)
    broker.submit("SPY-20261218-C-500", -2, 1)
    assert broker.position("SPY-20261218-C-500").realized == pytest.approx(160.0)
    assert broker.realized() == pytest.approx(160.0 - 4 * 0.65)
    assert broker.held() == {}
