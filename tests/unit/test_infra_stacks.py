"""Both stack configs build under mocks and export what a user needs; unsafe settings are refused."""

from __future__ import annotations

import pytest

from infra.settings import from_mapping
from tests.unit.infra_harness import STACKS, built

REQUIRED = {"environment": "dev", "operatorImage": "ghcr.io/tradeops/operator:1", "runtimeImage": "ghcr.io/x/r:1",
            "toolsImage": "ghcr.io/x/t:1"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_builds_and_exports_namespaces_bucket_and_endpoints(stack):
    outputs = built(stack).outputs
    assert outputs["environment"] == stack
    assert outputs["tradingNamespace"] == "trading"
    assert outputs["backupBucket"].startswith(f"tradeops-backups-{stack}-")
    assert outputs["postgresEndpoint"] == "postgres.tradeops-data.svc.cluster.local:5432"
    assert outputs["redisEndpoint"] == "redis.tradeops-data.svc.cluster.local:6379"
    assert outputs["prometheusUrl"].startswith("http://")
    assert outputs["grafanaUrl"].startswith("http://")


def test_prod_is_bigger_and_safer_than_dev():
    dev, prod = built("dev"), built("prod")

    def replicas(b):
        return b.one("kubernetes:apps/v1:Deployment", "operator").inputs["spec"]["replicas"]

    assert replicas(prod) > replicas(dev) >= 2
    assert prod.outputs["backupRoleArn"]
    assert dev.outputs["backupRoleArn"] is None


@pytest.mark.parametrize(("override", "message"), [
    ({"operatorReplicas": "1"}, "at least 2"),
    ({"environment": "prod"}, "IRSA"),
    ({"environment": "staging"}, "dev or prod"),
    ({"oidcIssuer": "https://oidc.example"}, "go together"),
    ({"backupRetentionDays": "0"}, "at least 1"),
    ({"operatorImag": "typo"}, "unknown"),
], ids=["single-operator", "prod-with-keys", "unknown-environment", "half-irsa", "no-retention", "typo"])
def test_unsafe_or_mistyped_settings_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        from_mapping({**REQUIRED, **override})
