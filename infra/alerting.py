"""Alerts that reach people and the operator: the Alertmanager of the Prometheus stack runs the
configuration generated from the SLO policy (`deploy/alertmanager/alertmanager.yml`, `make alertmanager`)
with the receivers' secrets mounted from the `tradeops-alerting` Secret (created by whoever holds the
PagerDuty key and the Slack URL: nothing secret is in git), and reaches the operator's webhook through a
Service and a NetworkPolicy of their own."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import hardening
from infra.control_plane import ALERTS_PORT, OPERATOR
from infra.settings import ALERTMANAGER_FILE, Settings

ALERTING_SECRET = "tradeops-alerting"
"""Holds `pagerduty-routing-key` and `slack-webhook-url`; Alertmanager mounts it under
/etc/alertmanager/secrets/tradeops-alerting/, where the generated configuration reads them."""
ALERTMANAGER_POD = {"app.kubernetes.io/name": "alertmanager"}
NS_NAME_LABEL = "kubernetes.io/metadata.name"


def alertmanager_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    return config


def alertmanager_values() -> dict[str, Any]:
    """kube-prometheus-stack values of its Alertmanager: the generated configuration and the Secret."""
    return {"config": alertmanager_config(), "alertmanagerSpec": {"secrets": [ALERTING_SECRET]}}


def webhook_url(settings: Settings) -> str:
    return f"http://{OPERATOR}.{settings.system_namespace}.svc:{ALERTS_PORT}/alerts"


def check_webhook_url(settings: Settings) -> None:
    """The generated configuration must post to the Service this program creates."""
    urls = [hook["url"] for receiver in alertmanager_config()["receivers"]
            for hook in receiver.get("webhook_configs", [])]
    if webhook_url(settings) not in urls:
        raise ValueError(f"{ALERTMANAGER_FILE} posts to {urls}, not to the operator's webhook "
                         f"{webhook_url(settings)}: run `make alertmanager` with --operator-url")


def alerting(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> None:
    """The operator's webhook Service and the policy admitting Alertmanager to it."""
    check_webhook_url(settings)
    after_namespace = pulumi.ResourceOptions(depends_on=[ns["system"]])
    system, monitoring = settings.system_namespace, settings.monitoring_namespace
    selector = {"app.kubernetes.io/name": OPERATOR}
    labels = hardening.labels(OPERATOR, "alert-webhook")
    k8s.core.v1.Service(
        "operator-alert-webhook",
        metadata=hardening.raw({"name": OPERATOR, "namespace": system, "labels": labels}),
        spec=hardening.raw({"selector": selector, "ports": [
            {"name": "alerts", "port": ALERTS_PORT, "targetPort": "alerts", "protocol": "TCP"}]}),
        opts=after_namespace)
    k8s.networking.v1.NetworkPolicy(
        "netpol-operator-alerts",
        metadata=hardening.raw({"name": f"{OPERATOR}-alerts", "namespace": system, "labels": labels}),
        spec=hardening.raw({
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: monitoring}},
                                   "podSelector": {"matchLabels": ALERTMANAGER_POD}}],
                         "ports": [{"port": ALERTS_PORT, "protocol": "TCP"}]}],
        }),
        opts=after_namespace)
