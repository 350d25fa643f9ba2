"""The portfolio risk service in the cluster: a Deployment of consumers of one Redis Streams group
(`python -m trading_runtime.portfolio`, the runtime image), each named after its pod so a dead replica's
pending entries are reclaimed by the others; a PodMonitor for its lag and VaR series; and its
NetworkPolicy (DNS and Redis out, Prometheus in). It talks to no Kubernetes API: no token is mounted."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening
from infra.datastores import REDIS, REDIS_PORT, RUNTIME_CREDENTIALS
from infra.monitoring import SELECT_LABEL
from infra.settings import Settings

PORTFOLIO_RISK = "tradeops-portfolio-risk"
COMPONENT = "portfolio-risk"
METRICS_PORT = 9103
UID = 10001  # the runtime image's user
REPLICAS = 2
"""Two consumers: one can die (or be rescheduled) and the other reclaims its entries within --claim-idle."""


def pod(settings: Settings) -> dict[str, Any]:
    """Hardened, the Redis URL only from the runtime credentials Secret, the consumer name from the pod."""
    return {
        "automountServiceAccountToken": False,
        "securityContext": hardening.pod_security(UID),
        "terminationGracePeriodSeconds": 30,
        "containers": [{
            "name": "main",
            "image": settings.runtime_image,
            "command": ["python", "-m", "trading_runtime.portfolio", "--consumer", "$(POD_NAME)",
                        "--metrics-port", str(METRICS_PORT)],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "envFrom": [{"secretRef": {"name": RUNTIME_CREDENTIALS}}],
            "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10,
                              "failureThreshold": 6},
            "resources": hardening.resources("100m", "192Mi", "1", "512Mi"),
            "securityContext": hardening.container_security(),
        }],
    }


def network_policy(settings: Settings) -> dict[str, Any]:
    prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.monitoring_namespace}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
    redis = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.data_namespace}},
             "podSelector": {"matchLabels": {"app.kubernetes.io/name": REDIS}}}
    return {
        "metadata": {"name": PORTFOLIO_RISK, "namespace": settings.trading_namespace},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": PORTFOLIO_RISK}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [prometheus], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}],
            "egress": [
                {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                {"to": [redis], "ports": [{"port": REDIS_PORT, "protocol": "TCP"}]},
            ],
        },
    }


def portfolio_risk(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> None:
    labels = hardening.labels(PORTFOLIO_RISK, COMPONENT)
    after = pulumi.ResourceOptions(depends_on=[ns["trading"]])
    k8s.apps.v1.Deployment(
        "portfolio-risk", metadata={"name": PORTFOLIO_RISK, "namespace": settings.trading_namespace, "labels": labels},
        spec={"replicas": REPLICAS, "selector": {"matchLabels": {"app.kubernetes.io/name": PORTFOLIO_RISK}},
              "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
              "template": {"metadata": {"labels": labels}, "spec": pod(settings)}},
        opts=after)
    policy = network_policy(settings)
    k8s.networking.v1.NetworkPolicy("netpol-portfolio-risk", metadata=policy["metadata"], spec=policy["spec"],
                                    opts=after)
    k8s.apiextensions.CustomResource(
        "portfolio-risk-podmonitor", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
        metadata={"name": PORTFOLIO_RISK, "namespace": settings.monitoring_namespace,
                  "labels": {**hardening.labels("tradeops-monitors", "monitoring"), **SELECT_LABEL}},
        spec={"namespaceSelector": {"matchNames": [settings.trading_namespace]},
              "selector": {"matchLabels": {"app.kubernetes.io/name": PORTFOLIO_RISK}},
              "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}]},
        opts=after)
