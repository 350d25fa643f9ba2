"""The operator's Alertmanager receiver, without a cluster: what an alert becomes, what the webhook answers
to a body that is not Alertmanager's and to an API it cannot reach, and the gauges of what should run."""

from __future__ import annotations

import contextlib
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from tests.integration.emulator_fixtures import api_client_for
from tests.servers import free_port
from trading_operator.alert_webhook import (
    FIRING_REASON,
    PATH,
    RECEIVED,
    RESOLVED_REASON,
    Alert,
    AlertReceiver,
    configured_port,
    event_for,
)
from trading_operator.executor import Executor
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.metrics import REGISTRY
from trading_operator.symbol_gauges import SymbolGauges

BURN = {"alertname": "TradeopsErrorBudgetBurn", "namespace": "trading", "symbol": "SPY", "slo": "error-ratio",
        "severity": "page", "burn_rate": "14.4", "long": "1h", "short": "5m"}
ANNOTATIONS = {"summary": "SPY burns the error-ratio error budget 14.4x too fast",
               "runbook_url": "https://example.invalid/runbooks.md#error-ratio"}


def payload(*alerts: dict, status: str = "firing") -> dict:
    return {"version": "4", "status": status, "receiver": "tradeops-operator", "groupKey": "{}", "alerts": list(alerts)}


def test_a_firing_burn_is_a_warning_naming_the_slo_burn_and_runbook():
    event = event_for(Alert(status="firing", labels=BURN, annotations=ANNOTATIONS, startsAt="2026-12-06T05:00:00Z"))
    assert event is not None
    assert (event.namespace, event.symbol, event.type, event.reason) == ("trading", "SPY", "Warning", FIRING_REASON)
    assert event.message == (
        "Firing: TradeopsErrorBudgetBurn slo=error-ratio severity=page burn_rate=14.4 long=1h short=5m: "
        "SPY burns the error-ratio error budget 14.4x too fast (since 2026-12-06T05:00:00Z); "
        "runbook https://example.invalid/runbooks.md#error-ratio")


def test_only_a_firing_slo_alert_requests_an_analysis():
    assert event_for(Alert(status="firing", labels=BURN)).requests_analysis  # type: ignore[union-attr]
    assert not event_for(Alert(status="resolved", labels=BURN)).requests_analysis  # type: ignore[union-attr]
    halted = {"alertname": "TradeopsSymbolHalted", "namespace": "trading", "symbol": "SPY", "reason": "kill-switch"}
    assert not event_for(Alert(status="firing", labels=halted)).requests_analysis  # type: ignore[union-attr]


def test_a_resolved_alert_is_normal():
    event = event_for(Alert(status="resolved", labels=BURN))
    assert event is not None
    assert (event.type, event.reason) == ("Normal", RESOLVED_REASON)
    assert event.message.startswith("Resolved: TradeopsErrorBudgetBurn slo=error-ratio")


@pytest.mark.parametrize("labels", [{"alertname": "X", "symbol": "SPY"}, {"alertname": "X", "namespace": "trading"}],
                         ids=["no-namespace", "no-symbol"])
def test_an_alert_about_no_symbol_has_no_event(labels):
    assert event_for(Alert(status="firing", labels=labels)) is None


@pytest.mark.parametrize(("env", "port"), [({}, 0), ({"TRADEOPS_ALERT_WEBHOOK_PORT": ""}, 0),
                                           ({"TRADEOPS_ALERT_WEBHOOK_PORT": "9104"}, 9104)])
def test_the_port_comes_from_the_environment(env, port):
    assert configured_port(env) == port


@pytest.mark.parametrize("value", ["nine", "-1", "70000"])
def test_a_port_that_is_not_one_stops_the_start(value):
    with pytest.raises(ValueError, match="TRADEOPS_ALERT_WEBHOOK_PORT"):
        configured_port({"TRADEOPS_ALERT_WEBHOOK_PORT": value})


@contextlib.asynccontextmanager
async def webhook_without_api():
    """The receiver against an API address nothing listens on: a real client, a refused connection."""
    api_client = api_client_for(f"http://127.0.0.1:{free_port()}")
    kube = AsyncKubeApi(api_client, timeout=5)
    client = TestClient(TestServer(AlertReceiver(Executor(kube)).app()))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await kube.close()
        api_client.close()


def counted(outcome: str) -> float:
    return RECEIVED.labels(outcome)._value.get()


@pytest.mark.parametrize("body", [b"not json", json.dumps({"version": "3", "status": "firing", "alerts": []}).encode(),
                                  json.dumps(payload({"status": "burning", "labels": BURN})).encode()],
                         ids=["not-json", "old-version", "bad-status"])
async def test_a_body_that_is_not_a_payload_is_refused_with_400_and_counted(body):
    before = counted("invalid")
    async with webhook_without_api() as client:
        response = await client.post(PATH, data=body)
        assert response.status == 400
        assert "not an Alertmanager webhook payload" in (await response.json())["error"]
    assert counted("invalid") == before + 1


async def test_an_unreachable_api_answers_503_so_alertmanager_retries():
    before = counted("recorded") + counted("unmatched")
    async with webhook_without_api() as client:
        response = await client.post(PATH, json=payload({"status": "firing", "labels": BURN}))
        assert response.status == 503
        assert "cannot read TradingSymbols" in (await response.json())["error"]
    assert counted("recorded") + counted("unmatched") == before, "nothing counted for an alert not handled"


async def test_alerts_naming_no_symbol_are_answered_without_the_api():
    async with webhook_without_api() as client:
        response = await client.post(PATH, json=payload({"status": "firing", "labels": {"alertname": "Watchdog"}}))
        assert response.status == 200
        assert await response.json() == {"recorded": 0, "unmatched": 1}


def test_the_gauges_say_what_should_run_and_forget_deleted_symbols():
    gauges = SymbolGauges()
    spy = {"metadata": {"namespace": "trading", "name": "spy"}, "spec": {"symbol": "SPY", "replicas": 2},
           "status": {"phase": "Paused"}}
    gauges.observe("ADDED", spy)
    gauges.observe(None, {"metadata": {"namespace": "trading", "name": "es"}, "spec": {"symbol": "ES"}})
    samples = {(m.name, tuple(sorted(s.labels.items()))): s.value for m in gauges.collect() for s in m.samples}
    spy_labels = (("namespace", "trading"), ("symbol", "SPY"), ("tradingsymbol", "spy"))
    assert samples[("tradeops_operator_symbol_replicas", spy_labels)] == 2
    assert samples[("tradeops_operator_symbol_phase", (*spy_labels[:1], ("phase", "Paused"), *spy_labels[1:]))] == 1
    assert samples[("tradeops_operator_symbol_phase", (*spy_labels[:1], ("phase", "Ready"), *spy_labels[1:]))] == 0
    es = (("namespace", "trading"), ("symbol", "ES"), ("tradingsymbol", "es"))
    assert samples[("tradeops_operator_symbol_replicas", es)] == 1, "spec.replicas defaults to 1"
    gauges.observe("DELETED", spy)
    assert all(s.labels["symbol"] == "ES" for m in gauges.collect() for s in m.samples)


def test_the_operator_registry_serves_the_gauges():
    text = generate_latest(REGISTRY).decode()
    assert "# TYPE tradeops_operator_symbol_replicas gauge" in text
    assert "# TYPE tradeops_operator_alerts_total counter" in text
