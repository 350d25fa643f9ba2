"""Backups: a private, versioned, KMS-encrypted S3 bucket with lifecycle retention, the credentials path
to it (IRSA in prod, an access key in a Secret in dev), and two CronJobs running the runtime image:
`python -m drills backup create` and the scheduled DR drill `python -m drills run restore-latest`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import hardening
from infra.datastores import BACKUP_CREDENTIALS
from infra.settings import Settings

SERVICE_ACCOUNT = "tradeops-backup"
AWS_CREDENTIALS = "tradeops-backup-aws"
JOB_UID = 10001  # the runtime image's user
BACKUP_COMMAND = ["python", "-m", "drills", "backup", "create"]
DRILL_COMMAND = ["python", "-m", "drills", "run", "restore-latest", "--report-dir", "/reports"]
BACKUP_COMPONENT = "backup"
DRILL_COMPONENT = "dr-drill"


@dataclass
class Backups:
    bucket: aws.s3.Bucket
    role_arn: pulumi.Output[str] | None


def bucket(settings: Settings) -> tuple[aws.s3.Bucket, aws.kms.Key]:
    """The bucket and its key: versioned, encrypted with a rotating KMS key, no public access, TLS only,
    noncurrent versions and old backups expire after the retention period."""
    key = aws.kms.Key("backup-key", description=f"tradeops {settings.environment} backups",
                      enable_key_rotation=True, deletion_window_in_days=30)
    store = aws.s3.Bucket("backups", bucket_prefix=f"{settings.backup_bucket_prefix}-{settings.environment}-",
                          force_destroy=False, tags={"app": "tradeops", "environment": settings.environment})
    aws.s3.BucketOwnershipControls("backups-ownership", bucket=store.id,
                                   rule={"object_ownership": "BucketOwnerEnforced"})
    aws.s3.BucketPublicAccessBlock("backups-public-access", bucket=store.id, block_public_acls=True,
                                   block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    aws.s3.BucketVersioning("backups-versioning", bucket=store.id,
                            versioning_configuration={"status": "Enabled"})
    aws.s3.BucketServerSideEncryptionConfiguration(
        "backups-encryption", bucket=store.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                              "kms_master_key_id": key.arn},
                "bucket_key_enabled": True}])
    days = settings.backup_retention_days
    aws.s3.BucketLifecycleConfiguration(
        "backups-lifecycle", bucket=store.id,
        rules=[{
            "id": "retention",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "expiration": {"days": days},
            "noncurrent_version_expiration": {"noncurrent_days": days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
        }])
    aws.s3.BucketPolicy("backups-tls-only", bucket=store.id, policy=store.arn.apply(lambda arn: json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}],
    })))
    return store, key


def access_policy(bucket_arn: str, key_arn: str) -> str:
    """What the backup and drill jobs may do: read and write objects of this bucket, use its key."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"], "Resource": [bucket_arn]},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
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


def job_pod(settings: Settings, command: list[str], bucket_name: pulumi.Input[str], *, reports: bool) -> Any:
    """Pod spec of a backup or drill job: the runtime image, hardened, credentials only from Secrets."""
    env: list[dict[str, Any]] = [{"name": "TRADEOPS_BACKUP_BUCKET", "value": bucket_name}]
    if settings.s3_endpoint:
        env.append({"name": "TRADEOPS_S3_ENDPOINT", "value": settings.s3_endpoint})
    env_from: list[dict[str, Any]] = [{"secretRef": {"name": BACKUP_CREDENTIALS}}]
    if not settings.uses_irsa:
        env_from.append({"secretRef": {"name": AWS_CREDENTIALS}})
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    if reports:
        mounts.append({"name": "reports", "mountPath": "/reports"})
        volumes.append({"name": "reports", "emptyDir": {"sizeLimit": "64Mi"}})
    return {
        "serviceAccountName": SERVICE_ACCOUNT,
        # The IRSA token is projected through the ServiceAccount; without IRSA there is nothing to mount.
        "automountServiceAccountToken": settings.uses_irsa,
        "restartPolicy": "Never",
        "securityContext": hardening.pod_security(JOB_UID),
        "containers": [{
            "name": "job",
            "image": settings.runtime_image,
            "command": command,
            "env": env,
            "envFrom": env_from,
            "resources": hardening.resources("100m", "256Mi", "1", "1Gi"),
            "securityContext": hardening.container_security(),
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }


def cron_job(resource: str, name: str, component: str, schedule: str, pod: Any, settings: Settings,
             depends_on: list[pulumi.Resource]) -> k8s.batch.v1.CronJob:
    labels = hardening.labels(name, component)
    return k8s.batch.v1.CronJob(
        resource,
        metadata={"name": name, "namespace": settings.data_namespace, "labels": labels},
        spec={
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 5,
            "jobTemplate": {"spec": {
                "backoffLimit": 1,
                "activeDeadlineSeconds": 3600,
                "ttlSecondsAfterFinished": 86400,
                "template": {"metadata": {"labels": labels}, "spec": pod},
            }},
        },
        opts=pulumi.ResourceOptions(depends_on=depends_on))


def backups(settings: Settings, ns: dict[str, k8s.core.v1.Namespace]) -> Backups:
    """The bucket, the credentials path and both CronJobs."""
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
    cron_job("backup-cronjob", "tradeops-backup", BACKUP_COMPONENT, settings.backup_schedule,
             job_pod(settings, BACKUP_COMMAND, store.bucket, reports=False), settings, depends_on)
    cron_job("drill-cronjob", "tradeops-dr-drill", DRILL_COMPONENT, settings.drill_schedule,
             job_pod(settings, DRILL_COMMAND, store.bucket, reports=True), settings, depends_on)
    return Backups(bucket=store, role_arn=role_arn)
