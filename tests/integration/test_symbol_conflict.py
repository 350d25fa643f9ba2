"""One symbol, one trader, with the real operator (kopf) over HTTP: a second TradingSymbol naming a symbol another
one trades in the namespace is refused and starts nothing; deleting the owner hands the symbol over at once.
Marked e2e: on a real cluster the pods report their own positions for the drain."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes.client.exceptions import ApiException

from devstack.processes import wait_for
from tests.integration.conftest import Stack
from tests.integration.operator_harness import (
    PATIENCE,
    condition,
    create_ts,
    deployment,
    events,
    patch_spec,
    revisions,
    status,
    wait_event,
    wait_status,
)
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import KubeApi

pytestmark = pytest.mark.usefixtures("operator")

RESYNC_SECONDS = 60.0
"""The operator's resync period (handlers.RESYNC_SECONDS, left at its default here and in deploy/operator/)."""


@pytest.mark.e2e
def test_a_second_claimant_is_refused_until_the_owner_is_deleted(kube: KubeApi, ns: str, stack: Stack) -> None:
    create_ts(kube, ns, "spy", drain={"timeoutSeconds": 60})
    wait_status(kube, ns, "spy", phase="Ready")
    create_ts(kube, ns, "spy-2", symbol="SPY")
    wait_for(lambda: condition(kube, ns, "spy-2", "Conflict").get("status") == "True", 20 * PATIENCE,
             "spy-2 in Conflict")
    refused = wait_event(kube, ns, "spy-2", "SymbolConflict")
    assert refused["type"] == "Warning"
    assert "TradingSymbol spy " in refused["message"]
    assert f"SPY in namespace {ns}" in refused["message"]
    assert condition(kube, ns, "spy-2", "Conflict")["reason"] == "SymbolConflict"
    assert status(kube, ns, "spy-2")["phase"] == "Pending"
    assert deployment(kube, ns, "spy-2") is None
    assert revisions(kube, ns, "spy-2") == []
    assert status(kube, ns, "spy")["phase"] == "Ready"
    assert condition(kube, ns, "spy", "Conflict") == {}, "the owner is not in conflict"

    if stack.positions is not None:  # the harness answers for the pods; on a cluster the pods do
        stack.positions.open[(ns, "spy")] = 0
    kube.delete(TRADING_SYMBOLS, ns, "spy")
    wait_for(lambda: kube.get_or_none(TRADING_SYMBOLS, ns, "spy") is None, 60 * PATIENCE, "spy drained and gone")
    gone = time.monotonic()
    # Well inside the resync period: the hand-over, not the safety-net timer, starts the waiting claimant.
    wait_for(lambda: deployment(kube, ns, "spy-2") is not None, min(15.0 * PATIENCE, RESYNC_SECONDS / 2),
             "spy-2's Deployment")
    assert time.monotonic() - gone < RESYNC_SECONDS
    wait_status(kube, ns, "spy-2", timeout=60, phase="Ready", currentRevision=1)
    owned = condition(kube, ns, "spy-2", "Conflict")
    assert (owned["status"], owned["reason"]) == ("False", "SymbolOwned")
    assert [e["reason"] for e in events(kube, ns, "spy-2")].count("SymbolConflict") == 1
    if stack.positions is not None:
        assert any(e["reason"] == "Drained" for e in events(kube, ns, "spy"))


@pytest.mark.e2e
def test_an_owner_cannot_rename_its_symbol_so_the_claimant_keeps_waiting(kube: KubeApi, ns: str) -> None:
    """spec.symbol is immutable (the CRD's CEL rule, enforced by the API server): trading another symbol is a
    delete and a create, and the hand-over happens on the delete (the test above)."""
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    create_ts(kube, ns, "spy-2", symbol="SPY")
    wait_event(kube, ns, "spy-2", "SymbolConflict")
    with pytest.raises(ApiException) as refused:
        patch_spec(kube, ns, "spy", {"symbol": "QQQ"})
    assert refused.value.status == 422
    assert "spec.symbol: Invalid value" in json.loads(refused.value.body)["message"]
    assert status(kube, ns, "spy")["symbol"] == "SPY"
    assert deployment(kube, ns, "spy-2") is None
    assert condition(kube, ns, "spy-2", "Conflict")["status"] == "True"


@pytest.mark.e2e
def test_two_claimants_created_at_once_leave_one_trader(kube: KubeApi, ns: str) -> None:
    """Created back to back, the later one may start before the operator has seen the first: then it stops its
    pods as soon as it does. Either way one Deployment is left, the first claimant's."""
    first = create_ts(kube, ns, "spy")
    create_ts(kube, ns, "spy-2", symbol="SPY")
    wait_status(kube, ns, "spy", timeout=30, phase="Ready")
    wait_for(lambda: condition(kube, ns, "spy-2", "Conflict").get("status") == "True", 20 * PATIENCE,
             "spy-2 in Conflict")
    wait_for(lambda: deployment(kube, ns, "spy-2") is None, 20 * PATIENCE, "no Deployment for spy-2")
    assert deployment(kube, ns, "spy") is not None
    assert f"TradingSymbol {first['metadata']['name']} (" in condition(kube, ns, "spy-2", "Conflict")["message"]
    assert status(kube, ns, "spy-2")["phase"] == "Pending"
