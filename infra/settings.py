"""Stack settings: what differs between the dev and prod stacks, read from `Pulumi.<stack>.yaml`."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import pulumi

ROOT = pathlib.Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "deploy" / "crds" / "tradingsymbols.yaml"
FLEET_CRD_FILE = ROOT / "deploy" / "crds" / "fleetrollouts.yaml"
OPERATOR_FILE = ROOT / "deploy" / "operator" / "operator.yaml"
RULES_FILE = ROOT / "deploy" / "prometheus" / "tradeops-rules.yaml"
COST_RULES_FILE = ROOT / "deploy" / "prometheus" / "tradeops-cost-rules.yaml"
ALERTMANAGER_FILE = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

CONFIG_NAMESPACE = "tradeops"


@dataclass(frozen=True)
class Settings:
    """Everything a stack may set (camelCase keys under `tradeops:` in the stack file)."""

    environment: str
    operator_image: str
    runtime_image: str
    # Backups, drills, the reports and audit jobs, and the PostgreSQL server (deploy/docker/tools.Dockerfile).
    tools_image: str
    operator_replicas: int = 2
    system_namespace: str = "tradeops-system"
    trading_namespace: str = "trading"
    data_namespace: str = "tradeops-data"
    monitoring_namespace: str = "monitoring"
    storage_class: str = ""
    # WAL archiving to the backup bucket (the point-in-time drill's RPO bound): an idle database still ships
    # a segment at least this often.
    archive_timeout_seconds: int = 30
    postgres_storage: str = "10Gi"
    redis_image: str = "redis:7.4.1-alpine"
    # MLflow with psycopg2 and boto3 (deploy/docker/mlflow.Dockerfile; CD deploys it by digest).
    mlflow_image: str = "ghcr.io/tradeops/tradeops-mlflow:0.1.0"
    redis_storage: str = "2Gi"
    feed_url: str = "ws://market-feed.trading.svc:8765"
    prometheus_stack_version: str = "65.5.1"
    prometheus_retention: str = "30d"  # at least the longest SLO period (checked)
    prometheus_storage: str = "50Gi"
    trace_retention_hours: int = 168
    trace_storage: str = "20Gi"
    log_retention_days: int = 14
    log_storage: str = "50Gi"
    backup_bucket_prefix: str = "tradeops-backups"
    backup_retention_days: int = 30
    backup_schedule: str = "0 1 * * *"
    base_backup_schedule: str = "30 1 * * *"
    redis_backup_schedule: str = "5 * * * *"
    drill_schedule: str = "0 3 * * *"
    pitr_drill_schedule: str = "30 3 * * *"
    # pod-kill, prometheus-loss and redis-loss take trading pods, Prometheus or Redis away: scheduled only where
    # this is on (dev, staging); production runs them by hand in a maintenance window.
    destructive_drills: bool = False
    destructive_drill_schedule: str = "0 4 * * 2"
    s3_endpoint: str = ""
    backtest_namespace: str = "tradeops-backtests"
    dask_operator_version: str = "2026.3.0"
    # Prod uses IRSA (no long-lived keys): the cluster's OIDC provider. Empty means access keys in a Secret.
    oidc_provider_arn: str = ""
    oidc_issuer: str = ""

    @property
    def uses_irsa(self) -> bool:
        return bool(self.oidc_provider_arn and self.oidc_issuer)

    def validate(self) -> Settings:
        """Refuse settings that would deploy something unsafe or broken."""
        if self.environment not in ("dev", "prod"):
            raise ValueError(f"environment must be dev or prod, not {self.environment!r}")
        if self.operator_replicas < 2:
            raise ValueError("the operator runs with kopf peering: at least 2 replicas")
        if bool(self.oidc_provider_arn) != bool(self.oidc_issuer):
            raise ValueError("oidcProviderArn and oidcIssuer go together")
        if self.environment == "prod" and not self.uses_irsa:
            raise ValueError("prod takes backup credentials from IRSA, not access keys")
        if self.environment == "prod" and self.destructive_drills:
            raise ValueError("destructive drills are not scheduled in prod: run them by hand in a maintenance window")
        parts = self.destructive_drill_schedule.split()
        if len(parts) != 5 or not all(part.isdigit() for part in parts[:2]):
            raise ValueError("destructiveDrillSchedule needs a fixed minute and hour (drills are staggered by hours)")
        if not 1 <= self.archive_timeout_seconds <= 3600:
            raise ValueError("archiveTimeoutSeconds must be between 1 and 3600")
        if self.backup_retention_days < 1:
            raise ValueError("backupRetentionDays must be at least 1")
        if self.trace_retention_hours < 1 or self.log_retention_days < 1:
            raise ValueError("traceRetentionHours and logRetentionDays must be at least 1")
        return self


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def from_mapping(values: Mapping[str, Any]) -> Settings:
    """Settings from camelCase keys (strings, as Pulumi config holds them); unknown keys are refused."""
    known = {_camel(f.name): f for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown tradeops settings: {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        field = known[key]
        if field.type == "bool":
            if str(value).lower() not in ("true", "false"):
                raise ValueError(f"{key} is true or false, not {value!r}")
            kwargs[field.name] = str(value).lower() == "true"
        else:
            kwargs[field.name] = int(value) if field.type == "int" else str(value)
    return Settings(**kwargs).validate()


def load() -> Settings:
    """Settings of the stack being deployed."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    values = {}
    for field in fields(Settings):
        value = config.get(_camel(field.name))
        if value is not None:
            values[_camel(field.name)] = value
    return from_mapping(values)
