"""Configuration of the backup and drill commands: flags first, then environment variables (which is how
Kubernetes CronJobs pass Secrets). Nothing secret is ever read from a file here."""

from __future__ import annotations

import os
import pathlib
import shlex
import sys
from dataclasses import dataclass, field

from drills.errors import DrillsError, Exit
from drills.s3 import S3Settings

ENV = {
    "TRADEOPS_S3_ENDPOINT": "S3 endpoint URL (unset: AWS)",
    "TRADEOPS_S3_REGION": "S3 region (us-east-1)",
    "TRADEOPS_BACKUP_BUCKET": "bucket of backups and archived WAL (required)",
    "TRADEOPS_BACKUP_PREFIX": "key prefix inside the bucket (tradeops)",
    "TRADEOPS_S3_SSE": "server-side encryption requested: AES256 (default), aws:kms, or none",
    "TRADEOPS_S3_KMS_KEY_ID": "KMS key for aws:kms",
    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY": "S3 credentials (from a Secret; or an IAM role)",
    "DATABASE_URL": "the trading database (libpq conninfo or URL) to back up and compare against",
    "TRADEOPS_RESTORE_DSN": "server where restores create new databases (default: `backup restore` DATABASE_URL's "
                            "server, the restore-latest drill a scratch server of its own)",
    "REDIS_URL": "the Redis to snapshot, and the one the redis-loss drill empties",
    "TRADEOPS_DRILL_REPORT_DIR": "where drill reports (JSON + Markdown) go (./drill-reports)",
    "TRADEOPS_DRILL_METRICS_FILE": "Prometheus textfile the drill metrics are written to",
    "TRADEOPS_PUSHGATEWAY_URL": "Pushgateway the drill metrics are pushed to",
    "TRADEOPS_RECOVERY_POLICY": "recovery policy YAML (default: the packaged policies/defaults/recovery.yaml)",
    "TRADEOPS_PG_BIN": "directory of pg_dump/pg_restore/pg_basebackup/pg_ctl",
    "TRADEOPS_WAL_PYTHON": "interpreter (and arguments) the restore_command of a PITR restore runs",
    "TRADEOPS_DRILL_WORKDIR": "scratch directory for downloads and recovered servers (system temp)",
    "KUBECONFIG": "cluster of the pod-kill and prometheus-loss drills (unset: in-cluster service account)",
    "TRADEOPS_PROMETHEUS_URL": "Prometheus the pod-kill and prometheus-loss drills read",
}


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass
class Settings:
    bucket: str | None = None
    prefix: str = "tradeops"
    endpoint: str | None = None
    region: str = "us-east-1"
    sse: str | None = "AES256"
    kms_key_id: str | None = None
    database_url: str | None = None
    restore_dsn: str | None = None
    redis_url: str | None = None
    report_dir: pathlib.Path = pathlib.Path("drill-reports")
    metrics_file: pathlib.Path | None = None
    pushgateway: str | None = None
    policy_path: pathlib.Path | None = None
    wal_python: list[str] = field(default_factory=lambda: [sys.executable])
    workdir: pathlib.Path | None = None
    kubeconfig: str | None = None
    prometheus_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        sse = _env("TRADEOPS_S3_SSE") or "AES256"
        return cls(
            bucket=_env("TRADEOPS_BACKUP_BUCKET"),
            prefix=_env("TRADEOPS_BACKUP_PREFIX") or "tradeops",
            endpoint=_env("TRADEOPS_S3_ENDPOINT"),
            region=_env("TRADEOPS_S3_REGION") or "us-east-1",
            sse=None if sse.lower() == "none" else sse,
            kms_key_id=_env("TRADEOPS_S3_KMS_KEY_ID"),
            database_url=_env("DATABASE_URL"),
            restore_dsn=_env("TRADEOPS_RESTORE_DSN"),
            redis_url=_env("REDIS_URL"),
            report_dir=pathlib.Path(_env("TRADEOPS_DRILL_REPORT_DIR") or "drill-reports"),
            metrics_file=pathlib.Path(p) if (p := _env("TRADEOPS_DRILL_METRICS_FILE")) else None,
            pushgateway=_env("TRADEOPS_PUSHGATEWAY_URL"),
            policy_path=pathlib.Path(p) if (p := _env("TRADEOPS_RECOVERY_POLICY")) else None,
            wal_python=shlex.split(_env("TRADEOPS_WAL_PYTHON") or shlex.quote(sys.executable)),
            workdir=pathlib.Path(p) if (p := _env("TRADEOPS_DRILL_WORKDIR")) else None,
            kubeconfig=_env("KUBECONFIG"),
            prometheus_url=_env("TRADEOPS_PROMETHEUS_URL"),
        )

    def s3(self) -> S3Settings:
        if not self.bucket:
            raise DrillsError(Exit.USAGE, "no backup bucket: set TRADEOPS_BACKUP_BUCKET or pass --bucket")
        return S3Settings(bucket=self.bucket, prefix=self.prefix, endpoint=self.endpoint, region=self.region,
                          sse=self.sse, kms_key_id=self.kms_key_id)

    def need_database(self) -> str:
        if not self.database_url:
            raise DrillsError(Exit.USAGE, "no database: set DATABASE_URL or pass --database-url")
        return self.database_url

    def restore_server(self) -> str:
        dsn = self.restore_dsn or self.database_url
        if not dsn:
            raise DrillsError(Exit.USAGE, "no server to restore into: set TRADEOPS_RESTORE_DSN or DATABASE_URL")
        return dsn

    def need_redis(self) -> str:
        if not self.redis_url:
            raise DrillsError(Exit.USAGE, "no Redis: set REDIS_URL or pass --redis-url")
        return self.redis_url
