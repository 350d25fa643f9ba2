"""PostgreSQL and Redis for the runtimes: single-replica StatefulSets with persistent volumes, hardened
pods, generated credentials kept only in Secrets, and the connection URLs handed to the runtimes
(Secret `tradeops-runtime-credentials`, which the operator's pods read through `envFrom`). PostgreSQL runs
the tools image (the official postgres image plus the drills package) and archives its WAL to the backup
bucket the way the point-in-time drill restores it (docs/backups-and-drills.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import hardening
from infra.backups import BACKUP_CREDENTIALS, SERVICE_ACCOUNT, Backups, s3_access
from infra.settings import Settings
from infra.tracing import collector_endpoint

POSTGRES = "postgres"
REDIS = "redis"
POSTGRES_PORT = 5432
REDIS_PORT = 6379
POSTGRES_UID = 999  # the postgres user of the Debian postgres image the tools image is built on
REDIS_UID = 999  # the redis user of the alpine image
DATABASE = "tradeops"
DB_USER = "tradeops"
RUNTIME_CREDENTIALS = "tradeops-runtime-credentials"
"""Secret the operator's trading pods read (trading_operator.builders.CREDENTIALS_SECRET)."""
WAL_ARCHIVE_COMMAND = "python -m drills.wal_archive push %p %f"
"""PostgreSQL runs it per completed segment; the bucket and credentials come from the server's environment."""


@dataclass
class Datastores:
    postgres_host: str
    redis_host: str
    database_url: pulumi.Output[str]
    redis_url: pulumi.Output[str]


def _volume_claim(name: str, size: str, storage_class: str) -> Any:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name}, "spec": spec}


def wal_archiving(settings: Settings) -> dict[str, str]:
    """The server settings of continuous archiving (what `drills run point-in-time` restores from)."""
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_timeout": str(settings.archive_timeout_seconds),
        "archive_command": WAL_ARCHIVE_COMMAND,
    }


def postgres_pod(settings: Settings, bucket_name: pulumi.Input[str]) -> Any:
    """PostgreSQL's pod spec: data on the volume, sockets and temp files on emptyDirs, WAL archived to S3
    with the backup ServiceAccount's access (IRSA in prod, the access key in dev)."""
    s3_env, s3_env_from = s3_access(settings, bucket_name)
    args = ["postgres"]
    for key, value in wal_archiving(settings).items():
        args += ["-c", f"{key}={value}"]
    return {
        "serviceAccountName": SERVICE_ACCOUNT,
        # The IRSA token is projected through the ServiceAccount; without IRSA there is nothing to mount.
        "automountServiceAccountToken": settings.uses_irsa,
        "securityContext": hardening.pod_security(POSTGRES_UID),
        "containers": [{
            "name": POSTGRES,
            "image": settings.tools_image,
            # The base image's entrypoint (initdb on first start) with the archiving settings as server flags.
            "command": ["docker-entrypoint.sh"],
            "args": args,
            "envFrom": [{"secretRef": {"name": POSTGRES}}, *s3_env_from],
            "env": [{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                    {"name": "HOME", "value": "/tmp"}, *s3_env],
            "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
            "readinessProbe": {"exec": {"command": ["pg_isready", "-U", DB_USER, "-d", DATABASE]},
                               "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": "postgres"}, "periodSeconds": 10, "failureThreshold": 6},
            "resources": hardening.resources("250m", "512Mi", "2", "2Gi"),
            "securityContext": hardening.container_security(),
            "volumeMounts": [
                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                {"name": "run", "mountPath": "/var/run/postgresql"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }],
        "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }


def redis_pod(settings: Settings) -> Any:
    """Redis's pod spec: append-only file on the volume, password from its Secret."""
    return {
        "automountServiceAccountToken": False,
        "securityContext": hardening.pod_security(REDIS_UID),
        "containers": [{
            "name": REDIS,
            "image": settings.redis_image,
            "args": ["--requirepass", "$(REDIS_PASSWORD)", "--appendonly", "yes", "--dir", "/data"],
            "envFrom": [{"secretRef": {"name": REDIS}}],
            "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
            "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10, "failureThreshold": 6},
            "resources": hardening.resources("100m", "256Mi", "1", "1Gi"),
            "securityContext": hardening.container_security(),
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        }],
    }


def _stateful_set(name: str, settings: Settings, pod: Any, size: str, port: int,
                  depends_on: list[pulumi.Resource]) -> None:
    namespace = settings.data_namespace
    labels = hardening.labels(name, "database")
    selector = {"app.kubernetes.io/name": name}
    service = k8s.core.v1.Service(
        name,
        metadata=hardening.raw({"name": name, "namespace": namespace, "labels": labels}),
        spec=hardening.raw({"selector": selector, "ports": [{"name": name, "port": port, "targetPort": name}]}),
        opts=pulumi.ResourceOptions(depends_on=depends_on))
    k8s.apps.v1.StatefulSet(
        name,
        metadata=hardening.raw({"name": name, "namespace": namespace, "labels": labels}),
        spec=hardening.raw({
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod},
            "volumeClaimTemplates": [_volume_claim("data", size, settings.storage_class)],
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        }),
        opts=pulumi.ResourceOptions(depends_on=[service, *depends_on]))


def _secret(resource: str, name: str, namespace: str, data: dict[str, pulumi.Input[str]],
            depends_on: list[pulumi.Resource]) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        resource,
        metadata={"name": name, "namespace": namespace, "labels": hardening.labels(name, "credentials")},
        type="Opaque",
        string_data=data,
        opts=pulumi.ResourceOptions(depends_on=depends_on, additional_secret_outputs=["stringData", "data"]))


def datastores(settings: Settings, ns: dict[str, k8s.core.v1.Namespace], backups: Backups) -> Datastores:
    """PostgreSQL, Redis, their credentials, and the runtime's and the backup jobs' connection Secrets."""
    data_ns = settings.data_namespace
    postgres_password = random.RandomPassword("postgres-password", length=32, special=False)
    redis_password = random.RandomPassword("redis-password", length=32, special=False)
    _secret("postgres-credentials", POSTGRES, data_ns, {
        "POSTGRES_USER": DB_USER, "POSTGRES_DB": DATABASE, "POSTGRES_PASSWORD": postgres_password.result,
    }, [ns["data"]])
    _secret("redis-credentials", REDIS, data_ns, {"REDIS_PASSWORD": redis_password.result}, [ns["data"]])
    _stateful_set(POSTGRES, settings, postgres_pod(settings, backups.bucket.bucket), settings.postgres_storage,
                  POSTGRES_PORT, [ns["data"], *backups.depends_on])
    _stateful_set(REDIS, settings, redis_pod(settings), settings.redis_storage, REDIS_PORT, [ns["data"]])

    postgres_host = f"{POSTGRES}.{data_ns}.svc.cluster.local"
    redis_host = f"{REDIS}.{data_ns}.svc.cluster.local"
    # RandomPassword.result is a secret output, and so is everything applied to it.
    database_url: pulumi.Output[str] = postgres_password.result.apply(
        lambda p: f"postgresql://{DB_USER}:{p}@{postgres_host}:{POSTGRES_PORT}/{DATABASE}")
    redis_url: pulumi.Output[str] = redis_password.result.apply(lambda p: f"redis://:{p}@{redis_host}:{REDIS_PORT}/0")
    _secret("runtime-credentials", RUNTIME_CREDENTIALS, settings.trading_namespace, {
        "TRADEOPS_DATABASE_URL": database_url,
        "TRADEOPS_REDIS_URL": redis_url,
        "TRADEOPS_FEED_URL": settings.feed_url,
        # Not a secret, but the one environment source a runtime pod has (builders: envFrom this Secret).
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector_endpoint(settings),
    }, [ns["trading"]])
    _secret("backup-datastore-credentials", BACKUP_CREDENTIALS, data_ns, {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url,
    }, [ns["data"]])
    return Datastores(postgres_host=postgres_host, redis_host=redis_host, database_url=database_url,
                      redis_url=redis_url)
