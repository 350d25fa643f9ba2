"""The whole program: one function a stack (or a test, under mocks) calls with its settings."""

from __future__ import annotations

import pulumi

from infra.alerting import alerting
from infra.backups import backup_access, scheduled_jobs
from infra.control_plane import control_plane, namespaces
from infra.dask_operator import dask_operator
from infra.datastores import POSTGRES_PORT, REDIS_PORT, datastores
from infra.log_shipping import log_shipping
from infra.mlflow_tracking import mlflow_tracking
from infra.monitoring import monitoring
from infra.network_policies import network_policies
from infra.portfolio_risk import portfolio_risk
from infra.reports import reports
from infra.settings import Settings
from infra.tracing import tracing


def build(settings: Settings) -> dict[str, pulumi.Input[str] | None]:
    """Provision everything; returns the stack outputs."""
    ns = namespaces(settings)
    control_plane(settings, ns)
    store = backup_access(settings, ns)
    stores = datastores(settings, ns, store)
    mon = monitoring(settings, ns)
    alerting(settings, ns)
    traces = tracing(settings, ns)
    logs = log_shipping(settings, ns)
    scheduled_jobs(settings, ns, store)
    network_policies(settings, ns)
    portfolio_risk(settings, ns)
    reports(settings, ns, stores.database_url, store)
    registry = mlflow_tracking(settings, ns, stores.database_url, store)
    backtests = dask_operator(settings)
    return {
        "environment": settings.environment,
        "systemNamespace": settings.system_namespace,
        "tradingNamespace": settings.trading_namespace,
        "dataNamespace": settings.data_namespace,
        "monitoringNamespace": settings.monitoring_namespace,
        "postgresEndpoint": f"{stores.postgres_host}:{POSTGRES_PORT}",
        "redisEndpoint": f"{stores.redis_host}:{REDIS_PORT}",
        "prometheusUrl": mon.prometheus_url,
        "grafanaUrl": mon.grafana_url,
        "traceCollectorUrl": traces,
        "opensearchUrl": logs,
        "backupBucket": store.bucket.bucket,
        "backupRoleArn": store.role_arn,
        "backtestNamespace": backtests.namespace.metadata["name"],
        "mlflowTrackingUri": registry,
    }
