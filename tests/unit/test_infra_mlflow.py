"""The MLflow tracking server in the cluster (infra/mlflow_tracking.py), under Pulumi mocks: PostgreSQL backend
from a Secret, S3 artifacts served through it, job execution off, hardened, and the operator wired to it."""

from __future__ import annotations

import pytest

from infra import backups, mlflow_tracking
from infra.control_plane import OPERATOR
from infra.settings import from_mapping
from tests.unit.infra_harness import STACKS, built, is_secret
from tests.unit.test_infra_backups import settings_of

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def server_pod(stack: str) -> dict:
    return built(stack).one(DEPLOYMENT, "mlflow").inputs["spec"]["template"]["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_server_runs_the_mlflow_image_with_job_execution_off(stack):
    container, = server_pod(stack)["containers"]
    assert container["image"] == settings_of(stack).mlflow_image
    assert container["command"] == ["mlflow"]
    args = container["args"]
    assert args[0] == "server"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert args[args.index("--backend-store-uri") + 1] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert args[args.index("--artifacts-destination") + 1] == "s3://$(TRADEOPS_BACKUP_BUCKET)/mlflow"
    assert "--serve-artifacts" in args
    assert env["TRADEOPS_BACKUP_BUCKET"] == built(stack).outputs["backupBucket"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_backend_store_uri_comes_only_from_a_secret(stack):
    pod = server_pod(stack)
    container, = pod["containers"]
    sources = [e["secretRef"]["name"] for e in container["envFrom"]]
    assert sources[0] == mlflow_tracking.BACKEND_SECRET
    assert sources[1:] == ([] if stack == "prod" else [backups.AWS_CREDENTIALS])
    assert not [e for e in container["env"] if "URI" in e["name"] or "SECRET" in e["name"] or "KEY" in e["name"]]
    secret = built(stack).one(SECRET, "mlflow-backend")
    assert is_secret(secret.raw["stringData"]), "the URI carries the database password: a Pulumi secret"
    uri = secret.inputs["stringData"]["MLFLOW_BACKEND_STORE_URI"]
    assert uri.startswith("postgresql+psycopg2://")
    assert uri.endswith("/mlflow")
    assert "mock-" in uri
    assert secret.inputs["metadata"]["namespace"] == settings_of(stack).data_namespace


@pytest.mark.parametrize("stack", STACKS)
def test_the_pod_is_non_root_read_only_and_limited(stack):
    pod = server_pod(stack)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is (stack == "prod")  # IRSA's projected token only
    for container in pod["initContainers"] + pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"]
    init, = pod["initContainers"]
    assert init["image"] == settings_of(stack).tools_image  # psql creates the database when missing
    assert "CREATE DATABASE mlflow" in init["command"][2]


@pytest.mark.parametrize("stack", STACKS)
def test_the_operator_resolves_models_against_the_service_it_deploys(stack):
    service = built(stack).one(SERVICE, "mlflow").inputs
    port, = service["spec"]["ports"]
    uri = f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{int(port['port'])}"
    operator = built(stack).one(DEPLOYMENT, "operator").inputs["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["MLFLOW_TRACKING_URI"] == uri == built(stack).outputs["mlflowTrackingUri"]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": mlflow_tracking.MLFLOW}
    assert port["targetPort"] == server_pod(stack)["containers"][0]["ports"][0]["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_operator_the_runtimes_and_the_retraining_jobs_reach_the_server(stack):
    policy = built(stack).one(NETPOL, "netpol-mlflow").inputs["spec"]
    peers = [next(iter(p["podSelector"]["matchLabels"].items())) for p in policy["ingress"][0]["from"]]
    assert sorted(peers) == sorted([("app.kubernetes.io/name", OPERATOR), ("app.kubernetes.io/name", "trading-runtime"),
                                    ("app.kubernetes.io/component", "retraining")])
    operator_egress = built(stack).one(NETPOL, "netpol-operator").inputs["spec"]["egress"]
    assert any(rule.get("ports") == [{"port": mlflow_tracking.MLFLOW_PORT, "protocol": "TCP"}]
               and rule["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "mlflow"}
               for rule in operator_egress)


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:p@postgres.data.svc:5432/tradeops", "postgresql+psycopg2://u:p@postgres.data.svc:5432/mlflow"),
])
def test_backend_store_uri(url, expected):
    assert mlflow_tracking.backend_store_uri(url) == expected


def test_backend_store_uri_refuses_another_database():
    with pytest.raises(ValueError, match="tradeops"):
        mlflow_tracking.backend_store_uri("postgresql://u:p@h:5432/other")


def test_the_image_is_a_setting():
    settings = from_mapping({"environment": "dev", "operatorImage": "o:1", "runtimeImage": "r:1", "toolsImage": "t:1",
                             "mlflowImage": "registry.example/mlflow:3"})
    assert mlflow_tracking.pod(settings, "bucket")["containers"][0]["image"] == "registry.example/mlflow:3"
