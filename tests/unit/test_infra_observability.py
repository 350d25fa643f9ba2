"""Pulumi program under mocks: the trace pipeline (OpenTelemetry Collector → Jaeger) and the log pipeline
(Fluent Bit → OpenSearch with an index template and retention) are deployed, wired to each other and to the
runtimes, hardened, and configured as the runtime's output needs (OTLP/HTTP, ECS JSON lines)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from infra import log_shipping, tracing
from infra.settings import from_mapping
from tests.unit.infra_harness import STACKS, built, selects

SETTINGS = from_mapping({"environment": "dev", "operatorImage": "o", "runtimeImage": "r", "toolsImage": "t"})


def workload(stack: str, kind: str, name: str) -> dict:
    return built(stack).one(f"kubernetes:apps/v1:{kind}", name).inputs


@pytest.mark.parametrize("stack", STACKS)
def test_the_collector_receives_otlp_and_forwards_to_jaeger(stack):
    (config_map,) = [r.inputs for r in built(stack).of_kind("ConfigMap") if r.name == tracing.COLLECTOR]
    config = yaml.safe_load(config_map["data"]["collector.yaml"])
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"][0] == "memory_limiter", "the limiter refuses data before anything else holds it"
    (exporter,) = pipeline["exporters"]
    assert config["exporters"][exporter]["endpoint"] == "jaeger.monitoring.svc:4317"
    jaeger = workload(stack, "StatefulSet", tracing.JAEGER)
    env = {e["name"]: e["value"] for e in jaeger["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SPAN_STORAGE_TYPE"] == "badger"
    assert env["BADGER_SPAN_STORE_TTL"] == "168h"
    assert env["COLLECTOR_OTLP_ENABLED"] == "true"
    assert jaeger["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "badger"


@pytest.mark.parametrize("stack", STACKS)
def test_runtimes_get_the_collector_endpoint_and_may_reach_it(stack):
    (secret,) = [r.inputs for r in built(stack).of_kind("Secret") if r.name == "runtime-credentials"]
    endpoint = secret["stringData"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == "http://otel-collector.monitoring.svc:4318"
    services = {r.inputs["metadata"]["name"]: r.inputs for r in built(stack).of_kind("Service")}
    collector = services[tracing.COLLECTOR]
    assert {p["port"] for p in collector["spec"]["ports"]} >= {4318}
    pod = workload(stack, "StatefulSet", tracing.COLLECTOR)["spec"]["template"]
    assert selects({"matchLabels": collector["spec"]["selector"]}, pod["metadata"]["labels"])
    (policy,) = [r.inputs for r in built(stack).of_kind("NetworkPolicy") if r.name == "netpol-runtime-traces"]
    assert policy["metadata"]["namespace"] == "trading"
    (rule,) = policy["spec"]["egress"]
    assert rule["ports"] == [{"port": 4318, "protocol": "TCP"}]
    assert selects(rule["to"][0]["podSelector"], pod["metadata"]["labels"])


@pytest.mark.parametrize("name", [tracing.COLLECTOR, tracing.JAEGER])
def test_the_trace_workloads_are_hardened(name):
    pod = workload("prod", "StatefulSet", name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]


def test_the_index_template_types_the_fields_logs_are_joined_on():
    template = log_shipping.index_template()
    assert template["index_patterns"] == ["tradeops-logs-*"]
    properties = template["template"]["mappings"]["properties"]
    for field in ("trace.id", "span.id", "labels.symbol", "labels.revision", "log.level", "service.name"):
        assert properties[field] == {"type": "keyword"}, field
    assert properties["@timestamp"] == {"type": "date"}
    assert template["template"]["settings"]["plugins.index_state_management.policy_id"] == "tradeops-logs"


@pytest.mark.parametrize("days", [1, 14, 90])
def test_the_retention_policy_deletes_indices_after_the_configured_days(days):
    policy = log_shipping.retention_policy(days)["policy"]
    states = {s["name"]: s for s in policy["states"]}
    assert states["hot"]["transitions"] == [{"state_name": "delete", "conditions": {"min_index_age": f"{days}d"}}]
    assert states["delete"]["actions"] == [{"delete": {}}]
    assert policy["ism_template"][0]["index_patterns"] == ["tradeops-logs-*"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_setup_job_applies_the_template_and_the_retention(stack):
    job = built(stack).one("kubernetes:batch/v1:Job", "opensearch-setup").inputs
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = container["args"][0]
    url = "http://opensearch.monitoring.svc:9200"
    assert f"until curl -sf {url}/_cluster/health" in script
    policy = re.search(rf"{url}/_plugins/_ism/policies/tradeops-logs -d '(.+?)'\n", script)
    template = re.search(rf"{url}/_index_template/tradeops-logs -d '(.+?)'\n", script)
    assert policy
    assert template
    assert json.loads(policy.group(1)) == log_shipping.retention_policy(14)
    assert json.loads(template.group(1)) == log_shipping.index_template()
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_fluent_bit_ships_the_trading_namespace_ecs_lines_to_opensearch(stack):
    (config_map,) = [r.inputs for r in built(stack).of_kind("ConfigMap") if r.name == log_shipping.FLUENT_BIT]
    config = config_map["data"]["fluent-bit.conf"]
    assert "Path              /var/log/containers/*_trading_*.log" in config
    assert "Merge_Log         On" in config, "the ECS JSON line becomes the record's fields"
    assert "Host              opensearch.monitoring.svc" in config
    assert "Logstash_Prefix   tradeops-logs" in config, "the indices the template and the retention cover"
    assert "Replace_Dots      Off" in config, "trace.id stays trace.id (the template's field)"
    assert "Retry_Limit       False" in config, "an OpenSearch outage is retried, not dropped"
    daemonset = workload(stack, "DaemonSet", log_shipping.FLUENT_BIT)
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/log"]["readOnly"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert daemonset["metadata"]["namespace"] == "monitoring", "the namespace that admits host access"


@pytest.mark.parametrize("stack", STACKS)
def test_fluent_bit_may_only_read_pod_metadata(stack):
    (role,) = [r.inputs for r in built(stack).of_kind("ClusterRole") if r.name == log_shipping.FLUENT_BIT]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "namespaces"],
                              "verbs": ["get", "list", "watch"]}]


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_monitoring_namespace_reaches_opensearch(stack):
    (policy,) = [r.inputs for r in built(stack).of_kind("NetworkPolicy") if r.name == "netpol-opensearch"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    release = built(stack).one("kubernetes:helm.sh/v3:Release", "opensearch").inputs
    assert release["values"]["persistence"]["enabled"] is True
    assert release["values"]["securityContext"]["runAsNonRoot"] is True


def test_retention_settings_must_be_positive():
    with pytest.raises(ValueError, match="logRetentionDays"):
        from_mapping({"environment": "dev", "operatorImage": "o", "runtimeImage": "r", "toolsImage": "t",
                      "logRetentionDays": "0"})


def test_the_collector_endpoint_follows_the_monitoring_namespace():
    assert tracing.collector_endpoint(SETTINGS) == "http://otel-collector.monitoring.svc:4318"
