"""The settings of the backup and drill commands as option sets: accepted before the group
(`opsctl backup --bucket b list`) or after the verb (`opsctl backup list --bucket b`). Flags win over
environment variables (how CronJobs pass Secrets), which win over an optional --config YAML of non-secret
settings. See docs/backups-and-drills.md."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Annotated

import typer
import yaml

from drills.config import Settings
from opsctl.errors import ExitCode, OpsctlError
from opsctl.options import option_set

# --config key -> (Settings attribute, environment variable that wins over the file)
CONFIG_KEYS = {"bucket": ("bucket", "TRADEOPS_BACKUP_BUCKET"), "prefix": ("prefix", "TRADEOPS_BACKUP_PREFIX"),
               "endpoint": ("endpoint", "TRADEOPS_S3_ENDPOINT"), "region": ("region", "TRADEOPS_S3_REGION"),
               "sse": ("sse", "TRADEOPS_S3_SSE"), "reportDir": ("report_dir", "TRADEOPS_DRILL_REPORT_DIR"),
               "metricsFile": ("metrics_file", "TRADEOPS_DRILL_METRICS_FILE"),
               "pushgateway": ("pushgateway", "TRADEOPS_PUSHGATEWAY_URL"),
               "policy": ("policy_path", "TRADEOPS_RECOVERY_POLICY"), "workdir": ("workdir", "TRADEOPS_DRILL_WORKDIR")}
PATHS = {"report_dir", "metrics_file", "policy_path", "workdir"}


@option_set
@dataclass
class Storage:
    """Where backups live, the databases they are of, and the recovery policy (retention, objectives)."""

    config: Annotated[pathlib.Path | None, typer.Option(
        help="YAML of non-secret settings (bucket, endpoint, …)", dir_okay=False)] = None
    bucket: Annotated[str | None, typer.Option(help="S3 bucket [TRADEOPS_BACKUP_BUCKET]")] = None
    prefix: Annotated[str | None, typer.Option(help="Key prefix [TRADEOPS_BACKUP_PREFIX, tradeops]")] = None
    endpoint: Annotated[str | None, typer.Option(help="S3 endpoint URL [TRADEOPS_S3_ENDPOINT]")] = None
    database_url: Annotated[str | None, typer.Option(help="Trading database [DATABASE_URL]")] = None
    restore_dsn: Annotated[str | None, typer.Option(help="Server to restore into [TRADEOPS_RESTORE_DSN]")] = None
    redis_url: Annotated[str | None, typer.Option(help="Redis [REDIS_URL]")] = None
    policy: Annotated[pathlib.Path | None, typer.Option(help="Recovery policy YAML [TRADEOPS_RECOVERY_POLICY]")] \
        = None

    def settings(self, drill: Drill | None = None) -> Settings:
        """The drills' settings: flags > environment > --config file > defaults."""
        settings = Settings.from_env()
        if self.config is not None:
            _from_file(settings, self.config)
        flags = {"bucket": self.bucket, "prefix": self.prefix, "endpoint": self.endpoint,
                 "database_url": self.database_url, "restore_dsn": self.restore_dsn, "redis_url": self.redis_url,
                 "policy_path": self.policy}
        if drill is not None:
            flags |= {"report_dir": drill.report_dir, "metrics_file": drill.metrics_file,
                      "pushgateway": drill.pushgateway, "kubeconfig": drill.kubeconfig,
                      "prometheus_url": drill.prometheus_url}
        for attribute, value in flags.items():
            if value is not None:
                setattr(settings, attribute, value)
        return settings


@option_set
@dataclass
class Drill:
    """Where drill reports and metrics go, and the cluster and Prometheus the cluster drills act on."""

    report_dir: Annotated[pathlib.Path | None, typer.Option(help="Drill reports [TRADEOPS_DRILL_REPORT_DIR]")] = None
    metrics_file: Annotated[pathlib.Path | None, typer.Option(
        help="Prometheus textfile [TRADEOPS_DRILL_METRICS_FILE]")] = None
    pushgateway: Annotated[str | None, typer.Option(help="Pushgateway URL [TRADEOPS_PUSHGATEWAY_URL]")] = None
    kubeconfig: Annotated[str | None, typer.Option(
        "--kubeconfig", help="Cluster of the pod-kill and prometheus-loss drills [KUBECONFIG, else in-cluster]")] \
        = None
    prometheus_url: Annotated[str | None, typer.Option(
        help="Prometheus the cluster drills read [TRADEOPS_PROMETHEUS_URL]")] = None


def _from_file(settings: Settings, path: pathlib.Path) -> None:
    """Non-secret settings from a YAML file, where the environment does not set them."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise OpsctlError(ExitCode.USAGE, f"--config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise OpsctlError(ExitCode.USAGE, f"--config {path} is not YAML: {error}") from None
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        raise OpsctlError(ExitCode.USAGE, f"{path}: unknown or secret-bearing keys {unknown} (DSNs, URLs with "
                                          f"credentials and keys come from the environment); allowed: "
                                          f"{sorted(CONFIG_KEYS)}")
    for key, value in raw.items():
        attribute, variable = CONFIG_KEYS[key]
        if os.environ.get(variable):
            continue  # the environment wins over the file
        if attribute in PATHS:
            value = pathlib.Path(value)
        if attribute == "sse" and str(value).lower() == "none":
            value = None
        setattr(settings, attribute, value)
