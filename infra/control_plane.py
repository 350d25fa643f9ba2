"""The operator's side: namespaces, the TradingSymbol CRD (the generated file), kopf's peering, the
least-privilege RBAC (the rules of `deploy/operator/operator.yaml`, tested against what the operator
calls) and the HA operator Deployment with its PodDisruptionBudget."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import hardening
from infra.settings import CRD_FILE, FLEET_CRD_FILE, OPERATOR_FILE, Settings

OPERATOR = "tradeops-operator"
OPERATOR_UID = 10001
HEALTH_PORT = 8080
ALERTS_PORT = 9104
"""Port of the operator's Alertmanager webhook (`infra/alerting.py` puts a Service in front of it)."""
METRICS_PORT = 9103
"""Port the operator's rollout metrics are scraped on (the PodMonitor selects it by name)."""


def load_documents(path: pathlib.Path) -> list[dict[str, Any]]:
    """The YAML documents of a file, empty ones dropped."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def document(path: pathlib.Path, kind: str, name: str | None = None) -> dict[str, Any]:
    """The one document of this kind (and name) in a file."""
    found = [d for d in load_documents(path) if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    if len(found) != 1:
        raise ValueError(f"{path}: expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def cluster_role_rules() -> list[dict[str, Any]]:
    """The operator's ClusterRole rules: one source of truth with the plain-kubectl install."""
    rules: list[dict[str, Any]] = document(OPERATOR_FILE, "ClusterRole")["rules"]
    return rules


PROMETHEUS_RELEASE = "kps"
"""The kube-prometheus-stack Helm release name (monitoring.py installs it under this name)."""


def prometheus_url(settings: Settings) -> str:
    return f"http://{PROMETHEUS_RELEASE}-prometheus.{settings.monitoring_namespace}.svc.cluster.local:9090"


def mlflow_tracking_uri(settings: Settings) -> str:
    """The MLflow server infra/mlflow_tracking.py deploys (its Service in the data namespace)."""
    return f"http://mlflow.{settings.data_namespace}.svc.cluster.local:5000"


def operator_pod(settings: Settings) -> Any:
    """The operator's pod template spec (Kubernetes-shaped, camelCase as in YAML)."""
    return {
        "serviceAccountName": OPERATOR,
        "terminationGracePeriodSeconds": 30,
        "securityContext": hardening.pod_security(OPERATOR_UID),
        # Spread the replicas so one node going away does not take the operator with it.
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": OPERATOR}},
        }],
        "containers": [{
            "name": "operator",
            "image": settings.operator_image,
            "args": ["--peering", "tradeops", "--liveness", f"http://0.0.0.0:{HEALTH_PORT}/healthz"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "TRADEOPS_PEERING_LIFETIME", "value": "15"},
                {"name": "TRADEOPS_METRICS_PORT", "value": str(METRICS_PORT)},
                {"name": "TRADEOPS_ALERT_WEBHOOK_PORT", "value": str(ALERTS_PORT)},
                # Analysis reads SLOs from the stack's Prometheus (the service monitoring.py names).
                {"name": "TRADEOPS_PROMETHEUS_URL", "value": prometheus_url(settings)},
                # spec.model is resolved in the stack's model registry (infra/mlflow_tracking.py).
                {"name": "MLFLOW_TRACKING_URI", "value": mlflow_tracking_uri(settings)},
            ],
            "ports": [
                {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
                {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
                {"name": "alerts", "containerPort": ALERTS_PORT, "protocol": "TCP"},
            ],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10},
            "resources": hardening.resources("100m", "128Mi", "500m", "256Mi"),
            "securityContext": hardening.container_security(),
        }],
    }


@dataclass
class ControlPlane:
    namespaces: dict[str, k8s.core.v1.Namespace]
    crd: k8s.apiextensions.v1.CustomResourceDefinition
    deployment: k8s.apps.v1.Deployment


def namespaces(settings: Settings) -> dict[str, k8s.core.v1.Namespace]:
    """The namespaces the program owns, all enforcing the `restricted` pod security standard."""
    result = {}
    for role, name in (("system", settings.system_namespace), ("trading", settings.trading_namespace),
                       ("data", settings.data_namespace), ("monitoring", settings.monitoring_namespace)):
        # node-exporter (part of the Prometheus stack) needs host access: monitoring only warns.
        level = "privileged" if role == "monitoring" else "restricted"
        result[role] = k8s.core.v1.Namespace(
            f"ns-{role}",
            metadata={"name": name, "labels": {
                **hardening.labels(name, role),
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/warn": "restricted",
            }},
        )
    return result


def control_plane(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> ControlPlane:
    """The CRD, peering, RBAC and the operator Deployment."""
    system = settings.system_namespace
    crd_doc = load_documents(CRD_FILE)[0]
    crd = k8s.apiextensions.v1.CustomResourceDefinition(
        "crd-tradingsymbols", metadata=crd_doc["metadata"], spec=crd_doc["spec"])
    fleet_doc = load_documents(FLEET_CRD_FILE)[0]
    fleet_crd = k8s.apiextensions.v1.CustomResourceDefinition(
        "crd-fleetrollouts", metadata=fleet_doc["metadata"], spec=fleet_doc["spec"])

    peering_crd_doc = document(OPERATOR_FILE, "CustomResourceDefinition")
    peering_crd = k8s.apiextensions.v1.CustomResourceDefinition(
        "crd-kopf-peering", metadata=peering_crd_doc["metadata"], spec=peering_crd_doc["spec"])
    peering_doc = document(OPERATOR_FILE, "ClusterKopfPeering")
    k8s.apiextensions.CustomResource(
        "kopf-peering", api_version=peering_doc["apiVersion"], kind=peering_doc["kind"],
        metadata=peering_doc["metadata"], opts=pulumi.ResourceOptions(depends_on=[peering_crd]))

    operator_labels = hardening.labels(OPERATOR, "operator")
    account = k8s.core.v1.ServiceAccount(
        "operator-sa", metadata={"name": OPERATOR, "namespace": system, "labels": operator_labels},
        opts=pulumi.ResourceOptions(depends_on=[ns["system"]]))
    role = k8s.rbac.v1.ClusterRole(
        "operator-role", metadata=hardening.raw({"name": OPERATOR, "labels": operator_labels}),
        rules=hardening.raw(cluster_role_rules()))
    k8s.rbac.v1.ClusterRoleBinding(
        "operator-binding",
        metadata=hardening.raw({"name": OPERATOR, "labels": operator_labels}),
        role_ref=hardening.raw({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR}),
        subjects=hardening.raw([{"kind": "ServiceAccount", "name": OPERATOR, "namespace": system}]),
        opts=pulumi.ResourceOptions(depends_on=[role, account]))

    selector = {"app.kubernetes.io/name": OPERATOR}
    deployment = k8s.apps.v1.Deployment(
        "operator",
        metadata=hardening.raw({"name": OPERATOR, "namespace": system, "labels": operator_labels}),
        spec=hardening.raw({
            "replicas": settings.operator_replicas,
            # A new replica starts with a higher peering priority and takes over; the old one pauses, then exits.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": operator_labels}, "spec": operator_pod(settings)},
        }),
        opts=pulumi.ResourceOptions(depends_on=[crd, fleet_crd, peering_crd, account]))
    k8s.policy.v1.PodDisruptionBudget(
        "operator-pdb",
        metadata=hardening.raw({"name": OPERATOR, "namespace": system, "labels": operator_labels}),
        spec=hardening.raw({"maxUnavailable": 1, "selector": {"matchLabels": selector}}),
        opts=pulumi.ResourceOptions(depends_on=[ns["system"]]))
    return ControlPlane(namespaces=ns, crd=crd, deployment=deployment)
