"""NetworkPolicies: default-deny in the namespaces the program runs workloads in, then explicit allows
between the runtimes, the databases, the backup jobs, the report jobs, the audit recorder, the retraining jobs,
MLflow, the operator and Prometheus. (Each runtime's own
policy — ingress to its metrics port from Prometheus and the operator — is written by the operator.)"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening
from infra.backups import BACKUP_COMPONENT, CLUSTER_DRILL_COMPONENT, DRILL_COMPONENT
from infra.control_plane import METRICS_PORT as OPERATOR_METRICS_PORT
from infra.control_plane import OPERATOR
from infra.datastores import POSTGRES, POSTGRES_PORT, REDIS, REDIS_PORT
from infra.mlflow_tracking import MLFLOW, MLFLOW_PORT
from infra.monitoring import RUNTIME_APP
from infra.portfolio_risk import METRICS_PORT as PORTFOLIO_METRICS_PORT
from infra.portfolio_risk import PORTFOLIO_RISK
from infra.reports import RECORDER_COMPONENT, REPORTS_COMPONENT
from infra.settings import Settings

RUNTIME_METRICS_PORT = 9102  # trading_operator.naming.METRICS_PORT
RETRAINING_COMPONENT = "retraining"  # trading_operator.retraining.COMPONENT: the Jobs a regime change requests
KUBE_API_PORTS = (443, 6443)
NS_NAME_LABEL = "kubernetes.io/metadata.name"


def _in_namespace(namespace: str, **pod_labels: str) -> dict[str, Any]:
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: namespace}}}
    if pod_labels:
        peer["podSelector"] = {"matchLabels": pod_labels}
    return peer


def _ports(*ports: int) -> list[dict[str, Any]]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


# S3 (and STS for IRSA): outside the cluster, HTTPS only.
S3 = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
      "ports": [{"port": 443, "protocol": "TCP"}]}
DNS = {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
       "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every policy by resource name (Kubernetes-shaped: metadata and spec)."""
    trading, data = settings.trading_namespace, settings.data_namespace
    system, mon = settings.system_namespace, settings.monitoring_namespace
    runtimes = _in_namespace(trading, **{"app.kubernetes.io/name": RUNTIME_APP})
    portfolio_risk = _in_namespace(trading, **{"app.kubernetes.io/name": PORTFOLIO_RISK})
    jobs = [_in_namespace(data, **{"app.kubernetes.io/component": c}) for c in (BACKUP_COMPONENT, DRILL_COMPONENT)]
    prometheus = _in_namespace(mon, **{"app.kubernetes.io/name": "prometheus"})
    report_jobs = _in_namespace(data, **{"app.kubernetes.io/component": REPORTS_COMPONENT})
    recorder = _in_namespace(data, **{"app.kubernetes.io/component": RECORDER_COMPONENT})
    result: dict[str, dict[str, Any]] = {}
    for namespace in (trading, data, system):
        result[f"netpol-default-deny-{namespace}"] = {
            "metadata": {"name": "default-deny", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        }
    operator = _in_namespace(system, **{"app.kubernetes.io/name": OPERATOR})
    mlflow = _in_namespace(data, **{"app.kubernetes.io/name": MLFLOW})
    retraining = _in_namespace(trading, **{"app.kubernetes.io/component": RETRAINING_COMPONENT})
    for name, port, clients in ((POSTGRES, POSTGRES_PORT, [runtimes, *jobs, report_jobs, recorder, mlflow]),
                                (REDIS, REDIS_PORT, [runtimes, portfolio_risk, *jobs])):
        result[f"netpol-{name}"] = {
            "metadata": {"name": name, "namespace": data},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": clients, "ports": _ports(port)}],
                # PostgreSQL archives its WAL to the backup bucket; Redis talks to no one.
                "egress": [DNS, S3] if name == POSTGRES else [],
            },
        }
    result["netpol-backup-jobs"] = {
        "metadata": {"name": "backup-jobs", "namespace": data},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In",
                                                  "values": [BACKUP_COMPONENT, DRILL_COMPONENT]}]},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                DNS,
                {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": POSTGRES}}}],
                 "ports": _ports(POSTGRES_PORT)},
                {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": REDIS}}}],
                 "ports": _ports(REDIS_PORT)},
                S3,
            ],
        },
    }
    postgres = {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": POSTGRES}}}],
                "ports": _ports(POSTGRES_PORT)}
    result["netpol-report-jobs"] = {
        "metadata": {"name": "report-jobs", "namespace": data},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": REPORTS_COMPONENT}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            # The reports read Prometheus and the audit log; the cost report and the archive use the bucket.
            "egress": [DNS, postgres, {"to": [prometheus], "ports": _ports(9090)}, S3],
        },
    }
    result["netpol-audit-recorder"] = {
        "metadata": {"name": "audit-recorder", "namespace": data},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": RECORDER_COMPONENT}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [DNS, {"ports": _ports(*KUBE_API_PORTS)}, postgres],
        },
    }
    result["netpol-mlflow"] = {
        "metadata": {"name": MLFLOW, "namespace": data},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": MLFLOW}},
            "policyTypes": ["Ingress", "Egress"],
            # The operator resolves spec.model; the runtimes fetch their pinned version's artifact; a retraining
            # Job tracks its run and registers its version.
            "ingress": [{"from": [operator, runtimes, retraining], "ports": _ports(MLFLOW_PORT)}],
            "egress": [DNS, postgres, S3],  # its backend store, its artifacts
        },
    }
    result["netpol-retraining-jobs"] = {
        "metadata": {"name": "retraining-jobs", "namespace": trading},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": RETRAINING_COMPONENT}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [DNS, {"to": [mlflow], "ports": _ports(MLFLOW_PORT)}],  # its run, its registered version
        },
    }
    result["netpol-cluster-drills"] = {
        "metadata": {"name": "cluster-drills", "namespace": data},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": CLUSTER_DRILL_COMPONENT}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            # pod-kill and prometheus-loss: the API server (no pod labels to select) and Prometheus's API.
            "egress": [DNS, {"ports": _ports(*KUBE_API_PORTS)}, {"to": [prometheus], "ports": _ports(9090)}],
        },
    }
    result["netpol-operator"] = {
        "metadata": {"name": OPERATOR, "namespace": system},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": OPERATOR}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [prometheus], "ports": _ports(OPERATOR_METRICS_PORT)}],
            "egress": [
                DNS,
                {"ports": _ports(*KUBE_API_PORTS)},  # the API server has no pod labels to select
                {"to": [runtimes], "ports": _ports(RUNTIME_METRICS_PORT)},  # GET /positions when draining
                {"to": [mlflow], "ports": _ports(MLFLOW_PORT)},  # spec.model resolved in the model registry
            ],
        },
    }
    result["netpol-prometheus"] = {
        "metadata": {"name": "prometheus", "namespace": mon},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            "policyTypes": ["Ingress", "Egress"],
            # Grafana and Alertmanager query it (9090); it scrapes its own config reloader (8080); the cluster
            # drills and the report jobs read it.
            "ingress": [{"from": [_in_namespace(mon)], "ports": _ports(9090, 8080)},
                        {"from": [_in_namespace(data, **{"app.kubernetes.io/component": CLUSTER_DRILL_COMPONENT}),
                                  report_jobs],
                         "ports": _ports(9090)}],
            "egress": [
                DNS,
                {"to": [_in_namespace(mon)]},
                {"to": [runtimes], "ports": _ports(RUNTIME_METRICS_PORT)},
                {"to": [portfolio_risk], "ports": _ports(PORTFOLIO_METRICS_PORT)},
                {"to": [_in_namespace(system, **{"app.kubernetes.io/name": OPERATOR})],
                 "ports": _ports(OPERATOR_METRICS_PORT)},
                # The API server (service discovery), kubelets and node exporters live on node addresses.
                {"ports": _ports(*KUBE_API_PORTS, 10250, 9100)},
            ],
        },
    }
    return result


def network_policies(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> None:
    """Create every policy once its namespace exists."""
    for resource, policy in policies(settings).items():
        meta = policy["metadata"]
        k8s.networking.v1.NetworkPolicy(
            resource,
            metadata={**meta, "labels": hardening.labels(meta["name"], "network-policy")},
            spec=policy["spec"],
            opts=pulumi.ResourceOptions(depends_on=list(ns.values())))
