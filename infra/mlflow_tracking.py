"""MLflow in the cluster: the tracking server and model registry the operator resolves `spec.model` against
(MLFLOW_TRACKING_URI in its pod) and training runs log to. Its backend store is a database of its own
(`mlflow`) on the stack's PostgreSQL, its URI only in a Secret; artifacts go to S3 under the backup bucket's
`mlflow/` prefix with the backup ServiceAccount's access (IRSA in prod, the access key in dev); the server
proxies them (`--serve-artifacts`), so the runtimes fetch a pinned version's ONNX file over HTTP from the
server and hold no S3 credentials. The job executor is off (~0.5 GB instead of ~2.3 GB with seven workers).

The image holds mlflow with psycopg2 and boto3 (the upstream `ghcr.io/mlflow/mlflow` image has neither):
deploy/docker/mlflow.Dockerfile, built and deployed by digest by CD like the project's other images."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import hardening
from infra.backups import SERVICE_ACCOUNT, Backups, s3_access
from infra.control_plane import mlflow_tracking_uri
from infra.datastores import DATABASE
from infra.settings import Settings

MLFLOW = "mlflow"
MLFLOW_PORT = 5000
MLFLOW_UID = 10001
MLFLOW_DATABASE = "mlflow"
BACKEND_SECRET = "mlflow-backend"
"""Secret holding MLFLOW_BACKEND_STORE_URI (the database password is in it) and the admin URL that creates
the database on first start."""


def tracking_uri(settings: Settings) -> str:
    """The URL the operator (MLFLOW_TRACKING_URI) and the runtimes reach the server at."""
    return mlflow_tracking_uri(settings)


def backend_store_uri(database_url: str) -> str:
    """The stack's database URL with MLflow's own database in place of tradeops'."""
    base, _, name = database_url.rpartition("/")
    if name != DATABASE:
        raise ValueError(f"expected a URL of the {DATABASE} database, got one of {name!r}")
    return f"{base.replace('postgresql://', 'postgresql+psycopg2://', 1)}/{MLFLOW_DATABASE}"


def server_args() -> list[str]:
    """`mlflow server` on PostgreSQL with S3 artifacts served through it; Kubernetes expands `$(VAR)` from the
    container's environment (the store URI from its Secret, the bucket from the backup access)."""
    return ["server", "--host", "0.0.0.0", "--port", str(MLFLOW_PORT), "--workers", "2",
            "--backend-store-uri", "$(MLFLOW_BACKEND_STORE_URI)",
            "--serve-artifacts", "--artifacts-destination", "s3://$(TRADEOPS_BACKUP_BUCKET)/mlflow",
            "--default-artifact-root", "mlflow-artifacts:/"]


CREATE_DATABASE = (
    f"psql \"$ADMIN_URL\" -tAc \"SELECT 1 FROM pg_database WHERE datname = '{MLFLOW_DATABASE}'\" | grep -q 1 "
    f"|| exec psql \"$ADMIN_URL\" -c 'CREATE DATABASE {MLFLOW_DATABASE}'")


def pod(settings: Settings, bucket_name: pulumi.Input[str]) -> dict[str, Any]:
    """The server's pod: non-root, read-only root filesystem, the store URI from its Secret, job execution off,
    its database created by an init container (the tools image holds psql) when it does not exist yet."""
    s3_env, s3_env_from = s3_access(settings, bucket_name)
    secret = {"secretRef": {"name": BACKEND_SECRET}}
    return {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": settings.uses_irsa,  # the IRSA token is projected through it
        "securityContext": hardening.pod_security(MLFLOW_UID),
        "initContainers": [{
            "name": "create-database",
            "image": settings.tools_image,
            "command": ["sh", "-c", CREATE_DATABASE],
            "envFrom": [secret],
            "resources": hardening.resources("50m", "64Mi", "200m", "128Mi"),
            "securityContext": hardening.container_security(),
        }],
        "containers": [{
            "name": MLFLOW,
            "image": settings.mlflow_image,
            "command": ["mlflow"],
            "args": server_args(),
            "envFrom": [secret, *s3_env_from],
            "env": [{"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "value": "false"},
                    {"name": "HOME", "value": "/tmp"}, *s3_env,
                    *([{"name": "MLFLOW_S3_ENDPOINT_URL", "value": settings.s3_endpoint}] if settings.s3_endpoint
                      else [])],
            "ports": [{"name": "http", "containerPort": MLFLOW_PORT, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10},
            "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 20,
                              "failureThreshold": 6},
            "resources": hardening.resources("250m", "768Mi", "1", "1536Mi"),
            "securityContext": hardening.container_security(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }


def mlflow_tracking(settings: Settings, ns: dict[str, k8s.core.v1.Namespace], database_url: pulumi.Output[str],
                    backups: Backups) -> str:
    """The backend Secret, the server Deployment and its Service; returns the tracking URI."""
    namespace = settings.data_namespace
    labels = hardening.labels(MLFLOW, "model-registry")
    secret = k8s.core.v1.Secret(
        "mlflow-backend", metadata={"name": BACKEND_SECRET, "namespace": namespace,
                                    "labels": hardening.labels(BACKEND_SECRET, "credentials")},
        type="Opaque",
        string_data={"MLFLOW_BACKEND_STORE_URI": database_url.apply(backend_store_uri), "ADMIN_URL": database_url},
        opts=pulumi.ResourceOptions(depends_on=[ns["data"]], additional_secret_outputs=["stringData", "data"]))
    selector = {"app.kubernetes.io/name": MLFLOW}
    k8s.core.v1.Service(
        "mlflow", metadata={"name": MLFLOW, "namespace": namespace, "labels": labels},
        spec=hardening.raw({"selector": selector, "ports": [
            {"name": "http", "port": MLFLOW_PORT, "targetPort": "http", "protocol": "TCP"}]}),
        opts=pulumi.ResourceOptions(depends_on=[ns["data"]]))
    k8s.apps.v1.Deployment(
        "mlflow", metadata=hardening.raw({"name": MLFLOW, "namespace": namespace, "labels": labels}),
        spec=hardening.raw({"replicas": 1, "strategy": {"type": "Recreate"},
                            "selector": {"matchLabels": selector},
                            "template": {"metadata": {"labels": labels},
                                         "spec": pod(settings, backups.bucket.bucket)}}),
        opts=pulumi.ResourceOptions(depends_on=[secret, *backups.depends_on]))
    return tracking_uri(settings)
