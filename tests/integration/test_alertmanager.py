"""The Alertmanager configuration generated from the SLO policy: `amtool check-config` accepts it, `amtool
config routes test` sends each kind of alert to the receivers it should reach, and a real Alertmanager
delivers POSTed alerts to the operator's webhook, the pager and the ticket channel grouped by symbol and SLO,
while an inhibited alert (a ticket under its page, a burn of a halted symbol) reaches nobody."""

from __future__ import annotations

import subprocess
import time

import pytest

from policies.alertmanager import (
    HALTED_ALERT,
    OPERATOR_RECEIVER,
    PAGE_RECEIVER,
    PAUSED_ALERT,
    TICKET_RECEIVER,
    AlertmanagerSettings,
    render,
)
from policies.loader import load_dir
from policies.operator_alerts import OPERATOR_DOWN_ALERT
from policies.rules import ALERT_NAME
from tests.alertmanager_server import ThrowawayAlertmanager, WebhookRecorder, amtool

pytestmark = pytest.mark.integration
DEFAULT = load_dir().slo["default"]


def test_amtool_accepts_the_checked_in_configuration():
    result = subprocess.run([amtool(), "check-config", "deploy/alertmanager/alertmanager.yml"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 receivers" in result.stdout
    assert "3 inhibit rules" in result.stdout


@pytest.mark.parametrize(("labels", "receivers"), [
    ({"alertname": ALERT_NAME, "severity": "page", "slo": "error-ratio"}, [OPERATOR_RECEIVER, PAGE_RECEIVER]),
    ({"alertname": ALERT_NAME, "severity": "ticket", "slo": "availability"}, [OPERATOR_RECEIVER, TICKET_RECEIVER]),
    ({"alertname": ALERT_NAME, "severity": "page", "slo": "not-in-the-policy"}, [PAGE_RECEIVER]),
    ({"alertname": HALTED_ALERT}, [TICKET_RECEIVER]),
    ({"alertname": PAUSED_ALERT, "severity": "ticket"}, [TICKET_RECEIVER]),
    ({"alertname": "SomethingElse", "severity": "page"}, [PAGE_RECEIVER]),
], ids=["page-burn", "ticket-burn", "burn-of-unknown-slo", "halted", "paused", "other-page"])
def test_amtool_routes_each_alert_to_its_receivers(labels, receivers):
    args = [f"{k}={v}" for k, v in {"namespace": "trading", "symbol": "SPY", **labels}.items()]
    result = subprocess.run([amtool(), "config", "routes", "test", "--config.file",
                             "deploy/alertmanager/alertmanager.yml", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == receivers


def test_amtool_pages_people_when_the_operator_is_down():
    """The operator's own outage names no symbol and must not go to the operator's webhook (nothing would
    answer there): it pages people, and only them."""
    result = subprocess.run([amtool(), "config", "routes", "test", "--config.file",
                             "deploy/alertmanager/alertmanager.yml", f"alertname={OPERATOR_DOWN_ALERT}",
                             "severity=page"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == [PAGE_RECEIVER]


def burn(symbol: str, slo: str, severity: str, factor: str) -> dict:
    return {"labels": {"alertname": ALERT_NAME, "namespace": "trading", "symbol": symbol, "slo": slo,
                       "severity": severity, "burn_rate": factor},
            "annotations": {"summary": f"{symbol} burns the {slo} error budget {factor}x too fast",
                            "runbook_url": f"https://example.invalid/runbooks.md#{slo}"}}


def test_a_real_alertmanager_groups_routes_and_inhibits(tmp_path):
    with WebhookRecorder() as hooks:
        key, slack_url = tmp_path / "routing-key", tmp_path / "slack-url"
        key.write_text("secret-routing-key\n")
        slack_url.write_text(hooks.url("/slack"))
        settings = AlertmanagerSettings(
            operator_url=hooks.url("/operator"), pagerduty_url=hooks.url("/pagerduty"),
            pagerduty_routing_key_file=str(key), slack_api_url_file=str(slack_url),
            group_wait="1s", group_interval="1s")
        alertmanager = ThrowawayAlertmanager(render(DEFAULT, settings)).start()
        try:
            alertmanager.post([
                burn("SPY", "error-ratio", "page", "14.4"), burn("SPY", "error-ratio", "page", "6"),
                burn("SPY", "error-ratio", "ticket", "3"),        # under its page: inhibited
                burn("SPY", "tick-to-signal-latency", "ticket", "1"),
                burn("QQQ", "error-ratio", "page", "14.4"),
                burn("ES", "error-ratio", "page", "14.4"),         # ES is halted: inhibited
                {"labels": {"alertname": HALTED_ALERT, "namespace": "trading", "symbol": "ES",
                            "reason": "kill-switch"}},
            ])
            deadline = time.monotonic() + 30
            expected = {"/operator": 3, "/pagerduty": 2, "/slack": 2}
            while time.monotonic() < deadline and any(len(hooks.at(p)) < n for p, n in expected.items()):
                time.sleep(0.1)
            time.sleep(3)  # three more group intervals: time for anything that should not come to come
        finally:
            alertmanager.destroy()
        operator = {(n["groupLabels"]["symbol"], n["groupLabels"]["slo"]): n for n in hooks.at("/operator")}
        assert sorted(operator) == [("QQQ", "error-ratio"), ("SPY", "error-ratio"), ("SPY", "tick-to-signal-latency")]
        spy = operator[("SPY", "error-ratio")]
        assert sorted(a["labels"]["burn_rate"] for a in spy["alerts"]) == ["14.4", "6"], \
            "both page burns of one symbol and SLO in one notification; the inhibited ticket in none"
        assert spy["groupLabels"] == {"alertname": ALERT_NAME, "namespace": "trading", "symbol": "SPY",
                                      "slo": "error-ratio"}
        assert [a["labels"]["symbol"] for a in operator[("QQQ", "error-ratio")]["alerts"]] == ["QQQ"]
        pages = hooks.at("/pagerduty")
        assert sorted(p["payload"]["custom_details"]["firing"].count("symbol = ") for p in pages) == [1, 2]
        assert {p["routing_key"] for p in pages} == {"secret-routing-key"}, "the key comes from the Secret's file"
        assert all("ES" not in p["payload"]["summary"] for p in pages), "a halted symbol pages nobody"
        tickets = [s["attachments"][0]["title"] for s in hooks.at("/slack")]
        assert sorted(tickets) == [f"trading/ES: {HALTED_ALERT}", f"trading/SPY: {ALERT_NAME}"]
        assert len(hooks.at("/operator")) == 3
