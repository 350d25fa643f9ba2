"""The operator's Alertmanager webhook receiver: every SLO alert about a symbol becomes an Event on its
TradingSymbol, so `opsctl describe` (and `kubectl describe`) show the page next to the rollouts and
rollbacks that may explain it. A firing SLO alert (one with an `slo` label) also asks for a background
analysis of the symbol's stable revision now (`naming.ANALYSIS_REQUESTED_ANNOTATION`): the analysis loop
measures it at its next look and the planner acts on the finding as on any other (it may restart the stable
pods); the webhook decides nothing itself.

Alertmanager posts its webhook payload (version 4) to `POST /alerts`; `policies.alertmanager` routes every
burn-rate alert of the SLO policy here. Answers: 200 once every alert is recorded or known to have no
TradingSymbol (counted: retrying would not help), 400 for a body that is not a webhook payload (counted,
nothing recorded), 503 when the Kubernetes API cannot be read (Alertmanager retries with backoff).

Started from the operator's startup (`TRADEOPS_ALERT_WEBHOOK_PORT`, 0 or unset: off); every replica serves
it, as any of them may receive a notification through the Service."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

import kopf
from aiohttp import web
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trading_operator import naming
from trading_operator.executor import TRADING_SYMBOLS, Executor
from trading_operator.kube import load_api_client
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.metrics import REGISTRY
from trading_operator.timestamps import now_rfc3339

log = logging.getLogger(__name__)

PATH = "/alerts"
PORT_ENV = "TRADEOPS_ALERT_WEBHOOK_PORT"
FIRING_REASON = "AlertFiring"
RESOLVED_REASON = "AlertResolved"
WARNING, NORMAL = "Warning", "Normal"
"""core/v1 Event types: a firing alert is a warning, its resolution normal."""

RECEIVED = Counter("tradeops_operator_alerts", "Alerts received on the webhook, by outcome",
                   ["outcome"], registry=REGISTRY)
"""outcome: recorded (an Event written), unmatched (no TradingSymbol trades it), invalid (not a payload)."""
ANALYSES_REQUESTED = Counter("tradeops_operator_alert_analyses_requested",
                             "Background analyses of a stable revision requested by a firing SLO alert",
                             registry=REGISTRY)


class Alert(BaseModel):
    """One alert of an Alertmanager webhook payload (the fields used; others are ignored)."""

    model_config = ConfigDict(extra="ignore")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field("", alias="startsAt")
    fingerprint: str = ""


class Notification(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore")
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[Alert]


@dataclass(frozen=True)
class AlertEvent:
    """What one alert writes on its TradingSymbol."""

    namespace: str
    symbol: str
    type: str
    reason: str
    message: str
    requests_analysis: bool = False
    """A firing SLO alert: the stable revision is analysed now, not at the next background interval."""
    key: str = ""
    """Which firing or resolution of which alert this is: the Event's name derives from it, so a notification
    Alertmanager retries (after a 503 part-way) or repeats does not write the Event twice."""

    def event_name(self, ts_name: str) -> str:
        return f"{ts_name}.{hashlib.sha256(self.key.encode()).hexdigest()[:16]}"


def event_for(alert: Alert) -> AlertEvent | None:
    """The Event of an alert, or None when it names no symbol (nothing to record it on)."""
    namespace, symbol = alert.labels.get("namespace"), alert.labels.get("symbol")
    if not namespace or not symbol:
        return None
    labels = alert.labels
    what = labels.get("alertname", "alert")
    if "slo" in labels:
        what += f" slo={labels['slo']}"
    for key in ("severity", "burn_rate", "long", "short"):
        if key in labels:
            what += f" {key}={labels[key]}"
    summary = alert.annotations.get("summary", "")
    runbook = alert.annotations.get("runbook_url", "")
    firing = alert.status == "firing"
    message = (f"{'Firing' if firing else 'Resolved'}: {what}" + (f": {summary}" if summary else "")
               + (f" (since {alert.starts_at})" if alert.starts_at and firing else "")
               + (f"; runbook {runbook}" if runbook else ""))
    identity = alert.fingerprint or "|".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return AlertEvent(namespace, symbol, WARNING if firing else NORMAL,
                      FIRING_REASON if firing else RESOLVED_REASON, message, firing and "slo" in labels,
                      key=f"{identity}|{alert.starts_at}|{alert.status}")


class AlertReceiver:
    """Records alerts as Events on the TradingSymbols that trade their symbol."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def trading_symbols(self, namespace: str, symbol: str) -> list[dict[str, Any]]:
        """The TradingSymbols of a namespace that trade `symbol` (usually one)."""
        items = await self.executor.kube.list_objects(TRADING_SYMBOLS, namespace)
        return [ts for ts in items if (ts.get("spec") or {}).get("symbol") == symbol]

    async def request_analysis(self, ts: dict[str, Any]) -> None:
        """Ask the analysis loop to measure the stable revision now (it measures; the planner decides)."""
        meta = ts["metadata"]
        patch = {"metadata": {"annotations": {naming.ANALYSIS_REQUESTED_ANNOTATION: now_rfc3339()}}}
        await self.executor.kube.merge_patch(TRADING_SYMBOLS, meta["namespace"], meta["name"], patch)
        ANALYSES_REQUESTED.inc()

    async def record(self, notification: Notification) -> dict[str, int]:
        """Write the Events of a notification; raises when the API cannot be read (nothing half-counted)."""
        events = [event for event in map(event_for, notification.alerts) if event is not None]
        targets = {(e.namespace, e.symbol): await self.trading_symbols(e.namespace, e.symbol)
                   for e in {(e.namespace, e.symbol): e for e in events}.values()}
        outcome = {"recorded": 0, "unmatched": len(notification.alerts) - len(events)}
        for event in events:
            found = targets[(event.namespace, event.symbol)]
            if not found:
                outcome["unmatched"] += 1
                log.warning("alert for %s/%s: no TradingSymbol trades it: %s", event.namespace, event.symbol,
                            event.message)
            for ts in found:
                await self.executor.emit_event(ts, event.type, event.reason, event.message,
                                               name=event.event_name(ts["metadata"]["name"]))
                if event.requests_analysis:
                    await self.request_analysis(ts)
            outcome["recorded"] += bool(found)
        for name, count in outcome.items():
            RECEIVED.labels(name).inc(count)
        return outcome

    async def handle(self, request: web.Request) -> web.Response:
        try:
            notification = Notification.model_validate_json(await request.read())
        except ValidationError as error:
            RECEIVED.labels("invalid").inc()
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
            log.warning("alert webhook: refused a body that is not an Alertmanager payload: %s", problems)
            return web.json_response({"error": f"not an Alertmanager webhook payload (version 4): {problems}"},
                                     status=400)
        try:
            outcome = await self.record(notification)
        except Exception as error:  # the API is away: Alertmanager retries the notification
            log.warning("alert webhook: cannot read TradingSymbols: %s", error)
            return web.json_response({"error": f"cannot read TradingSymbols: {error}"}, status=503)
        return web.json_response(outcome)

    def app(self) -> web.Application:
        application = web.Application(client_max_size=1 << 20)
        application.router.add_post(PATH, self.handle)
        return application


async def serve(receiver: AlertReceiver, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    """Start the receiver on `host:port`; the caller cleans the runner up."""
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def configured_port(env: dict[str, str] | None = None) -> int:
    """The port from the environment (0: off). A value that is not a port stops the operator at start."""
    value = (env if env is not None else dict(os.environ)).get(PORT_ENV, "0") or "0"
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f"{PORT_ENV}={value!r} is not a port number")
    return int(value)


@kopf.on.startup()
async def start_alert_webhook(memo: kopf.Memo, logger: logging.Logger | logging.LoggerAdapter[Any],
                              **_: Any) -> None:
    port = configured_port()
    if not port:
        return
    kube = AsyncKubeApi(load_api_client(os.environ.get("KUBECONFIG")))
    instance = os.environ.get("POD_NAME", os.uname().nodename)
    memo["alert_webhook"] = await serve(AlertReceiver(Executor(kube, instance=instance)), port)
    memo["alert_webhook_kube"] = kube
    logger.info("alert webhook listening on :%d%s", port, PATH)


@kopf.on.cleanup()
async def stop_alert_webhook(memo: kopf.Memo, **_: Any) -> None:
    runner = memo.get("alert_webhook")
    if runner is not None:
        await runner.cleanup()
        await memo["alert_webhook_kube"].close()
