"""Choosing and sizing the option contract that expresses a view, and its greeks."""

from __future__ import annotations

import datetime

import pytest

from trading_runtime.execution.options import (
    Contract,
    choose_contract,
    contract_greeks,
    contracts_for,
    parse_option_id,
)
from trading_runtime.pricing.black_scholes import price

NOW = datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC).timestamp()
CHAIN = [Contract(f"SPY-{e}-{r}-{k}", e, r, float(k)) for e in ("20261127", "20261218", "20270115")
         for r in ("C", "P") for k in (490, 495, 500, 505, 510)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SPY-20261218-C-500", Contract("SPY-20261218-C-500", "20261218", "C", 500.0)),
     ("ES-20261218-P-5025.5", Contract("ES-20261218-P-5025.5", "20261218", "P", 5025.5)), ("SPY", None),
     ("SPY-2026-X-1", None)],
    ids=["call", "futures-put", "underlying", "garbage"],
)
def test_parse_option_id(text, expected):
    assert parse_option_id(text) == expected


@pytest.mark.parametrize(("direction", "spot", "instrument"),
                         [(1, 501.0, "SPY-20261218-C-500"), (-1, 503.0, "SPY-20261218-P-505"), (0, 500.0, None)],
                         ids=["long-call", "short-put", "flat"])
def test_choose_contract_skips_expiries_under_a_week(direction, spot, instrument):
    chosen = choose_contract(CHAIN, spot, direction, NOW)
    assert (chosen.instrument if chosen else None) == instrument


def test_greeks_and_contract_count_size_the_delta():
    contract = CHAIN[10 + 2]  # 20261218 call 500
    mid = float(price(500, 500, 23 / 365, 0.2, 0.04, True))
    greeks = contract_greeks(contract, mid, 500.0, NOW, 0.04, "bsm")
    assert 0.5 < greeks.delta < 0.6
    assert greeks.gamma > 0
    assert greeks.vega > 0
    assert contracts_for(100_000, greeks.delta, 500.0, 100) == int(100_000 // (greeks.delta * 500 * 100))
    assert contracts_for(100_000, 0.0, 500.0, 100) == 0
