"""Pulumi program under mocks: the backup bucket is private, encrypted, versioned and expires old
backups; the jobs get credentials the way each stack intends and run the drills' commands."""

from __future__ import annotations

import json

import pytest

from infra import backups
from infra.settings import from_mapping
from tests.unit.infra_harness import STACKS, built, stack_config

BUCKET = "aws:s3/bucket:Bucket"


def only(stack: str, typ: str) -> dict:
    found = built(stack).of_type(typ)
    assert len(found) == 1, typ
    return found[0].inputs


def settings_of(stack: str):
    config = stack_config(stack)
    return from_mapping({k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("tradeops:")})


@pytest.mark.parametrize("stack", STACKS)
def test_no_public_bucket(stack):
    block = only(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    assert "acl" not in only(stack, BUCKET)
    assert only(stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"}


@pytest.mark.parametrize("stack", STACKS)
def test_encryption_on_with_a_rotating_kms_key(stack):
    (rule,) = only(stack, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[
        "rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == "arn:aws:mock:::backup-key"
    assert only(stack, "aws:kms/key:Key")["enableKeyRotation"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_only_tls_reaches_the_bucket(stack):
    policy = json.loads(only(stack, "aws:s3/bucketPolicy:BucketPolicy")["policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("stack", STACKS)
def test_versioning_on_and_retention_from_the_stack(stack):
    assert only(stack, "aws:s3/bucketVersioning:BucketVersioning")["versioningConfiguration"] == {
        "status": "Enabled"}
    (rule,) = only(stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    days = settings_of(stack).backup_retention_days
    assert rule["status"] == "Enabled"
    assert rule["expiration"]["days"] == days
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == days


@pytest.mark.parametrize("stack", STACKS)
def test_job_permissions_are_scoped_to_the_bucket_and_its_key(stack):
    policy = json.loads(only(stack, "aws:iam/policy:Policy")["policy"])
    for statement in policy["Statement"]:
        assert all("*" not in action for action in statement["Action"])
        assert all(resource.startswith("arn:aws:mock:::backup") for resource in statement["Resource"])
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "s3:DeleteObject" not in actions, "backups are never deleted by the jobs (lifecycle does it)"


def test_prod_uses_irsa_and_no_long_lived_keys():
    prod = built("prod")
    assert prod.of_type("aws:iam/accessKey:AccessKey") == []
    trust = json.loads(prod.one("aws:iam/role:Role", "backup-role").inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    (sub,) = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert sub == f"system:serviceaccount:tradeops-data:{backups.SERVICE_ACCOUNT}"
    account = prod.one("kubernetes:core/v1:ServiceAccount", "backup-sa").inputs
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:mock:::backup-role"


def test_dev_keeps_its_access_key_in_a_secret():
    dev = built("dev")
    secret = dev.one("kubernetes:core/v1:Secret", "backup-aws-credentials").inputs
    assert secret["stringData"]["AWS_SECRET_ACCESS_KEY"] == "mock-secret-key"
    assert secret["metadata"]["namespace"] == "tradeops-data"


@pytest.mark.parametrize(("resource", "command"), [("backup-cronjob", backups.BACKUP_COMMAND),
                                                   ("drill-cronjob", backups.DRILL_COMMAND)],
                         ids=["backup", "dr-drill"])
@pytest.mark.parametrize("stack", STACKS)
def test_cronjobs_run_the_drills_commands_with_their_environment(stack, resource, command):
    cron = built(stack).one("kubernetes:batch/v1:CronJob", resource).inputs["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    (container,) = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "drills"]
    assert container["command"] == command
    assert container["image"] == settings_of(stack).runtime_image
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TRADEOPS_BACKUP_BUCKET"].startswith(f"tradeops-backups-{stack}-")
    secrets = [e["secretRef"]["name"] for e in container["envFrom"]]
    assert "tradeops-backup-datastores" in secrets
    assert (backups.AWS_CREDENTIALS in secrets) is (stack == "dev")


@pytest.mark.parametrize("stack", STACKS)
def test_the_jobs_database_secret_holds_the_urls_the_drills_read(stack):
    secret = built(stack).one("kubernetes:core/v1:Secret", "backup-datastore-credentials").inputs["stringData"]
    assert secret["DATABASE_URL"].startswith("postgresql://tradeops:mock-postgres-password@postgres.")
    assert secret["REDIS_URL"].startswith("redis://:mock-redis-password@redis.")


def test_the_drill_writes_its_report_to_a_mounted_directory():
    cron = built("prod").one("kubernetes:batch/v1:CronJob", "drill-cronjob").inputs["spec"]
    (container,) = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    report_dir = container["command"][container["command"].index("--report-dir") + 1]
    assert report_dir in {m["mountPath"] for m in container["volumeMounts"]}
