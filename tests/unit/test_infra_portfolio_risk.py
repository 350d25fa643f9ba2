"""The portfolio risk service's cluster objects (infra/portfolio_risk.py): hardened pods, the Redis URL only
from the Secret, one consumer name per pod, and network paths to Redis and from Prometheus only."""

from __future__ import annotations

from infra import network_policies, portfolio_risk
from infra.datastores import REDIS_PORT, RUNTIME_CREDENTIALS
from infra.settings import from_mapping

SETTINGS = from_mapping({"environment": "dev", "operatorImage": "ghcr.io/tradeops/operator:1",
                         "runtimeImage": "ghcr.io/tradeops/runtime:1", "toolsImage": "ghcr.io/tradeops/tools:1"})


def test_pod_is_hardened_and_reads_redis_only_from_the_secret():
    pod = portfolio_risk.pod(SETTINGS)
    container, = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["envFrom"] == [{"secretRef": {"name": RUNTIME_CREDENTIALS}}]
    assert not [e for e in container["env"] if "REDIS" in e["name"]]
    assert container["image"] == SETTINGS.runtime_image
    assert container["resources"]["limits"]


def test_each_replica_consumes_under_its_own_pod_name():
    container, = portfolio_risk.pod(SETTINGS)["containers"]
    command = container["command"]
    assert command[command.index("--consumer") + 1] == "$(POD_NAME)"
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    assert portfolio_risk.REPLICAS >= 2  # a dead consumer's entries need someone to reclaim them


def test_network_reaches_redis_and_prometheus_reaches_the_metrics_only():
    spec = portfolio_risk.network_policy(SETTINGS)["spec"]
    assert [p["port"] for rule in spec["egress"] for p in rule["ports"] if p["protocol"] == "TCP"] == [53, REDIS_PORT]
    assert [p["port"] for rule in spec["ingress"] for p in rule["ports"]] == [portfolio_risk.METRICS_PORT]
    redis = network_policies.policies(SETTINGS)["netpol-redis"]["spec"]["ingress"][0]["from"]
    assert {"app.kubernetes.io/name": portfolio_risk.PORTFOLIO_RISK} in [p.get("podSelector", {}).get("matchLabels")
                                                                        for p in redis]
    postgres = network_policies.policies(SETTINGS)["netpol-postgres"]["spec"]["ingress"][0]["from"]
    assert {"app.kubernetes.io/name": portfolio_risk.PORTFOLIO_RISK} not in [
        p.get("podSelector", {}).get("matchLabels") for p in postgres]
