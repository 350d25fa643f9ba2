"""spec.symbol is immutable, with the real operator (kopf) over HTTP. The API server refuses a change (the CRD's
CEL rule, pinned in test_emulator.py); this is the operator's defence in depth on a cluster that lets one
through (Kubernetes before 1.25 ignores `x-kubernetes-validations`): the CRD is installed without the rule for
the length of the test, and the symbol keeps trading what it traded, with the reason in status and an Event."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from devstack.processes import wait_for
from trading_operator.crd import build_crd
from trading_operator.kube import CRDS, KubeApi

from .operator_harness import condition, create_ts, deployment, events, patch_spec, status, wait_status

pytestmark = pytest.mark.usefixtures("operator")


def _without_the_rule() -> dict[str, Any]:
    crd = copy.deepcopy(build_crd())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    del schema["properties"]["spec"]["properties"]["symbol"]["x-kubernetes-validations"]
    return crd


def _symbol_env(kube: KubeApi, ns: str, name: str) -> str:
    found = deployment(kube, ns, name)
    assert found is not None
    env = found["spec"]["template"]["spec"]["containers"][0]["env"]
    return str(next(e["value"] for e in env if e["name"] == "TRADEOPS_SYMBOL"))


def test_a_changed_symbol_that_got_through_is_refused_and_the_pods_keep_their_symbol(kube: KubeApi, ns: str) -> None:
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=1)
    assert status(kube, ns, "spy")["symbol"] == "SPY"
    lax = _without_the_rule()
    kube.merge_patch(CRDS, None, lax["metadata"]["name"], lax)
    try:
        patch_spec(kube, ns, "spy", {"symbol": "QQQ"})  # accepted: this cluster does not enforce the rule
        wait_for(lambda: condition(kube, ns, "spy", "SpecValid").get("reason") == "SymbolImmutable", 30,
                 "spy refusing the new symbol")
    finally:
        kube.replace(CRDS, None, build_crd()["metadata"]["name"],
                     {**build_crd(), "metadata": kube.get(CRDS, None, build_crd()["metadata"]["name"])["metadata"]})
    now = status(kube, ns, "spy")
    assert (now["phase"], now["symbol"], now["currentRevision"]) == ("Invalid", "SPY", 1)
    assert "spec.symbol QQQ differs from SPY" in condition(kube, ns, "spy", "SpecValid")["message"]
    assert [e["type"] for e in events(kube, ns, "spy") if e["reason"] == "SymbolImmutable"] == ["Warning"]
    assert _symbol_env(kube, ns, "spy") == "SPY"
    with pytest.raises(ApiException) as refused:  # the rule is back for the tests after this one
        patch_spec(kube, ns, "spy", {"symbol": "ES"})
    assert refused.value.status == 422
