"""Alerting end to end, with Debian's `prometheus` and `prometheus-alertmanager`, the operator as a process
and the emulated API: a runtime's metrics burn the error budget 20x, Prometheus (with the generated rules)
fires the burn-rate alerts, the Alertmanager configuration generated from the policy pages (the ticket
under the page is inhibited) and reaches the operator's webhook, and the alert is an Event on the
TradingSymbol."""

from __future__ import annotations

import datetime
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import start_http_server

from policies.alertmanager import AlertmanagerSettings, render
from policies.loader import load_dir
from policies.rule_set import rule_groups
from policies.rules import render_rules
from tests.alertmanager_server import ThrowawayAlertmanager, WebhookRecorder
from tests.integration.conftest import Stack
from tests.integration.operator_harness import create_ts, events, new_namespace
from tests.prometheus_server import ThrowawayPrometheus
from tests.servers import free_port
from trading_operator import naming
from trading_operator.alert_webhook import FIRING_REASON, PATH
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.timestamps import parse_time
from trading_runtime.metrics import RuntimeMetrics

pytestmark = pytest.mark.integration


class BurningRuntime:
    """The runtime's own metrics registry on a port of its own, 20 % of its messages failing in processing
    (20x the error-ratio SLO's 1 % budget), counted as the engine counts them."""

    def __init__(self) -> None:
        self.metrics = RuntimeMetrics("SPY")
        self.server, self.thread = start_http_server(free_port(), addr="127.0.0.1", registry=self.metrics.registry)
        self.stopped = threading.Event()
        self.ticker = threading.Thread(target=self.run, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            self.metrics.ticks.labels("SPY", "quote").inc(50)
            self.metrics.errors.labels("SPY", "process").inc(10)

    def __enter__(self) -> BurningRuntime:
        self.ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.ticker.join()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def alert_events(stack: Stack, namespace: str) -> list[dict[str, Any]]:
    return [e for e in events(stack.kube, namespace, "spy") if e["reason"] == FIRING_REASON]


def wait_until(check, timeout: float, what: str, logs) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f} s; logs:\n{logs()}")


@pytest.fixture
def webhook_operator(private_stack: Stack) -> Iterator[tuple[Stack, int]]:
    port = free_port()
    process = private_stack.operator("alerts-operator", env={"TRADEOPS_ALERT_WEBHOOK_PORT": str(port)}).start()
    try:
        wait_until(lambda: _listening(port), 60, "the operator's webhook listening", process.log)
        yield private_stack, port
    finally:
        process.stop()
        crashes = [line for line in process.log().splitlines() if "Traceback" in line]
        assert not crashes, process.log()[-3000:]


def _listening(port: int) -> bool:
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{PATH}", data=b"{}"), timeout=2)
    except urllib.error.HTTPError as error:
        return error.code == 400  # up, and refusing an empty body as it should
    except (urllib.error.URLError, ConnectionError):
        return False
    return False


def test_a_burn_pages_and_the_alert_is_an_event_on_the_trading_symbol(webhook_operator, tmp_path):
    stack, port = webhook_operator
    namespace = new_namespace(stack.kube)
    create_ts(stack.kube, namespace, "spy")
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    rules = tmp_path / "rules.yml"
    rules.write_text(render_rules(rule_groups(load_dir().slo["default"])))
    with WebhookRecorder() as hooks, BurningRuntime() as runtime:
        key, slack_url = tmp_path / "routing-key", tmp_path / "slack-url"
        key.write_text("routing-key\n")
        slack_url.write_text(hooks.url("/slack"))
        settings = AlertmanagerSettings(
            operator_url=f"http://127.0.0.1:{port}{PATH}", pagerduty_url=hooks.url("/pagerduty"),
            pagerduty_routing_key_file=str(key), slack_api_url_file=str(slack_url),
            group_wait="1s", group_interval="1s")
        alertmanager = ThrowawayAlertmanager(render(load_dir().slo["default"], settings)).start()
        prometheus = ThrowawayPrometheus().add_rule_file(rules).add_target(
            runtime.address, {"namespace": namespace, "symbol": "SPY", "revision": "1"})
        prometheus.alertmanagers.append(f"127.0.0.1:{alertmanager.port}")
        try:
            prometheus.start()

            def logs() -> str:
                return (f"prometheus: {prometheus.logs()}\nalertmanager: {alertmanager.logs()}\n"
                        f"alerts: {json.dumps(prometheus.query('ALERTS'))[:2000]}")
            recorded = wait_until(lambda: alert_events(stack, namespace), 90, "an AlertFiring Event on spy", logs)
            pages = wait_until(lambda: hooks.at("/pagerduty"), 30, "a page", logs)
        finally:
            prometheus.destroy()
            alertmanager.destroy()
    messages = [e["message"] for e in recorded]
    assert any("TradeopsErrorBudgetBurn slo=error-ratio severity=page burn_rate=14.4" in m for m in messages), messages
    assert all("severity=ticket" not in m for m in messages), "the tickets are inhibited by the page"
    assert all("runbook https://github.com/tradeops/tradeops/blob/main/docs/runbooks.md#error-ratio" in m
               for m in messages)
    event = recorded[0]
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "TradingSymbol"
    assert event["involvedObject"]["name"] == "spy"
    assert "SPY" in pages[0]["payload"]["summary"]
    # The firing SLO alert asked for a background analysis of spy's stable revision (a time the loop reads).
    annotations = stack.kube.get(TRADING_SYMBOLS, namespace, "spy")["metadata"].get("annotations") or {}
    assert naming.ANALYSIS_REQUESTED_ANNOTATION in annotations, annotations
    requested = parse_time(annotations[naming.ANALYSIS_REQUESTED_ANNOTATION])
    assert started <= requested <= datetime.datetime.now(datetime.UTC)
