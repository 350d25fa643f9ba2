"""Pulumi program under mocks: the stack's Alertmanager runs the generated configuration with the receivers'
Secret mounted where it reads them, and reaches the operator's webhook through a Service and a policy."""

from __future__ import annotations

import re

import pytest
import yaml

from infra import alerting
from infra.settings import from_mapping
from tests.unit.infra_harness import ROOT, STACKS, built, selects

RELEASE = "kubernetes:helm.sh/v3:Release"
GENERATED = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())


def alertmanager_values(stack):
    return built(stack).one(RELEASE, "kube-prometheus-stack").inputs["values"]["alertmanager"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_stacks_alertmanager_runs_the_generated_configuration(stack):
    values = alertmanager_values(stack)
    assert values["config"] == GENERATED
    assert values["alertmanagerSpec"]["secrets"] == [alerting.ALERTING_SECRET]
    assert values["alertmanagerSpec"]["securityContext"]["runAsNonRoot"] is True


def test_the_receivers_read_their_secrets_where_the_secret_is_mounted():
    mount = f"/etc/alertmanager/secrets/{alerting.ALERTING_SECRET}/"
    files = [config[key] for receiver in GENERATED["receivers"] for kind in ("pagerduty_configs", "slack_configs")
             for config in receiver.get(kind, []) for key in ("routing_key_file", "api_url_file") if key in config]
    assert len(files) == 2
    assert all(f.startswith(mount) for f in files)


@pytest.mark.parametrize("stack", STACKS)
def test_the_webhook_url_is_the_operators_service_and_port(stack):
    (service,) = [r for r in built(stack).of_kind("Service") if r.name == "operator-alert-webhook"]
    operator = built(stack).one("kubernetes:apps/v1:Deployment", "operator").inputs
    pod = operator["spec"]["template"]
    assert selects({"matchLabels": service.inputs["spec"]["selector"]}, pod["metadata"]["labels"])
    (port,) = service.inputs["spec"]["ports"]
    (container,) = pod["spec"]["containers"]
    assert {"name": "alerts", "containerPort": port["port"], "protocol": "TCP"} in container["ports"]
    assert {"name": "TRADEOPS_ALERT_WEBHOOK_PORT", "value": str(int(port["port"]))} in container["env"]
    meta = service.inputs["metadata"]
    url = f"http://{meta['name']}.{meta['namespace']}.svc:{int(port['port'])}/alerts"
    assert [h["url"] for r in GENERATED["receivers"] for h in r.get("webhook_configs", [])] == [url]


@pytest.mark.parametrize("stack", STACKS)
def test_only_alertmanager_may_reach_the_webhook(stack):
    (policy,) = [r.inputs for r in built(stack).of_kind("NetworkPolicy") if r.name == "netpol-operator-alerts"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 9104, "protocol": "TCP"}]
    (peer,) = rule["from"]
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}


def test_a_configuration_posting_elsewhere_is_refused():
    settings = from_mapping({"environment": "dev", "operatorImage": "o", "runtimeImage": "r", "toolsImage": "t",
                             "systemNamespace": "ops"})
    with pytest.raises(ValueError, match=re.escape("not to the operator's webhook http://tradeops-operator.ops.svc:9104")):
        alerting.check_webhook_url(settings)
