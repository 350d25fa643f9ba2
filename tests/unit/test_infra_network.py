"""Pulumi program under mocks: default-deny NetworkPolicies, and only the intended paths between the
runtimes, the databases, the backup jobs, the report jobs, the audit recorder, the operator and Prometheus."""

from __future__ import annotations

import pytest

from infra import network_policies
from infra.settings import from_mapping
from tests.unit.infra_harness import STACKS, built, selects, stack_config
from trading_operator import naming

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SETTINGS = from_mapping({k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("tradeops:")})
RUNTIME_POD = {**naming.selector_labels("spy"), "app.kubernetes.io/component": "trading"}


def policy(stack, name):
    return built(stack).one(NETPOL, name).inputs


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("namespace", ["trading", "tradeops-data", "tradeops-system"])
def test_default_deny_in_every_workload_namespace(stack, namespace):
    spec = policy(stack, f"netpol-default-deny-{namespace}")["spec"]
    assert spec == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("database", "port"), [("postgres", 5432), ("redis", 6379)])
def test_databases_accept_only_runtimes_jobs_and_the_recorder(stack, database, port):
    (rule,) = policy(stack, f"netpol-{database}")["spec"]["ingress"]
    assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    sources = {(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                tuple(sorted(peer["podSelector"]["matchLabels"].items()))) for peer in rule["from"]}
    # Redis also serves the portfolio risk service (its streams and book); PostgreSQL does not.
    portfolio = ("trading", (("app.kubernetes.io/name", "tradeops-portfolio-risk"),))
    audit = {("tradeops-data", (("app.kubernetes.io/component", "reports"),)),
             ("tradeops-data", (("app.kubernetes.io/component", "audit"),)),
             ("tradeops-data", (("app.kubernetes.io/name", "mlflow"),))}  # its backend store
    consumers = {portfolio} if database == "redis" else audit
    assert sources == {
        ("trading", (("app.kubernetes.io/name", naming.APP_NAME),)),
        ("tradeops-data", (("app.kubernetes.io/component", "backup"),)),
        ("tradeops-data", (("app.kubernetes.io/component", "dr-drill"),)),
    } | consumers
    egress = policy(stack, f"netpol-{database}")["spec"]["egress"]
    if database == "redis":
        assert egress == []
    else:  # WAL archiving: DNS and HTTPS to S3 outside the cluster, nothing inside it
        assert sorted(p["port"] for rule in egress for p in rule["ports"]) == [53, 53, 443]
        (https,) = [rule for rule in egress if rule["ports"][0]["port"] == 443]
        assert "10.0.0.0/8" in https["to"][0]["ipBlock"]["except"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_runtime_peer_selects_the_operators_trading_pods(stack):
    (rule,) = policy(stack, "netpol-postgres")["spec"]["ingress"]
    assert any(selects(peer["podSelector"], RUNTIME_POD) for peer in rule["from"])


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_may_scrape_the_runtimes_and_the_operator(stack):
    egress = policy(stack, "netpol-prometheus")["spec"]["egress"]
    to_runtimes = [r for r in egress if any(selects(p.get("podSelector", {"matchLabels": {"-": "-"}}), RUNTIME_POD)
                                            for p in r.get("to", []))]
    assert [r["ports"] for r in to_runtimes] == [[{"port": naming.METRICS_PORT, "protocol": "TCP"}]]
    assert network_policies.RUNTIME_METRICS_PORT == naming.METRICS_PORT


@pytest.mark.parametrize("stack", STACKS)
def test_backup_jobs_reach_only_dns_the_databases_and_https(stack):
    egress = policy(stack, "netpol-backup-jobs")["spec"]["egress"]
    ports = sorted({p["port"] for rule in egress for p in rule["ports"]})
    assert ports == [53, 443, 5432, 6379]


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_drills_reach_only_dns_the_api_server_and_prometheus(stack):
    egress = policy(stack, "netpol-cluster-drills")["spec"]["egress"]
    assert sorted({p["port"] for rule in egress for p in rule["ports"]}) == [53, 443, 6443, 9090]
    ingress = policy(stack, "netpol-prometheus")["spec"]["ingress"]
    drills = {"app.kubernetes.io/component": "dr-drill-cluster"}
    assert any(peer.get("podSelector", {}).get("matchLabels") == drills for rule in ingress for peer in rule["from"])


def pod_labels(stack, kind, name):
    spec = built(stack).one(f"kubernetes:{kind}", name).inputs["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
    return template["metadata"]["labels"]


def egress_ports(stack, labels):
    """Every port the data namespace's policies let pods with these labels reach."""
    found = set()
    for r in built(stack).of_type(NETPOL):
        spec, namespace = r.inputs["spec"], r.inputs["metadata"]["namespace"]
        if namespace == "tradeops-data" and spec["podSelector"] and selects(spec["podSelector"], labels):
            found |= {p["port"] for rule in spec.get("egress", []) for p in rule.get("ports", [])}
    return found


def admitted(stack, netpol, labels, namespace="tradeops-data"):
    """Whether a policy's ingress admits pods with these labels from the namespace."""
    return any(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == namespace
               and selects(peer.get("podSelector", {}), labels)
               for rule in policy(stack, netpol)["spec"]["ingress"] for peer in rule["from"])


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("job", ["report-performance", "report-compliance", "report-cost", "records-archive"])
def test_report_jobs_reach_prometheus_postgres_and_s3_only(stack, job):
    labels = pod_labels(stack, "batch/v1:CronJob", job)
    assert egress_ports(stack, labels) == {53, 443, 5432, 9090}
    assert admitted(stack, "netpol-postgres", labels)
    assert admitted(stack, "netpol-prometheus", labels)
    assert not admitted(stack, "netpol-redis", labels)


@pytest.mark.parametrize("stack", STACKS)
def test_the_recorder_reaches_the_api_server_and_postgres_only(stack):
    labels = pod_labels(stack, "apps/v1:Deployment", "audit-recorder")
    assert egress_ports(stack, labels) == {53, 443, 6443, 5432}
    (https,) = [rule for rule in policy(stack, "netpol-audit-recorder")["spec"]["egress"]
                if {"port": 443, "protocol": "TCP"} in rule.get("ports", [])]
    assert "to" not in https  # the API server: it has no pod labels to select (no S3 ipBlock)
    assert admitted(stack, "netpol-postgres", labels)
    assert not admitted(stack, "netpol-prometheus", labels)


def test_the_policies_cover_the_namespaces_of_the_settings():
    namespaces = {p["metadata"]["namespace"] for p in network_policies.policies(SETTINGS).values()}
    assert namespaces == {SETTINGS.trading_namespace, SETTINGS.data_namespace, SETTINGS.system_namespace,
                          SETTINGS.monitoring_namespace}


@pytest.mark.parametrize("stack", STACKS)
def test_retraining_jobs_reach_only_dns_and_mlflow_which_lets_them_in(stack):
    """The Job a regime change requests (trading_operator/retraining.py) tracks its run and registers its version
    in MLflow, and reaches nothing else; its pods are selected by the labels the operator gives them."""
    from policies.models import RegimeRetraining
    from trading_operator.builders import Owner
    from trading_operator.retraining import build_job

    job = build_job(Owner("spy", "trading", "uid"), "SPY", "equity-options", "tradeops-meta-spy", "http://m:5000",
                    1.7e9, RegimeRetraining(enabled=True))
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    spec = policy(stack, "netpol-retraining-jobs")["spec"]
    assert selects(spec["podSelector"], pod_labels)
    assert not selects(spec["podSelector"], RUNTIME_POD)
    assert spec["ingress"] == []
    assert sorted(p["port"] for rule in spec["egress"] for p in rule["ports"]) == [53, 53, 5000]
    (ingress,) = policy(stack, "netpol-mlflow")["spec"]["ingress"]
    assert any(selects(peer["podSelector"], pod_labels) and
               peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "trading"
               for peer in ingress["from"])
