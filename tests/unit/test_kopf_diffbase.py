"""kopf keeps no diff base for TradingSymbols (the scheduler decides when they are reconciled): built and
fetched alike, so kopf neither deep-copies their bodies nor ever writes one — an absent one it would write at
every event. FleetRollouts, whose handlers are kopf's on.create/on.update, keep kopf's diffing."""

from __future__ import annotations

import json

import kopf

from trading_operator import api
from trading_operator.handlers import SymbolsNotDiffed

KEY = f"{api.GROUP}/last-handled-configuration"


def storage() -> SymbolsNotDiffed:
    return SymbolsNotDiffed(prefix=api.GROUP, key="last-handled-configuration")


def test_a_trading_symbol_has_an_empty_diff_base_built_as_fetched() -> None:
    body = kopf.Body({"apiVersion": api.API_VERSION, "kind": api.KIND,
                      "metadata": {"name": "spy", "annotations": {KEY: json.dumps({"spec": {"symbol": "SPY"}})}},
                      "spec": {"symbol": "SPY"}, "status": {"phase": "Ready"}})
    built, fetched = storage().build(body=body), storage().fetch(body=body)
    assert built == fetched == {}


def test_a_fleet_rollout_keeps_kopfs_diff_base() -> None:
    body = kopf.Body({"apiVersion": api.API_VERSION, "kind": "FleetRollout",
                      "metadata": {"name": "wave", "annotations": {KEY: json.dumps({"spec": {"image": "a"}})}},
                      "spec": {"image": "b"}})
    assert storage().build(body=body)["spec"] == {"image": "b"}
    fetched = storage().fetch(body=body)
    assert fetched is not None
    assert fetched["spec"] == {"image": "a"}
