"""Pulumi program under mocks: every pod it defines is hardened and bounded; secrets stay in Secrets."""

from __future__ import annotations

import json

import pytest

from tests.unit.infra_harness import STACKS, built, is_secret, pods

WORKLOADS = sorted((stack, name) for stack in STACKS for name, _ in pods(built(stack)))


def pod(stack: str, name: str) -> dict:
    return dict(pods(built(stack)))[name]


@pytest.mark.parametrize(("stack", "name"), WORKLOADS, ids=[f"{s}-{n}" for s, n in WORKLOADS])
def test_every_pod_runs_as_non_root_with_requests_and_limits(stack, name):
    spec = pod(stack, name)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    for container in spec["containers"]:
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}, container["name"]
        assert set(resources["limits"]) == {"cpu", "memory"}, container["name"]


@pytest.mark.parametrize(("stack", "name"), WORKLOADS, ids=[f"{s}-{n}" for s, n in WORKLOADS])
def test_every_container_is_locked_down(stack, name):
    spec = pod(stack, name)
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}


def test_the_workloads_cover_operator_datastores_and_jobs():
    assert {name for stack, name in WORKLOADS if stack == "dev"} == {
        "operator", "postgres", "redis", "backup-cronjob", "base-backup-cronjob", "redis-backup-cronjob",
        "drill-cronjob", "drill-point-in-time-cronjob", "drill-pod-kill-cronjob", "drill-prometheus-loss-cronjob",
        "drill-redis-loss-cronjob", "otel-collector", "jaeger", "portfolio-risk", "audit-recorder",
        "report-performance", "report-compliance", "report-cost", "records-archive", "mlflow"}
    assert {name for stack, name in WORKLOADS if stack == "prod"} == {
        "operator", "postgres", "redis", "backup-cronjob", "base-backup-cronjob", "redis-backup-cronjob",
        "drill-cronjob", "drill-point-in-time-cronjob", "otel-collector", "jaeger", "portfolio-risk", "audit-recorder",
        "report-performance", "report-compliance", "report-cost", "records-archive", "mlflow"}
    # Not here, as they cannot be: Fluent Bit's DaemonSet reads root's container logs on the node (it is
    # checked for what it can be in test_infra_observability.py).


@pytest.mark.parametrize("stack", STACKS)
def test_every_prometheus_stack_component_has_limits_and_a_non_root_user(stack):
    values = built(stack).one("kubernetes:helm.sh/v3:Release", "kube-prometheus-stack").inputs["values"]
    components = [values["prometheus"]["prometheusSpec"], values["alertmanager"]["alertmanagerSpec"],
                  values["prometheusOperator"], values["kube-state-metrics"], values["prometheus-node-exporter"],
                  values["grafana"]]
    for component in components:
        assert component["resources"]["limits"]
        assert component["resources"]["requests"]
        assert component["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_generated_secrets_appear_only_in_secrets(stack):
    """The mocked passwords and keys never leak into a non-Secret resource (env values, Helm values)."""
    leaked = [r.name for r in built(stack).resources if r.kind != "Secret" and "mock-" in json.dumps(r.inputs)]
    assert leaked == []
    secrets = [r for r in built(stack).of_kind("Secret") if "mock-" in json.dumps(r.inputs)]
    assert secrets, "the generated credentials must land in Secrets"



@pytest.mark.parametrize("stack", STACKS)
def test_credential_secrets_are_pulumi_secrets(stack):
    """Pulumi encrypts them in the stack state; every generated credential Secret is marked."""
    with_credentials = [r for r in built(stack).of_kind("Secret") if "mock-" in json.dumps(r.inputs)]
    assert with_credentials
    assert all(is_secret(r.raw["stringData"]) for r in with_credentials)


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_is_exposed_outside_the_cluster(stack):
    services = built(stack).of_kind("Service")
    assert services
    assert all(s.inputs["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services)


@pytest.mark.parametrize(("stack", "name"), WORKLOADS, ids=[f"{s}-{n}" for s, n in WORKLOADS])
def test_every_image_is_pinned_to_a_version_or_digest(stack, name):
    for container in pod(stack, name)["containers"]:
        image = container["image"]
        assert "@sha256:" in image or (":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")), image
