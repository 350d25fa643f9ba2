"""Distributed backtests in the cluster: the dask-kubernetes operator (itself a kopf operator; Helm chart
`dask-kubernetes-operator`, CRDs included) and the namespace its `DaskJob`s run in (backtest/daskjob.py
builds them; `opsctl backtest daskjob` prints one). The namespace enforces the `restricted` pod security
standard and admits traffic only from its own pods (the job and workers reaching their scheduler)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening
from infra.settings import Settings

CHART = "dask-kubernetes-operator"
CHART_REPO = "https://helm.dask.org"
OPERATOR_UID = 1000
"""The user the chart's image runs as (its own default)."""


@dataclass
class DaskOperator:
    namespace: k8s.core.v1.Namespace
    release: k8s.helm.v3.Release


def operator_values() -> dict[str, Any]:
    """Helm values: requests and limits, a non-root read-only container (an emptyDir for scratch)."""
    return {
        "podSecurityContext": hardening.pod_security(OPERATOR_UID),
        "securityContext": {**hardening.container_security(), "runAsUser": OPERATOR_UID},
        "resources": hardening.resources("100m", "128Mi", "500m", "256Mi"),
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def dask_operator(settings: Settings) -> DaskOperator:
    name = settings.backtest_namespace
    namespace = k8s.core.v1.Namespace(
        "ns-backtests",
        metadata={"name": name, "labels": {**hardening.labels(name, "backtests"),
                                           "pod-security.kubernetes.io/enforce": "restricted",
                                           "pod-security.kubernetes.io/warn": "restricted"}})
    release = k8s.helm.v3.Release(
        CHART, name=CHART, chart=CHART, version=settings.dask_operator_version, namespace=name,
        repository_opts={"repo": CHART_REPO}, values=operator_values(), atomic=True, timeout=600,
        opts=pulumi.ResourceOptions(depends_on=[namespace]))
    k8s.networking.v1.NetworkPolicy(
        "backtests-same-namespace",
        metadata={"name": "same-namespace-only", "namespace": name,
                  "labels": hardening.labels("same-namespace-only", "network-policy")},
        spec={"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
        opts=pulumi.ResourceOptions(depends_on=[namespace]))
    return DaskOperator(namespace, release)
