"""The Prometheus stack (kube-prometheus-stack as a Helm release), what it scrapes (a ServiceMonitor for
the runtimes' metrics Services, a PodMonitor for the operator), the PrometheusRules generated from
policies/ (SLOs and cost) and the Grafana dashboards (ConfigMaps the Grafana sidecar loads)."""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import alerting, dashboards, hardening
from infra.control_plane import OPERATOR, PROMETHEUS_RELEASE, load_documents, prometheus_url
from infra.settings import COST_RULES_FILE, RULES_FILE, Settings

RELEASE = PROMETHEUS_RELEASE
CHART_REPO = "https://prometheus-community.github.io/helm-charts"
SELECT_LABEL = {"app.kubernetes.io/part-of": hardening.PART_OF}
"""Label on every ServiceMonitor, PodMonitor and PrometheusRule of ours; the stack selects on it."""
DASHBOARD_LABEL = "grafana_dashboard"
GRAFANA_ADMIN_SECRET = "grafana-admin"
RUNTIME_APP = "trading-runtime"  # trading_operator.naming.APP_NAME
RUNTIME_METRICS_PORT = "metrics"  # the port name of the runtimes' metrics Service (9102)
TARGET_LABELS = {"symbol": "trading.tradeops.io/symbol", "revision": "trading.tradeops.io/revision"}
"""Target labels of a runtime and the pod labels they come from (trading_operator.naming)."""
KUBE_POD_LABELS = [f"pods=[{TARGET_LABELS['symbol']}]"]
"""Pod labels kube-state-metrics exports on `kube_pod_labels`: the cost rules join pods to symbols on it."""
PROMETHEUS_UID = 1000
GRAFANA_UID = 472
NOBODY = 65534


@dataclass
class Monitoring:
    release: k8s.helm.v3.Release
    prometheus_url: str
    grafana_url: str


def _component(cpu: str, memory: str, cpu_limit: str, memory_limit: str, uid: int) -> dict[str, Any]:
    return {"resources": hardening.resources(cpu, memory, cpu_limit, memory_limit),
            "securityContext": hardening.pod_security(uid)}


def stack_values(settings: Settings) -> dict[str, Any]:
    """Helm values: every component with requests, limits and a non-root user; Prometheus selects our
    monitors and rules by label in any namespace; Grafana's sidecar loads labelled dashboard ConfigMaps."""
    storage: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                               "resources": {"requests": {"storage": settings.prometheus_storage}}}
    if settings.storage_class:
        storage["storageClassName"] = settings.storage_class
    selector = {"matchLabels": SELECT_LABEL}
    alertmanager = alerting.alertmanager_values()
    return {
        "fullnameOverride": RELEASE,
        "prometheus": {"prometheusSpec": {
            **_component("500m", "2Gi", "2", "4Gi", PROMETHEUS_UID),
            "retention": settings.prometheus_retention,
            "storageSpec": {"volumeClaimTemplate": {"spec": storage}},
            "ruleSelectorNilUsesHelmValues": False,
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelector": selector,
            "serviceMonitorSelector": {},
            "podMonitorSelector": {},
            "ruleNamespaceSelector": {},
            "serviceMonitorNamespaceSelector": {},
            "podMonitorNamespaceSelector": {},
        }},
        "alertmanager": {**alertmanager, "alertmanagerSpec": {
            **_component("50m", "64Mi", "200m", "256Mi", NOBODY), **alertmanager["alertmanagerSpec"]}},
        "prometheusOperator": {
            **_component("100m", "128Mi", "500m", "512Mi", NOBODY),
            "admissionWebhooks": {"patch": {"resources": hardening.resources("50m", "32Mi", "200m", "128Mi")}},
            "prometheusConfigReloader": {"resources": hardening.resources("10m", "32Mi", "100m", "64Mi")},
        },
        "kube-state-metrics": {**_component("50m", "64Mi", "200m", "256Mi", NOBODY),
                               "metricLabelsAllowlist": KUBE_POD_LABELS},
        "prometheus-node-exporter": _component("50m", "32Mi", "200m", "128Mi", NOBODY),
        "grafana": {
            **_component("100m", "128Mi", "500m", "512Mi", GRAFANA_UID),
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user",
                      "passwordKey": "admin-password"},
            "sidecar": {
                "resources": hardening.resources("20m", "64Mi", "200m", "128Mi"),
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1",
                               "searchNamespace": "ALL", "folderAnnotation": "grafana_folder"},
            },
        },
    }


def pod_label_source(label: str) -> str:
    """The discovery meta label holding a pod label (Prometheus replaces what a label name cannot hold by `_`)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def runtime_monitor_spec(settings: Settings) -> dict[str, Any]:
    """The runtimes' ServiceMonitor. Every target gets `symbol` and `revision` from the pod's labels, so the
    series Prometheus makes itself (`up`) carry them too: the availability SLI (`up{symbol!=""}`), the alert
    on an absent runtime and the rollout analysis (`up{namespace=..., symbol=..., revision=...}`) select on
    them. The runtime labels its own series with `symbol`; honouring its labels keeps one `symbol` label
    rather than an `exported_symbol` copy (both values are the same)."""
    relabelings = [{"sourceLabels": [pod_label_source(source)], "targetLabel": target, "action": "replace"}
                   for target, source in TARGET_LABELS.items()]
    return {
        "namespaceSelector": {"matchNames": [settings.trading_namespace]},
        "selector": {"matchLabels": {"app.kubernetes.io/name": RUNTIME_APP}},
        "endpoints": [{"port": RUNTIME_METRICS_PORT, "path": "/metrics", "interval": "15s", "honorLabels": True,
                       "relabelings": relabelings}],
    }


def _seconds(duration: str) -> int:
    """A Prometheus duration (`30d`, `2w`, `720h`, `1y`) in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
    parts = re.findall(r"([0-9]+)([smhdwy])", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * units[u] for n, u in parts)


def longest_rule_range(rule: dict[str, Any]) -> str:
    """The longest range any rule of a PrometheusRule reads back (`[30d]`)."""
    ranges: list[str] = [r for group in rule["spec"]["groups"] for item in group["rules"]
                         for r in re.findall(r"\[([0-9]+[smhdwy])\]", item["expr"])]
    return max(ranges, key=_seconds)


def check_retention(settings: Settings, rule: dict[str, Any]) -> None:
    """Refuse a retention shorter than the rules' longest range: a 30-day budget over 15 days of history is
    a 15-day figure that says it is a 30-day one."""
    longest = longest_rule_range(rule)
    if _seconds(settings.prometheus_retention) < _seconds(longest):
        raise ValueError(f"prometheusRetention {settings.prometheus_retention} is shorter than the {longest} the "
                         f"SLO rules read back (the error budget's period): keep at least {longest}")


def prometheus_rule(settings: Settings, path: pathlib.Path = RULES_FILE) -> dict[str, Any]:
    """A generated PrometheusRule (the SLO rules, or the cost rules), placed in the monitoring namespace with
    the label the stack selects."""
    rule = load_documents(path)[0]
    if rule.get("kind") != "PrometheusRule":
        raise ValueError(f"{path} holds a {rule.get('kind')}, not a PrometheusRule")
    check_retention(settings, rule)
    metadata = rule["metadata"]
    return {
        **rule,
        "metadata": {"name": metadata["name"], "namespace": settings.monitoring_namespace,
                     "labels": {**metadata.get("labels", {}), **SELECT_LABEL}},
    }


def monitoring(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> Monitoring:
    """The stack, our monitors, the rules and the dashboards."""
    mon_ns = settings.monitoring_namespace
    password = random.RandomPassword("grafana-admin-password", length=32, special=False)
    admin = k8s.core.v1.Secret(
        "grafana-admin",
        metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": mon_ns,
                  "labels": hardening.labels("grafana", "credentials")},
        type="Opaque",
        string_data={"admin-user": "admin", "admin-password": password.result},
        opts=pulumi.ResourceOptions(depends_on=[ns["monitoring"]], additional_secret_outputs=["stringData", "data"]))
    release = k8s.helm.v3.Release(
        "kube-prometheus-stack",
        name=RELEASE,
        chart="kube-prometheus-stack",
        version=settings.prometheus_stack_version,
        namespace=mon_ns,
        repository_opts={"repo": CHART_REPO},
        values=stack_values(settings),
        atomic=True,
        timeout=900,
        opts=pulumi.ResourceOptions(depends_on=[ns["monitoring"], admin]))
    after_stack = pulumi.ResourceOptions(depends_on=[release])

    monitor_labels = {**hardening.labels("tradeops-monitors", "monitoring"), **SELECT_LABEL}
    k8s.apiextensions.CustomResource(
        "runtime-servicemonitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
        metadata={"name": "trading-runtimes", "namespace": mon_ns, "labels": monitor_labels},
        spec=runtime_monitor_spec(settings), opts=after_stack)
    k8s.apiextensions.CustomResource(
        "operator-podmonitor", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
        metadata={"name": OPERATOR, "namespace": mon_ns, "labels": monitor_labels},
        spec={
            "namespaceSelector": {"matchNames": [settings.system_namespace]},
            "selector": {"matchLabels": {"app.kubernetes.io/name": OPERATOR}},
            # The operator's series name the symbol's namespace: it must win over the operator pod's own.
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s", "honorLabels": True}],
        }, opts=after_stack)

    for resource, path in (("tradeops-rules", RULES_FILE), ("tradeops-cost-rules", COST_RULES_FILE)):
        rule = prometheus_rule(settings, path)
        k8s.apiextensions.CustomResource(
            resource, api_version=rule["apiVersion"], kind=rule["kind"], metadata=rule["metadata"],
            spec=rule["spec"], opts=after_stack)

    for file_name, board in dashboards.all_dashboards().items():
        k8s.core.v1.ConfigMap(
            f"dashboard-{board['uid']}",
            metadata={"name": board["uid"], "namespace": mon_ns,
                      "labels": {**hardening.labels("grafana-dashboards", "monitoring"), DASHBOARD_LABEL: "1"},
                      "annotations": {"grafana_folder": "tradeops"}},
            data={file_name: json.dumps(board, sort_keys=True)},
            opts=pulumi.ResourceOptions(depends_on=[ns["monitoring"]]))

    base = f"{mon_ns}.svc.cluster.local"
    return Monitoring(release=release, prometheus_url=prometheus_url(settings),
                      grafana_url=f"http://{RELEASE}-grafana.{base}:80")
