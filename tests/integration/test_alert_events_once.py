"""An alert is one Event however often Alertmanager posts it: a notification retried after a 503 part-way, or
repeated while the alert keeps firing, writes no second Event (the API answers the same name with 409); its
resolution, and a new firing of the same alert, are Events of their own."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from devstack.emulator import RunningEmulator
from tests.integration.emulator_fixtures import api_client_for, emulator, unique_namespace  # noqa: F401
from trading_operator.alert_webhook import FIRING_REASON, PATH, RESOLVED_REASON, AlertReceiver
from trading_operator.crd import build_crd
from trading_operator.executor import TRADING_SYMBOLS, Executor
from trading_operator.kube import CRDS, EVENTS, NAMESPACES
from trading_operator.kube_async import AsyncKubeApi

LABELS = {"alertname": "TradeopsErrorBudgetBurn", "symbol": "SPY", "slo": "error-ratio", "severity": "page"}


def notification(namespace: str, status: str, starts_at: str) -> dict[str, Any]:
    alert = {"status": status, "labels": {**LABELS, "namespace": namespace}, "startsAt": starts_at,
             "fingerprint": "4a1b2c3d4e5f6a7b"}
    return {"version": "4", "status": status, "receiver": "tradeops-operator", "groupKey": "{}", "alerts": [alert]}


async def test_a_retried_or_repeated_notification_is_one_event(emulator: RunningEmulator) -> None:  # noqa: F811
    kube = AsyncKubeApi(api_client_for(emulator.url))
    await kube.create(CRDS, None, build_crd())
    namespace = unique_namespace("alerts")
    await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await kube.create(TRADING_SYMBOLS, namespace, {
        "apiVersion": "tradeops.io/v1alpha1", "kind": "TradingSymbol", "metadata": {"name": "spy"},
        "spec": {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/tradeops/runtime:1.0.0"}})
    client = TestClient(TestServer(AlertReceiver(Executor(kube)).app()))
    await client.start_server()

    async def post(status: str, starts_at: str) -> None:
        response = await client.post(PATH, json=notification(namespace, status, starts_at))
        assert response.status == 200, await response.text()

    async def reasons() -> list[str]:
        return sorted(e["reason"] for e in await kube.list_objects(EVENTS, namespace)
                      if e["reason"] in (FIRING_REASON, RESOLVED_REASON))

    try:
        for _ in range(3):  # the first post, a retry, a repeat while it still fires
            await post("firing", "2026-12-06T08:00:00Z")
        assert await reasons() == [FIRING_REASON]
        await post("resolved", "2026-12-06T08:00:00Z")
        await post("resolved", "2026-12-06T08:00:00Z")
        assert await reasons() == [FIRING_REASON, RESOLVED_REASON]
        await post("firing", "2026-12-06T09:30:00Z")  # the same alert fires again later: a new page
        assert await reasons() == [FIRING_REASON, FIRING_REASON, RESOLVED_REASON]
    finally:
        await client.close()
        await kube.close()
