"""Backups: a private, versioned, KMS-encrypted S3 bucket with lifecycle retention, the credentials path
to it (IRSA in prod, an access key in a Secret in dev; PostgreSQL's WAL archiving uses the same), and the
CronJobs of docs/backups-and-drills.md running the tools image (deploy/docker/tools.Dockerfile): the
PostgreSQL, base and Redis backups, and every drill of `drills/scenarios/`, each carrying its objective from
the recovery policy. The destructive drills (they take trading pods, Redis or Prometheus away) are scheduled
only where the stack says so (`destructiveDrills`, dev); elsewhere they are run by hand (the docs say why)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from infra import hardening
from infra.control_plane import prometheus_url
from infra.settings import ROOT, Settings

SERVICE_ACCOUNT = "tradeops-backup"
CLUSTER_DRILLS_ACCOUNT = "tradeops-drills-cluster"
AWS_CREDENTIALS = "tradeops-backup-aws"
BACKUP_CREDENTIALS = "tradeops-backup-datastores"
"""Secret the backup and drill jobs read: DATABASE_URL and REDIS_URL (datastores.py fills it)."""
JOB_UID = 10001  # the tools image's user
BACKUP_COMPONENT = "backup"
DRILL_COMPONENT = "dr-drill"
CLUSTER_DRILL_COMPONENT = "dr-drill-cluster"
"""Drills that act on the running system through the Kubernetes API (no S3, no database credentials)."""
CLUSTER_DRILL_KINDS = ("pod-kill", "prometheus-loss")
# Drills that start a PostgreSQL server of their own in /tmp: the download (dump or base backup tar) and
# the restored database side by side need up to twice the database, which is at most its volume.
SERVER_DRILL_KINDS = ("restore-latest", "point-in-time")
SCRATCH = "1Gi"
REPORT_DIR = "/reports"
SCENARIOS_DIR = ROOT / "drills" / "scenarios"
RECOVERY_POLICY = ROOT / "policies" / "defaults" / "recovery.yaml"
KEY_PREFIX = "tradeops"
"""The jobs' key prefix in the bucket (TRADEOPS_BACKUP_PREFIX unset): backups/, wal/ and records/ below it."""
RETAINED_ROOTS = ("backups", "wal")
"""What expires after the retention period; records/ follows the RecoveryPolicy instead (infra/reports.py)."""
DRILL = ["python", "-m", "drills"]
BACKUP_COMMAND = [*DRILL, "backup", "create", "--kind", "postgres", "--prune"]
DRILL_COMMAND = [*DRILL, "run", "restore-latest", "--report-dir", REPORT_DIR]


@dataclass(frozen=True)
class Job:
    """One scheduled backup or drill (the table of docs/backups-and-drills.md, "Scheduling")."""

    resource: str
    name: str
    component: str
    command: list[str]
    schedule: str
    drill: str | None = None
    destructive: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    scratch: str = SCRATCH


def drill_command(name: str, *, destructive: bool) -> list[str]:
    return [*DRILL, "run", name, "--report-dir", REPORT_DIR, *(["--allow-destructive"] if destructive else [])]


def scenarios() -> dict[str, dict[str, Any]]:
    """The drills the repository documents (drills/scenarios/*.yaml) by name."""
    found = (yaml.safe_load(path.read_text()) for path in sorted(SCENARIOS_DIR.glob("*.yaml")))
    return {scenario["name"]: scenario for scenario in found}


def objectives() -> dict[str, dict[str, int]]:
    """RTO/RPO per drill from the shipped recovery policy."""
    spec = yaml.safe_load(RECOVERY_POLICY.read_text())["spec"]
    return {name: {k: int(v) for k, v in values.items()} for name, values in spec["objectives"].items()}


def jobs(settings: Settings) -> list[Job]:
    """Every CronJob of this stack: the backups, then one per drill (destructive ones only when the stack
    schedules them)."""
    found = [
        Job("backup-cronjob", "tradeops-backup", BACKUP_COMPONENT, BACKUP_COMMAND, settings.backup_schedule),
        Job("base-backup-cronjob", "tradeops-base-backup", BACKUP_COMPONENT,
            [*DRILL, "backup", "create", "--kind", "base"], settings.base_backup_schedule),
        Job("redis-backup-cronjob", "tradeops-redis-backup", BACKUP_COMPONENT,
            [*DRILL, "backup", "create", "--kind", "redis"], settings.redis_backup_schedule),
    ]
    schedules = {"restore-latest": settings.drill_schedule, "point-in-time": settings.pitr_drill_schedule}
    destructive_runs = 0
    for name, scenario in scenarios().items():
        destructive = bool(scenario.get("destructive"))
        if destructive and not settings.destructive_drills:
            continue
        if name not in schedules:
            # One an hour, never two at once: each takes away something the others measure with.
            schedules[name] = staggered(settings.destructive_drill_schedule, destructive_runs)
            destructive_runs += 1
        resource = "drill-cronjob" if name == "restore-latest" else f"drill-{name}-cronjob"
        cluster = scenario["kind"] in CLUSTER_DRILL_KINDS
        found.append(Job(resource, f"tradeops-drill-{name}", CLUSTER_DRILL_COMPONENT if cluster else DRILL_COMPONENT,
                         drill_command(name, destructive=destructive),
                         schedules[name], drill=name,
                         destructive=destructive,
                         extra_env={"TRADEOPS_PROMETHEUS_URL": prometheus_url(settings)} if cluster else {},
                         scratch=doubled(settings.postgres_storage) if scenario["kind"] in SERVER_DRILL_KINDS
                         else SCRATCH))
    return found


def doubled(quantity: str) -> str:
    """Twice a Kubernetes quantity written as an integer and a binary suffix ("10Gi" -> "20Gi")."""
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)", quantity)
    if match is None:
        raise ValueError(f"postgresStorage {quantity!r}: write it as an integer and Ki, Mi, Gi or Ti")
    return f"{2 * int(match.group(1))}{match.group(2)}"


def staggered(schedule: str, hours: int) -> str:
    """A cron schedule `hours` later (its minute and hour fields are plain numbers: Settings checks)."""
    minute, hour, rest = schedule.split(" ", 2)
    return f"{minute} {(int(hour) + hours) % 24} {rest}"


def manual_drills(settings: Settings) -> list[str]:
    """Documented drills this stack does not schedule (run by hand: docs/backups-and-drills.md says why)."""
    scheduled = {job.drill for job in jobs(settings)}
    return sorted(set(scenarios()) - scheduled)


@dataclass
class Backups:
    bucket: aws.s3.Bucket
    role_arn: pulumi.Output[str] | None
    depends_on: list[pulumi.Resource]
    """The credentials path to the bucket (ServiceAccount, access-key Secret): what a pod using it waits for."""


def records_lifecycle_rule(prefix: str = KEY_PREFIX) -> dict[str, Any]:
    """The backups bucket's rule for archived records, from the RecoveryPolicy's `records`: standard storage
    for the accessible years, archive storage after; noncurrent versions expire once their lock has ended."""
    spec = yaml.safe_load(RECOVERY_POLICY.read_text())["spec"].get("records") or {}
    keep, accessible = int(spec.get("keepYears", 6)), int(spec.get("accessibleYears", 2))
    rule: dict[str, Any] = {"id": "records", "status": "Enabled", "filter": {"prefix": f"{prefix}/records/"},
                            "noncurrent_version_expiration": {"noncurrent_days": keep * 366 + 31}}
    if accessible < keep:
        rule["transitions"] = [{"days": accessible * 365, "storage_class": "GLACIER"}]
    return rule


def bucket(settings: Settings) -> tuple[aws.s3.Bucket, aws.kms.Key]:
    """The bucket and its key: versioned, Object Lock on (archived records are written under a compliance
    lock, and refused on a bucket without it), encrypted with a rotating KMS key, no public access, TLS only;
    backups and WAL expire after the retention period, archived records as the RecoveryPolicy says."""
    key = aws.kms.Key("backup-key", description=f"tradeops {settings.environment} backups",
                      enable_key_rotation=True, deletion_window_in_days=30)
    store = aws.s3.Bucket("backups", bucket_prefix=f"{settings.backup_bucket_prefix}-{settings.environment}-",
                          force_destroy=False, object_lock_enabled=True,
                          tags={"app": "tradeops", "environment": settings.environment})
    aws.s3.BucketOwnershipControls("backups-ownership", bucket=store.id,
                                   rule={"object_ownership": "BucketOwnerEnforced"})
    aws.s3.BucketPublicAccessBlock("backups-public-access", bucket=store.id, block_public_acls=True,
                                   block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    versioning = aws.s3.BucketVersioning("backups-versioning", bucket=store.id,
                            versioning_configuration={"status": "Enabled"})
    aws.s3.BucketServerSideEncryptionConfiguration(
        "backups-encryption", bucket=store.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                              "kms_master_key_id": key.arn},
                "bucket_key_enabled": True}])
    days = settings.backup_retention_days
    retention = [{
        "id": f"retention-{root}",
        "status": "Enabled",
        "filter": {"prefix": f"{KEY_PREFIX}/{root}/"},
        "expiration": {"days": days},
        "noncurrent_version_expiration": {"noncurrent_days": days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
    } for root in RETAINED_ROOTS]
    aws.s3.BucketLifecycleConfiguration(
        "backups-lifecycle", bucket=store.id,
        rules=[*retention, records_lifecycle_rule()],
        opts=pulumi.ResourceOptions(depends_on=[versioning]))
    aws.s3.BucketPolicy("backups-tls-only", bucket=store.id, policy=store.arn.apply(lambda arn: json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}],
    })))
    return store, key


def access_policy(bucket_arn: str, key_arn: str) -> str:
    """What the backup, drill and report jobs may do: read and write objects of this bucket, use its key;
    the records archive also reads the bucket's Object Lock and writes locked, tagged objects."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions",
                                       "s3:GetBucketObjectLockConfiguration"], "Resource": [bucket_arn]},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject",
                                       "s3:PutObjectRetention", "s3:PutObjectTagging"],
         "Resource": [f"{bucket_arn}/*"]},
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], "Resource": [key_arn]},
    ]})


def irsa_trust(settings: Settings) -> str:
    """Only the backup ServiceAccount of the data namespace may assume the role."""
    issuer = settings.oidc_issuer.removeprefix("https://")
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": settings.oidc_provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{issuer}:sub": f"system:serviceaccount:{settings.data_namespace}:{SERVICE_ACCOUNT}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }},
    }]})


def s3_access(settings: Settings, bucket_name: pulumi.Input[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, envFrom) that give a pod of the backup ServiceAccount the bucket: its name, the endpoint, and the
    access key where there is no IRSA. The jobs and PostgreSQL's archive_command read the same."""
    env: list[dict[str, Any]] = [{"name": "TRADEOPS_BACKUP_BUCKET", "value": bucket_name}]
    if settings.s3_endpoint:
        env.append({"name": "TRADEOPS_S3_ENDPOINT", "value": settings.s3_endpoint})
    env_from: list[dict[str, Any]] = [] if settings.uses_irsa else [{"secretRef": {"name": AWS_CREDENTIALS}}]
    return env, env_from


def job_pod(settings: Settings, job: Job, bucket_name: pulumi.Input[str]) -> Any:
    """Pod spec of a backup or drill job: the tools image, hardened, credentials only from Secrets. Drills on
    the running system get the Kubernetes API (their own ServiceAccount) and Prometheus, and no S3 or
    database credentials."""
    cluster = job.component == CLUSTER_DRILL_COMPONENT
    env: list[dict[str, Any]] = []
    env_from: list[dict[str, Any]] = []
    if not cluster:
        env, env_from = s3_access(settings, bucket_name)
        env_from.insert(0, {"secretRef": {"name": BACKUP_CREDENTIALS}})
    env += [{"name": key, "value": value} for key, value in job.extra_env.items()]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": job.scratch}}]
    if job.drill is not None:
        mounts.append({"name": "reports", "mountPath": REPORT_DIR})
        volumes.append({"name": "reports", "emptyDir": {"sizeLimit": "64Mi"}})
    return {
        "serviceAccountName": CLUSTER_DRILLS_ACCOUNT if cluster else SERVICE_ACCOUNT,
        # The IRSA token is projected through the ServiceAccount; the cluster drills need their API token.
        "automountServiceAccountToken": cluster or settings.uses_irsa,
        "restartPolicy": "Never",
        "securityContext": hardening.pod_security(JOB_UID),
        "containers": [{
            "name": "job",
            "image": settings.tools_image,
            "command": job.command,
            "env": env,
            "envFrom": env_from,
            "resources": hardening.resources("100m", "256Mi", "1", "1Gi"),
            "securityContext": hardening.container_security(),
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }


def cron_job(job: Job, pod: Any, settings: Settings, depends_on: list[pulumi.Resource]) -> k8s.batch.v1.CronJob:
    labels = hardening.labels(job.name, job.component)
    annotations: dict[str, str] = {}
    if job.drill is not None:
        # The objective the drill is judged against (the drill reads the same policy and exits 7 on a miss).
        labels["tradeops.io/drill"] = job.drill
        objective = objectives().get(job.drill, {})
        annotations = {f"tradeops.io/{key.removesuffix('Seconds')}-seconds": str(value)
                       for key, value in objective.items()}
    return k8s.batch.v1.CronJob(
        job.resource,
        metadata={"name": job.name, "namespace": settings.data_namespace, "labels": labels,
                  "annotations": annotations},
        spec={
            "schedule": job.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 5,
            "jobTemplate": {"spec": {
                "backoffLimit": 0 if job.destructive else 1,
                "activeDeadlineSeconds": 3600,
                "ttlSecondsAfterFinished": 86400,
                "template": {"metadata": {"labels": labels}, "spec": pod},
            }},
        },
        opts=pulumi.ResourceOptions(depends_on=depends_on))


def cluster_drill_rules(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """What the cluster drills may do, per namespace: pod-kill deletes trading pods and watches their
    Deployments; prometheus-loss reads a TradingSymbol and scales the Prometheus StatefulSet."""
    read = ["get", "list", "watch"]
    return {
        settings.trading_namespace: [
            {"apiGroups": [""], "resources": ["pods"], "verbs": [*read, "delete"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": read},
            {"apiGroups": ["trading.tradeops.io"], "resources": ["tradingsymbols"], "verbs": read},
        ],
        settings.monitoring_namespace: [
            {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": read},
            {"apiGroups": ["apps"], "resources": ["statefulsets/scale"], "verbs": ["get", "patch", "update"]},
        ],
    }


def cluster_drill_access(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> list[pulumi.Resource]:
    """The cluster drills' ServiceAccount and its Roles (namespaced: nothing cluster-wide)."""
    account = k8s.core.v1.ServiceAccount(
        "drills-cluster-sa",
        metadata={"name": CLUSTER_DRILLS_ACCOUNT, "namespace": settings.data_namespace,
                  "labels": hardening.labels(CLUSTER_DRILLS_ACCOUNT, CLUSTER_DRILL_COMPONENT)},
        automount_service_account_token=False, opts=pulumi.ResourceOptions(depends_on=[ns["data"]]))
    created: list[pulumi.Resource] = [account]
    for namespace, rules in cluster_drill_rules(settings).items():
        meta = {"name": CLUSTER_DRILLS_ACCOUNT, "namespace": namespace,
                "labels": hardening.labels(CLUSTER_DRILLS_ACCOUNT, CLUSTER_DRILL_COMPONENT)}
        role = k8s.rbac.v1.Role(f"drills-cluster-role-{namespace}", metadata=meta, rules=rules,
                                opts=pulumi.ResourceOptions(depends_on=list(ns.values())))
        created.append(k8s.rbac.v1.RoleBinding(
            f"drills-cluster-binding-{namespace}", metadata=meta,
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": CLUSTER_DRILLS_ACCOUNT},
            subjects=[{"kind": "ServiceAccount", "name": CLUSTER_DRILLS_ACCOUNT,
                       "namespace": settings.data_namespace}],
            opts=pulumi.ResourceOptions(depends_on=[role])))
    return created


def backup_access(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> Backups:
    """The bucket and the credentials path to it (the jobs and PostgreSQL's WAL archiving share it)."""
    store, key = bucket(settings)
    policy = aws.iam.Policy("backup-access", description="tradeops backup jobs: this bucket and its key",
                            policy=pulumi.Output.all(store.arn, key.arn).apply(lambda a: access_policy(a[0], a[1])))
    annotations: dict[str, pulumi.Input[str]] = {}
    role_arn: pulumi.Output[str] | None = None
    depends_on: list[pulumi.Resource] = [ns["data"]]
    if settings.uses_irsa:
        role = aws.iam.Role("backup-role", assume_role_policy=irsa_trust(settings))
        aws.iam.RolePolicyAttachment("backup-role-access", role=role.name, policy_arn=policy.arn)
        role_arn = role.arn
        annotations["eks.amazonaws.com/role-arn"] = role.arn
    else:
        user = aws.iam.User("backup-user", tags={"app": "tradeops", "environment": settings.environment})
        aws.iam.UserPolicyAttachment("backup-user-access", user=user.name, policy_arn=policy.arn)
        access_key = aws.iam.AccessKey("backup-user-key", user=user.name)
        depends_on.append(k8s.core.v1.Secret(
            "backup-aws-credentials",
            metadata={"name": AWS_CREDENTIALS, "namespace": settings.data_namespace,
                      "labels": hardening.labels(AWS_CREDENTIALS, "credentials")},
            type="Opaque",
            string_data={"AWS_ACCESS_KEY_ID": access_key.id, "AWS_SECRET_ACCESS_KEY": access_key.secret,
                         "AWS_DEFAULT_REGION": aws.config.region or "us-east-1"},
            opts=pulumi.ResourceOptions(depends_on=[ns["data"]], additional_secret_outputs=["stringData", "data"])))
    depends_on.append(k8s.core.v1.ServiceAccount(
        "backup-sa",
        metadata={"name": SERVICE_ACCOUNT, "namespace": settings.data_namespace, "annotations": annotations,
                  "labels": hardening.labels(SERVICE_ACCOUNT, BACKUP_COMPONENT)},
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(depends_on=[ns["data"]])))
    return Backups(bucket=store, role_arn=role_arn, depends_on=depends_on)


def scheduled_jobs(settings: Settings, ns: dict[str, k8s.core.v1.Namespace], access: Backups) -> None:
    """Every CronJob of `jobs(settings)`; the cluster drills' access only when one is scheduled."""
    planned = jobs(settings)
    cluster: list[pulumi.Resource] = []
    if any(job.component == CLUSTER_DRILL_COMPONENT for job in planned):
        cluster = cluster_drill_access(settings, ns)
    for job in planned:
        depends_on = cluster if job.component == CLUSTER_DRILL_COMPONENT else access.depends_on
        cron_job(job, job_pod(settings, job, access.bucket.bucket), settings, [ns["data"], *depends_on])
