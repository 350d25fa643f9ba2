"""Pulumi program under mocks: the CRD is the generated file, RBAC grants only what the operator calls,
the operator runs highly available, the namespaces enforce the restricted pod security standard."""

from __future__ import annotations

import pytest
import yaml

from tests.unit.infra_harness import ROOT, STACKS, built
from tests.unit.test_operator_manifests import NEEDED
from trading_operator.builders import lease_rules

CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def granted(stack: str) -> set[tuple[str, str, str]]:
    role = built(stack).one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "operator-role")
    return {(g, r, v) for rule in role.inputs["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", ["tradingsymbols", "fleetrollouts"])
def test_crd_matches_the_generated_file(stack, name):
    generated = yaml.safe_load((ROOT / "deploy" / "crds" / f"{name}.yaml").read_text())
    crd = built(stack).one(CRD_TYPE, f"crd-{name}").inputs
    assert crd["metadata"] == generated["metadata"]
    assert crd["spec"] == generated["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_rbac_grants_what_the_operator_calls(stack):
    assert NEEDED - granted(stack) == set()


@pytest.mark.parametrize("stack", STACKS)
def test_rbac_verbs_are_minimal(stack):
    """Exactly the plain-kubectl install's rules (whose necessity test_operator_manifests checks): no
    wildcards, no secrets, nothing deleted but pruned revisions and a finished shadow's ConfigMap/Deployment."""
    plain = next(d for d in yaml.safe_load_all((ROOT / "deploy" / "operator" / "operator.yaml").read_text())
                 if d["kind"] == "ClusterRole")
    role = built(stack).one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "operator-role")
    assert role.inputs["rules"] == plain["rules"]
    rules = granted(stack)
    assert not any("*" in (g, r, v) for g, r, v in rules)
    assert not any(r == "secrets" for _, r, _ in rules)
    assert {r for _, r, v in rules if v == "delete"} == {"controllerrevisions", "configmaps", "deployments"}
    assert {v for _, _, v in rules} <= {"get", "list", "watch", "create", "patch", "delete", "update"}
    assert {r for _, r, v in rules if v == "update"} == {"leases"}  # to grant the runtimes their Lease
    assert not any(v in ("bind", "escalate", "impersonate") for _, _, v in rules)


@pytest.mark.parametrize("stack", STACKS)
def test_the_operator_can_grant_each_runtime_its_lease_and_nothing_more(stack):
    """RBAC refuses a Role granting more than its creator holds: every rule of a symbol's lease Role
    (trading_operator/builders.py) is covered by the operator's ClusterRole as Pulumi deploys it, and that
    Role itself is get/update on its own Lease by name, create on Leases, nothing else."""
    rules = granted(stack)
    runtime = lease_rules("spy")
    for rule in runtime:
        for group in rule["apiGroups"]:
            for verb in rule["verbs"]:
                assert (group, "leases", verb) in rules
    assert {(v, tuple(r.get("resourceNames", ()))) for r in runtime for v in r["verbs"]} == {
        ("get", ("spy-trading",)), ("update", ("spy-trading",)), ("create", ())}
    assert {res for r in runtime for res in r["resources"]} == {"leases"}
    assert {g for r in runtime for g in r["apiGroups"]} == {"coordination.k8s.io"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_role_is_bound_to_the_operators_service_account_only(stack):
    binding = built(stack).one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "operator-binding")
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "tradeops-operator", "namespace": "tradeops-system"}]
    assert binding.inputs["roleRef"]["name"] == "tradeops-operator"


@pytest.mark.parametrize("stack", STACKS)
def test_operator_is_highly_available_with_peering(stack):
    deployment = built(stack).one("kubernetes:apps/v1:Deployment", "operator").inputs["spec"]
    assert deployment["replicas"] >= 2
    assert deployment["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    (container,) = deployment["template"]["spec"]["containers"]
    assert "--standalone" not in container["args"]
    assert container["args"][container["args"].index("--peering") + 1] == "tradeops"
    assert built(stack).of_kind("ClusterKopfPeering")[0].inputs["metadata"]["name"] == "tradeops"
    pdb = built(stack).one("kubernetes:policy/v1:PodDisruptionBudget", "operator-pdb").inputs["spec"]
    assert pdb["maxUnavailable"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_workload_namespaces_enforce_restricted_pod_security(stack):
    levels = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
              for r in built(stack).of_kind("Namespace")}
    assert levels == {"tradeops-system": "restricted", "trading": "restricted", "tradeops-data": "restricted",
                      "tradeops-backtests": "restricted", "monitoring": "privileged"}  # node-exporter reads the host


@pytest.mark.parametrize("stack", STACKS)
def test_operator_reads_the_stacks_prometheus_and_serves_its_metrics(stack):
    """Analysis queries the Prometheus the stack installs; the PodMonitor scrapes the port the operator serves."""
    deployment = built(stack).one("kubernetes:apps/v1:Deployment", "operator").inputs["spec"]
    (container,) = deployment["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    outputs = built(stack).outputs
    assert env["TRADEOPS_PROMETHEUS_URL"] == outputs["prometheusUrl"]
    metrics_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert env["TRADEOPS_METRICS_PORT"] == str(int(metrics_port))  # the mocks echo numbers as floats
