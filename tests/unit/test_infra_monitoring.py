"""Pulumi program under mocks: the generated rules and the dashboards reach the Prometheus stack, and
its monitors select what the operator actually creates."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
import yaml

from infra import dashboards, monitoring
from infra.settings import from_mapping
from policies.templates import selector
from tests.unit.infra_harness import ROOT, STACKS, built, selects
from trading_operator import builders, naming
from trading_operator.analysis import Scope
from trading_operator.api import TradingSymbolSpec
from trading_operator.revisions import Revision, template_hash, template_of

RELEASE = "kubernetes:helm.sh/v3:Release"
RULES = yaml.safe_load((ROOT / "deploy" / "prometheus" / "tradeops-rules.yaml").read_text())
RULE_FILES = {"tradeops-rules": ROOT / "deploy" / "prometheus" / "tradeops-rules.yaml",
              "tradeops-cost-rules": ROOT / "deploy" / "prometheus" / "tradeops-cost-rules.yaml"}
"""The SLO rules and the cost rules (both generated from policies/) by the resource that provisions them."""


def prometheus_spec(stack):
    return built(stack).one(RELEASE, "kube-prometheus-stack").inputs["values"]["prometheus"]["prometheusSpec"]


def provisioned_rule(stack, resource):
    return built(stack).one("kubernetes:monitoring.coreos.com/v1:PrometheusRule", resource).inputs


@pytest.mark.parametrize("stack", STACKS)
def test_exactly_the_generated_rules_are_provisioned(stack):
    assert {rule.name for rule in built(stack).of_kind("PrometheusRule")} == set(RULE_FILES)


@pytest.mark.parametrize("resource", sorted(RULE_FILES))
@pytest.mark.parametrize("stack", STACKS)
def test_every_group_of_the_generated_rules_is_provisioned(stack, resource):
    generated = yaml.safe_load(RULE_FILES[resource].read_text())
    assert provisioned_rule(stack, resource)["spec"]["groups"] == generated["spec"]["groups"]


@pytest.mark.parametrize("resource", sorted(RULE_FILES))
@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_selects_the_rules(stack, resource):
    spec, rule = prometheus_spec(stack), provisioned_rule(stack, resource)
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert selects(spec["ruleSelector"], rule["metadata"]["labels"])
    assert spec["ruleNamespaceSelector"] == {}  # any namespace, including the monitoring one


@pytest.mark.parametrize("stack", STACKS)
def test_kube_state_metrics_exports_the_symbol_label_the_cost_rules_join_on(stack):
    """kube-state-metrics exports no pod label unless allowed; without this the cost rules have no pods."""
    values = built(stack).one(RELEASE, "kube-prometheus-stack").inputs["values"]["kube-state-metrics"]
    assert values["metricLabelsAllowlist"] == [f"pods=[{naming.SYMBOL_LABEL}]"]
    exported = "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", naming.SYMBOL_LABEL)  # kube-state-metrics' sanitising
    assert f"kube_pod_labels{{{exported}!=\"\"}}" in RULE_FILES["tradeops-cost-rules"].read_text()


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


def relabel(target: dict[str, str], relabelings: list[dict]) -> dict[str, str]:
    """Prometheus's `replace` relabeling (the default regex `(.*)` and replacement `$1`): the source labels'
    values joined by `;` go to the target label; an empty result removes it."""
    labels = dict(target)
    for rule in relabelings:
        assert rule.get("action", "replace") == "replace"
        value = ";".join(labels.get(source, "") for source in rule["sourceLabels"])
        if value:
            labels[rule["targetLabel"]] = value
        else:
            labels.pop(rule["targetLabel"], None)
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def discovered(pod_labels: dict[str, str], namespace: str) -> dict[str, str]:
    """The meta labels Kubernetes service discovery gives a pod's endpoint; prometheus-operator adds
    `namespace` (and pod, service, job) from them itself."""
    meta = {f"__meta_kubernetes_pod_label_{re.sub('[^a-zA-Z0-9_]', '_', k)}": v for k, v in pod_labels.items()}
    return {**meta, "namespace": namespace}


def spy_pod_labels() -> dict[str, str]:
    spec = TradingSymbolSpec.model_validate(yaml.safe_load((ROOT / "deploy" / "symbols" / "spy.yaml").read_text())[
        "spec"])
    template = template_of(spec)
    revision = Revision(3, "spy-3", template_hash(template), template)
    deployment = builders.build_deployment(builders.Owner(name="spy", namespace="trading", uid="u"), spec, revision,
                                           1, "config")
    return deployment["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_runtime_targets_carry_the_labels_the_rules_and_the_analysis_select_on(stack):
    (monitor,) = built(stack).of_kind("ServiceMonitor")
    (endpoint,) = monitor.inputs["spec"]["endpoints"]
    up = relabel(discovered(spy_pod_labels(), "trading"), endpoint["relabelings"])
    assert up == {"namespace": "trading", "symbol": "SPY", "revision": "3"}
    # The generated rules select `up{symbol!=""}`; the analysis of revision 3 selects these three labels.
    assert 'up{ symbol!="" }' in yaml.safe_dump(RULES)
    analysis = Scope("trading", "SPY", 3).selector()
    assert analysis == selector(up)
    assert endpoint["honorLabels"] is True, "the runtime's own symbol label, not an exported_symbol copy"


def test_the_operator_podmonitor_keeps_the_symbols_namespace():
    monitor = built("prod").one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "operator-podmonitor")
    assert [e["honorLabels"] for e in monitor.inputs["spec"]["podMetricsEndpoints"]] == [True]


@pytest.mark.parametrize(("retention", "ok"), [("30d", True), ("31d", True), ("5w", True), ("1y", True),
                                               ("720h", True), ("15d", False), ("29d23h", False)])
def test_retention_must_cover_the_longest_range_the_rules_read(retention, ok):
    settings = replace(from_mapping({"environment": "dev", "operatorImage": "o", "runtimeImage": "r",
                                     "toolsImage": "t"}), prometheus_retention=retention)
    assert monitoring.longest_rule_range(RULES) == "30d"
    if ok:
        monitoring.check_retention(settings, RULES)
    else:
        with pytest.raises(ValueError, match=f"prometheusRetention {retention} is shorter than the 30d"):
            monitoring.check_retention(settings, RULES)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_keeps_the_slo_period(stack):
    assert monitoring._seconds(prometheus_spec(stack)["retention"]) >= 30 * 86400
