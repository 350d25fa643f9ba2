"""The operator's own manifests: least-privilege RBAC covering exactly what it calls, a hardened pod."""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = list(yaml.safe_load_all((ROOT / "deploy" / "operator" / "operator.yaml").read_text()))

# (apiGroup, resource, verb) the operator and kopf use: executor.py, handlers.py, kopf's watchers and peering.
NEEDED = {
    *{("trading.tradeops.io", "tradingsymbols", v) for v in ("get", "list", "watch", "patch")},
    ("trading.tradeops.io", "tradingsymbols/status", "patch"),
    *{("trading.tradeops.io", "fleetrollouts", v) for v in ("get", "list", "watch", "patch")},  # fleet_handlers.py
    ("trading.tradeops.io", "fleetrollouts/status", "patch"),
    *{(g, r, v) for g, r in (("", "configmaps"), ("", "services"), ("apps", "deployments"),
                             ("policy", "poddisruptionbudgets"), ("networking.k8s.io", "networkpolicies"))
      for v in ("get", "list", "watch", "create", "patch")},
    *{("apps", "controllerrevisions", v) for v in ("list", "watch", "create", "delete")},
    *{("", "pods", v) for v in ("list", "watch")},  # the informer's watches (informer.py)
    ("", "configmaps", "delete"), ("apps", "deployments", "delete"),  # a finished shadow revision
    ("", "events", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("kopf.dev", "clusterkopfpeerings", "patch"),
    # Each symbol's lease-only ServiceAccount, Role and RoleBinding (builders.py) ...
    *{(g, r, v) for g, r in (("", "serviceaccounts"), ("rbac.authorization.k8s.io", "roles"),
                             ("rbac.authorization.k8s.io", "rolebindings"))
      for v in ("get", "list", "watch", "create", "patch")},
    # ... and the lease verbs that Role grants: RBAC lets a granter give only what it holds.
    *{("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")},
}


def kind(name: str) -> dict:
    return next(d for d in DOCS if d["kind"] == name)


def granted() -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in kind("ClusterRole")["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


def test_rbac_grants_what_the_operator_calls():
    assert NEEDED - granted() == set()


@pytest.mark.parametrize("forbidden", [("", "secrets", "get"), ("", "pods", "delete"),
                                       ("apps", "deployments", "deletecollection"), ("", "services", "delete")],
                         ids=["no-secrets", "no-pod-deletion", "no-bulk-deletion", "children-go-by-gc"])
def test_rbac_is_least_privilege(forbidden):
    rules = kind("ClusterRole")["rules"]
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in rules)
    assert forbidden not in granted()


def test_operator_pod_is_hardened_and_highly_available():
    deployment = kind("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]
    assert "--standalone" not in container["args"]
