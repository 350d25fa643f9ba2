"""Logs in the cluster: a Fluent Bit DaemonSet tails the trading pods' container logs (ECS JSON lines, see
trading_runtime/logs.py), keeps the ECS fields as they are and ships them to OpenSearch (the project's Helm
chart, one node, on a volume) into daily `tradeops-logs-YYYY.MM.DD` indices. An index template maps the ECS
fields that are searched and joined on (`trace.id`, `span.id`, `labels.symbol`, `labels.revision`,
`log.level`, `service.name`) as keywords; an ISM policy deletes an index `log_retention_days` after it was
created. A Job applies both (idempotent PUTs, retried until OpenSearch answers).

Fluent Bit runs as root with the node's /var/log mounted read-only: container logs are root's files. It lives
in the monitoring namespace, the one that admits host access (node-exporter needs it too). OpenSearch's
security plugin is off; a NetworkPolicy admits only Fluent Bit, the setup Job and the monitoring namespace
(Grafana) to it."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening
from infra.settings import Settings

FLUENT_BIT = "fluent-bit"
FLUENT_BIT_IMAGE = "cr.fluentbit.io/fluent/fluent-bit:3.1.9"
OPENSEARCH = "opensearch"
OPENSEARCH_CHART = "opensearch"
OPENSEARCH_CHART_VERSION = "2.26.0"
OPENSEARCH_REPO = "https://opensearch-project.github.io/helm-charts"
OPENSEARCH_PORT = 9200
SETUP_IMAGE = "curlimages/curl:8.10.1"
INDEX_PREFIX = "tradeops-logs"
KEYWORDS = ("trace.id", "span.id", "labels.symbol", "labels.revision", "log.level", "service.name", "log.logger")
NS_NAME_LABEL = "kubernetes.io/metadata.name"


def opensearch_url(settings: Settings) -> str:
    return f"http://{OPENSEARCH}.{settings.monitoring_namespace}.svc:{OPENSEARCH_PORT}"


def index_template() -> dict[str, Any]:
    """`PUT _index_template/tradeops-logs`: ECS fields typed for search, the retention policy attached."""
    properties: dict[str, Any] = {"@timestamp": {"type": "date"}, "message": {"type": "text"}}
    for field in KEYWORDS:
        properties[field] = {"type": "keyword"}
    return {"index_patterns": [f"{INDEX_PREFIX}-*"], "priority": 100,
            "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                      "plugins.index_state_management.policy_id": INDEX_PREFIX},
                         "mappings": {"dynamic": True, "properties": properties}}}


def retention_policy(days: int) -> dict[str, Any]:
    """`PUT _plugins/_ism/policies/tradeops-logs`: an index is deleted `days` after it was created."""
    return {"policy": {
        "description": f"tradeops logs: deleted after {days} days",
        "default_state": "hot",
        "states": [
            {"name": "hot", "actions": [],
             "transitions": [{"state_name": "delete", "conditions": {"min_index_age": f"{days}d"}}]},
            {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
        ],
        "ism_template": [{"index_patterns": [f"{INDEX_PREFIX}-*"], "priority": 100}],
    }}


def fluent_bit_config(settings: Settings) -> str:
    """Tail the trading namespace's containers, add the pod's Kubernetes metadata, lift the ECS JSON line
    into the record (keys as they are), ship to OpenSearch with retries."""
    return f"""[SERVICE]
    Flush             5
    Log_Level         warn
    HTTP_Server       On
    HTTP_Port         2020
    Health_Check      On
    storage.path      /var/fluent-bit/state/buffer
    Parsers_File      /fluent-bit/etc/parsers.conf

[INPUT]
    Name              tail
    Path              /var/log/containers/*_{settings.trading_namespace}_*.log
    multiline.parser  cri, docker
    Tag               kube.*
    DB                /var/fluent-bit/state/tail.db
    Mem_Buf_Limit     32MB
    storage.type      filesystem
    Skip_Long_Lines   On

[FILTER]
    Name              kubernetes
    Match             kube.*
    Merge_Log         On
    Keep_Log          Off
    Labels            On
    Annotations       Off

[OUTPUT]
    Name              opensearch
    Match             kube.*
    Host              {OPENSEARCH}.{settings.monitoring_namespace}.svc
    Port              {OPENSEARCH_PORT}
    Logstash_Format   On
    Logstash_Prefix   {INDEX_PREFIX}
    Replace_Dots      Off
    Suppress_Type_Name On
    Trace_Error       On
    Retry_Limit       False
"""


def fluent_bit_pod(settings: Settings) -> dict[str, Any]:
    return {
        "serviceAccountName": FLUENT_BIT,
        # Reads root's container logs; writes only its position database and buffer to the node.
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{
            "name": FLUENT_BIT, "image": FLUENT_BIT_IMAGE,
            "args": ["--config=/fluent-bit/etc/conf/fluent-bit.conf"],
            "ports": [{"name": "http", "containerPort": 2020, "protocol": "TCP"}],
            "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 20},
            "readinessProbe": {"httpGet": {"path": "/api/v1/health", "port": "http"}, "periodSeconds": 10},
            "resources": hardening.resources("50m", "64Mi", "500m", "256Mi"),
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}},
            "volumeMounts": [
                {"name": "config", "mountPath": "/fluent-bit/etc/conf", "readOnly": True},
                {"name": "varlog", "mountPath": "/var/log", "readOnly": True},
                {"name": "state", "mountPath": "/var/fluent-bit/state"},
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": FLUENT_BIT}},
            {"name": "varlog", "hostPath": {"path": "/var/log", "type": "Directory"}},
            {"name": "state", "hostPath": {"path": "/var/lib/fluent-bit", "type": "DirectoryOrCreate"}},
        ],
    }


def setup_script(settings: Settings) -> str:
    """The Job's shell: wait for OpenSearch, then PUT the retention policy and the index template."""
    url = opensearch_url(settings)
    put = 'curl -sf -X PUT -H "Content-Type: application/json"'
    policy = json.dumps(retention_policy(settings.log_retention_days))
    template = json.dumps(index_template())
    return (f"until curl -sf {url}/_cluster/health; do sleep 5; done\n"
            # The policy may exist: a PUT of an existing one needs its seq_no, so it is replaced via delete.
            f"curl -s -X DELETE {url}/_plugins/_ism/policies/{INDEX_PREFIX} >/dev/null\n"
            f"{put} {url}/_plugins/_ism/policies/{INDEX_PREFIX} -d '{policy}'\n"
            f"{put} {url}/_index_template/{INDEX_PREFIX} -d '{template}'\n")


def opensearch_values(settings: Settings) -> dict[str, Any]:
    persistence: dict[str, Any] = {"enabled": True, "size": settings.log_storage}
    if settings.storage_class:
        persistence["storageClass"] = settings.storage_class
    return {
        "fullnameOverride": OPENSEARCH, "singleNode": True, "replicas": 1,
        "config": {"opensearch.yml": "plugins.security.disabled: true\n"},
        "extraEnvs": [{"name": "DISABLE_INSTALL_DEMO_CONFIG", "value": "true"}],
        "persistence": persistence,
        "resources": hardening.resources("500m", "2Gi", "2", "3Gi"),
        "opensearchJavaOpts": "-Xms1g -Xmx1g",
        "podSecurityContext": {"fsGroup": 1000, "runAsUser": 1000, "runAsNonRoot": True},
        "securityContext": {"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True, "runAsUser": 1000,
                            "allowPrivilegeEscalation": False},
        "sysctlInit": {"enabled": False},
    }


def opensearch_ingress(settings: Settings) -> dict[str, Any]:
    """Only the monitoring namespace (Fluent Bit, the setup Job, Grafana) reaches OpenSearch."""
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": OPENSEARCH}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                NS_NAME_LABEL: settings.monitoring_namespace}}}],
                "ports": [{"port": OPENSEARCH_PORT, "protocol": "TCP"}]}]}


def log_shipping(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> str:
    """OpenSearch, its template and retention, Fluent Bit; returns OpenSearch's URL."""
    mon = settings.monitoring_namespace
    after = pulumi.ResourceOptions(depends_on=[ns["monitoring"]])
    release = k8s.helm.v3.Release(
        OPENSEARCH, name=OPENSEARCH, chart=OPENSEARCH_CHART, version=OPENSEARCH_CHART_VERSION, namespace=mon,
        repository_opts={"repo": OPENSEARCH_REPO}, values=opensearch_values(settings), atomic=True, timeout=900,
        opts=after)
    k8s.networking.v1.NetworkPolicy(
        "netpol-opensearch", metadata={"name": OPENSEARCH, "namespace": mon,
                                       "labels": hardening.labels(OPENSEARCH, "network-policy")},
        spec=hardening.raw(opensearch_ingress(settings)), opts=after)
    k8s.batch.v1.Job(
        "opensearch-setup",
        metadata={"name": "opensearch-setup", "namespace": mon, "labels": hardening.labels("opensearch-setup", "logs")},
        spec=hardening.raw({"backoffLimit": 6, "ttlSecondsAfterFinished": 3600, "template": {
            "metadata": {"labels": hardening.labels("opensearch-setup", "logs")},
            "spec": {"restartPolicy": "OnFailure", "automountServiceAccountToken": False,
                     "securityContext": hardening.pod_security(100),
                     "containers": [{"name": "setup", "image": SETUP_IMAGE, "command": ["sh", "-ec"],
                                     "args": [setup_script(settings)],
                                     "resources": hardening.resources("10m", "16Mi", "100m", "64Mi"),
                                     "securityContext": hardening.container_security()}]}}}),
        opts=pulumi.ResourceOptions(depends_on=[release]))
    labels = hardening.labels(FLUENT_BIT, "logs")
    account = k8s.core.v1.ServiceAccount(
        FLUENT_BIT, metadata={"name": FLUENT_BIT, "namespace": mon, "labels": labels}, opts=after)
    # The kubernetes filter reads pod metadata: get/list/watch pods and namespaces, nothing else.
    role = k8s.rbac.v1.ClusterRole(
        FLUENT_BIT, metadata={"name": FLUENT_BIT, "labels": labels},
        rules=hardening.raw([{"apiGroups": [""], "resources": ["pods", "namespaces"],
                              "verbs": ["get", "list", "watch"]}]))
    k8s.rbac.v1.ClusterRoleBinding(
        FLUENT_BIT, metadata={"name": FLUENT_BIT, "labels": labels},
        role_ref=hardening.raw({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": FLUENT_BIT}),
        subjects=hardening.raw([{"kind": "ServiceAccount", "name": FLUENT_BIT, "namespace": mon}]),
        opts=pulumi.ResourceOptions(depends_on=[role, account]))
    config = k8s.core.v1.ConfigMap(
        FLUENT_BIT, metadata={"name": FLUENT_BIT, "namespace": mon, "labels": labels},
        data={"fluent-bit.conf": fluent_bit_config(settings)}, opts=after)
    selector = {"app.kubernetes.io/name": FLUENT_BIT}
    k8s.apps.v1.DaemonSet(
        FLUENT_BIT, metadata={"name": FLUENT_BIT, "namespace": mon, "labels": labels},
        spec=hardening.raw({"selector": {"matchLabels": selector},
                            "updateStrategy": {"type": "RollingUpdate"},
                            "template": {"metadata": {"labels": labels}, "spec": fluent_bit_pod(settings)}}),
        opts=pulumi.ResourceOptions(depends_on=[config, account, release]))
    return opensearch_url(settings)
