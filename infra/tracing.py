"""Traces in the cluster: an OpenTelemetry Collector (OTLP in, batched and memory-limited, OTLP out) in
front of Jaeger (all-in-one, Badger on a volume, spans kept `trace_retention_hours`). The runtimes export to
the collector (`OTEL_EXPORTER_OTLP_ENDPOINT` in their connection Secret); a NetworkPolicy lets them, and
nothing else from the trading namespace, reach it.

The runtime already decides what to keep (every failed, slow or logged decision, 1 % of the rest: see
docs/observability.md), so the collector does not sample again: it batches, limits its memory and forwards.
Jaeger's UI (16686) is reached with `kubectl port-forward`; it has no Ingress."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import hardening
from infra.settings import Settings

COLLECTOR = "otel-collector"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.111.0"
JAEGER = "jaeger"
JAEGER_IMAGE = "jaegertracing/all-in-one:1.62.0"
OTLP_GRPC, OTLP_HTTP, JAEGER_UI = 4317, 4318, 16686
COLLECTOR_UID = 10001
JAEGER_UID = 10001
NS_NAME_LABEL = "kubernetes.io/metadata.name"


def collector_endpoint(settings: Settings) -> str:
    """The OTLP/HTTP base URL the runtimes export to (the SDK appends /v1/traces)."""
    return f"http://{COLLECTOR}.{settings.monitoring_namespace}.svc:{OTLP_HTTP}"


def collector_config(settings: Settings) -> dict[str, Any]:
    """The collector's pipeline: OTLP in, memory limiter first (it refuses data before it runs out), batch,
    OTLP to Jaeger."""
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC}"},
                                             "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP}"}}}},
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
            "batch": {"send_batch_size": 1024, "timeout": "5s"},
        },
        "exporters": {"otlp/jaeger": {"endpoint": f"{JAEGER}.{settings.monitoring_namespace}.svc:{OTLP_GRPC}",
                                      "tls": {"insecure": True},
                                      "sending_queue": {"queue_size": 5000},
                                      "retry_on_failure": {"enabled": True, "max_elapsed_time": "300s"}}},
        "extensions": {"health_check": {"endpoint": "0.0.0.0:13133"}},
        "service": {"extensions": ["health_check"],
                    "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"],
                                             "exporters": ["otlp/jaeger"]}}},
    }


def _container(name: str, image: str, args: list[str], ports: dict[str, int], probe_port: int, probe_path: str,
               resources: dict[str, Any], mounts: list[dict[str, Any]], env: list[dict[str, Any]] | None = None) \
        -> dict[str, Any]:
    return {
        "name": name, "image": image, "args": args, "env": env or [],
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"} for port_name, port in ports.items()],
        "readinessProbe": {"httpGet": {"path": probe_path, "port": probe_port}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": probe_path, "port": probe_port}, "periodSeconds": 20},
        "resources": resources,
        "securityContext": hardening.container_security(),
        "volumeMounts": mounts,
    }


def collector_pod(settings: Settings) -> dict[str, Any]:
    return {
        "securityContext": hardening.pod_security(COLLECTOR_UID),
        "automountServiceAccountToken": False,
        "containers": [_container(
            COLLECTOR, COLLECTOR_IMAGE, ["--config=/conf/collector.yaml"],
            {"otlp-grpc": OTLP_GRPC, "otlp-http": OTLP_HTTP, "health": 13133}, 13133, "/",
            hardening.resources("100m", "128Mi", "1", "512Mi"),
            [{"name": "config", "mountPath": "/conf", "readOnly": True}],
            # The memory limiter's percentages are of this limit.
            [{"name": "GOMEMLIMIT", "value": "400MiB"}])],
        "volumes": [{"name": "config", "configMap": {"name": COLLECTOR}}],
    }


def jaeger_pod(settings: Settings) -> dict[str, Any]:
    env = [{"name": "SPAN_STORAGE_TYPE", "value": "badger"},
           {"name": "BADGER_EPHEMERAL", "value": "false"},
           {"name": "BADGER_DIRECTORY_VALUE", "value": "/badger/data"},
           {"name": "BADGER_DIRECTORY_KEY", "value": "/badger/key"},
           {"name": "BADGER_SPAN_STORE_TTL", "value": f"{settings.trace_retention_hours}h"},
           {"name": "COLLECTOR_OTLP_ENABLED", "value": "true"}]
    return {
        "securityContext": hardening.pod_security(JAEGER_UID),
        "automountServiceAccountToken": False,
        "containers": [_container(
            JAEGER, JAEGER_IMAGE, [], {"otlp-grpc": OTLP_GRPC, "ui": JAEGER_UI, "admin": 14269}, 14269, "/",
            hardening.resources("100m", "256Mi", "1", "1Gi"),
            [{"name": "badger", "mountPath": "/badger"}, {"name": "tmp", "mountPath": "/tmp"}], env)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }


def runtime_egress_policy(settings: Settings) -> dict[str, Any]:
    """Runtimes (and the operator) may send OTLP/HTTP to the collector; the trading namespace denies the rest."""
    collector = {"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: settings.monitoring_namespace}},
                 "podSelector": {"matchLabels": {"app.kubernetes.io/name": COLLECTOR}}}
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "trading-runtime"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [collector], "ports": [{"port": OTLP_HTTP, "protocol": "TCP"}]}]}


def tracing(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> str:
    """The collector, Jaeger and the policy; returns the endpoint the runtimes export to."""
    mon = settings.monitoring_namespace
    after = pulumi.ResourceOptions(depends_on=[ns["monitoring"]])
    k8s.core.v1.ConfigMap(
        COLLECTOR, metadata={"name": COLLECTOR, "namespace": mon, "labels": hardening.labels(COLLECTOR, "tracing")},
        data={"collector.yaml": yaml.safe_dump(collector_config(settings), sort_keys=False)}, opts=after)
    for name, pod, ports in ((COLLECTOR, collector_pod(settings), {"otlp-grpc": OTLP_GRPC, "otlp-http": OTLP_HTTP}),
                             (JAEGER, jaeger_pod(settings), {"otlp-grpc": OTLP_GRPC, "ui": JAEGER_UI})):
        labels = hardening.labels(name, "tracing")
        selector = {"app.kubernetes.io/name": name}
        k8s.core.v1.Service(
            f"{name}-service", metadata={"name": name, "namespace": mon, "labels": labels},
            spec=hardening.raw({"selector": selector, "ports": [
                {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
                for port_name, port in ports.items()]}), opts=after)
        spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": selector}, "serviceName": name,
                                "template": {"metadata": {"labels": labels}, "spec": pod}}
        if name == JAEGER:  # its store lives on a volume of its own
            claim = {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": settings.trace_storage}}}
            if settings.storage_class:
                claim["storageClassName"] = settings.storage_class
            spec["volumeClaimTemplates"] = [{"metadata": {"name": "badger"}, "spec": claim}]
        k8s.apps.v1.StatefulSet(name, metadata=hardening.raw({"name": name, "namespace": mon, "labels": labels}),
                                spec=hardening.raw(spec), opts=after)
    k8s.networking.v1.NetworkPolicy(
        "netpol-runtime-traces",
        metadata={"name": "runtime-traces", "namespace": settings.trading_namespace,
                  "labels": hardening.labels("runtime-traces", "network-policy")},
        spec=hardening.raw(runtime_egress_policy(settings)),
        opts=pulumi.ResourceOptions(depends_on=[ns["trading"]]))
    return collector_endpoint(settings)
