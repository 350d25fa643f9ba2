"""Pulumi program under mocks: the generated rules and the dashboards reach the Prometheus stack, and
its monitors select what the operator actually creates."""

from __future__ import annotations

import json

import pytest
import yaml

from infra import dashboards
from tests.unit.infra_harness import ROOT, STACKS, built, selects
from trading_operator import builders, naming
from trading_operator.api import TradingSymbolSpec

RELEASE = "kubernetes:helm.sh/v3:Release"
RULES = yaml.safe_load((ROOT / "deploy" / "prometheus" / "tradeops-rules.yaml").read_text())


def prometheus_spec(stack):
    return built(stack).one(RELEASE, "kube-prometheus-stack").inputs["values"]["prometheus"]["prometheusSpec"]


def provisioned_rule(stack):
    (rule,) = built(stack).of_kind("PrometheusRule")
    return rule.inputs


@pytest.mark.parametrize("stack", STACKS)
def test_every_group_of_the_generated_rules_is_provisioned(stack):
    assert provisioned_rule(stack)["spec"]["groups"] == RULES["spec"]["groups"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_selects_the_rules(stack):
    spec, rule = prometheus_spec(stack), provisioned_rule(stack)
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert selects(spec["ruleSelector"], rule["metadata"]["labels"])
    assert spec["ruleNamespaceSelector"] == {}  # any namespace, including the monitoring one


@pytest.mark.parametrize("stack", STACKS)
def test_every_dashboard_is_provisioned_for_the_grafana_sidecar(stack):
    sidecar = built(stack).one(RELEASE, "kube-prometheus-stack").inputs["values"]["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    maps = {next(iter(r.inputs["data"])): r.inputs for r in built(stack).of_kind("ConfigMap")}
    for file_name, board in dashboards.all_dashboards().items():
        config_map = maps[file_name]
        assert config_map["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        assert json.loads(config_map["data"][file_name]) == board


@pytest.mark.parametrize("stack", STACKS)
def test_the_runtime_servicemonitor_selects_the_operators_metrics_service(stack):
    (monitor,) = built(stack).of_kind("ServiceMonitor")
    spec = TradingSymbolSpec.model_validate(yaml.safe_load((ROOT / "deploy" / "symbols" / "spy.yaml").read_text())[
        "spec"])
    service = builders.build_service(builders.Owner(name="spy", namespace="trading", uid="u"), spec)
    assert selects(monitor.inputs["spec"]["selector"], service["metadata"]["labels"])
    assert monitor.inputs["spec"]["namespaceSelector"]["matchNames"] == ["trading"]
    (port,) = service["spec"]["ports"]
    assert [e["port"] for e in monitor.inputs["spec"]["endpoints"]] == [port["name"]]
    assert port["port"] == naming.METRICS_PORT


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("monitor_name", "deployment"), [("operator-podmonitor", "operator"),
                                                          ("portfolio-risk-podmonitor", "portfolio-risk")])
def test_each_podmonitor_selects_its_pods(stack, monitor_name, deployment):
    monitor = built(stack).one("kubernetes:monitoring.coreos.com/v1:PodMonitor", monitor_name)
    workload = built(stack).one("kubernetes:apps/v1:Deployment", deployment).inputs
    pod = workload["spec"]["template"]
    assert selects(monitor.inputs["spec"]["selector"], pod["metadata"]["labels"])
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
    assert {e["port"] for e in monitor.inputs["spec"]["podMetricsEndpoints"]} <= ports
