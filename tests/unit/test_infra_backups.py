"""Pulumi program under mocks: the backup bucket is private, encrypted, versioned and expires old
backups; the jobs get credentials the way each stack intends and run the drills' commands."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
import yaml

from audit import archive
from drills import manifest
from infra import backups, datastores
from infra.settings import from_mapping
from tests.unit.infra_harness import ROOT, STACKS, built, stack_config

DOCS = (ROOT / "docs" / "backups-and-drills.md").read_text()
CRONJOB = "kubernetes:batch/v1:CronJob"

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
    rules = only(stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    days = settings_of(stack).backup_retention_days
    retention = [rule for rule in rules if rule["id"] != "records"]
    assert {rule["filter"]["prefix"] for rule in retention} == {"tradeops/backups/", "tradeops/wal/"}
    for rule in retention:
        assert rule["status"] == "Enabled"
        assert rule["expiration"]["days"] == days
        assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == days


def rules_matching(rules: list[dict], key: str) -> list[str]:
    return [rule["id"] for rule in rules if key.startswith(rule["filter"]["prefix"])]


@pytest.mark.parametrize("stack", STACKS)
def test_each_object_the_jobs_write_falls_under_its_own_rule(stack):
    """Backups and WAL expire after the stack's retention; an archived month of the audit log is never
    expired by it (it is kept the RecoveryPolicy's years, under Object Lock)."""
    rules = only(stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    prefix = backups.KEY_PREFIX
    assert rules_matching(rules, manifest.backup_prefix(prefix, manifest.Kind.POSTGRES, "postgres-1") + "x") == [
        "retention-backups"]
    assert rules_matching(rules, manifest.wal_key(prefix, "000000010000000000000001")) == ["retention-wal"]
    record = archive.archive_key(prefix, datetime.date(2026, 1, 1))
    assert rules_matching(rules, record) == ["records"]
    (records,) = [rule for rule in rules if rule["id"] == "records"]
    assert "expiration" not in records, "current archived records are never expired by a rule"


@pytest.mark.parametrize("stack", STACKS)
def test_bucket_has_object_lock_for_archived_records(stack):
    assert only(stack, BUCKET)["objectLockEnabled"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_job_permissions_are_scoped_to_the_bucket_and_its_key(stack):
    policy = json.loads(only(stack, "aws:iam/policy:Policy")["policy"])
    for statement in policy["Statement"]:
        assert all("*" not in action for action in statement["Action"])
        assert all(resource.startswith("arn:aws:mock:::backup") for resource in statement["Resource"])
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "s3:DeleteObject" not in actions, "backups are never deleted by the jobs (lifecycle does it)"
    # What `opsctl audit archive` calls (audit/archive.py): the lock check, then a locked, tagged put.
    assert {"s3:GetBucketObjectLockConfiguration", "s3:PutObjectRetention", "s3:PutObjectTagging"} <= actions


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
    assert container["image"] == settings_of(stack).tools_image
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


@pytest.mark.parametrize("stack", STACKS)
def test_the_drills_that_start_a_server_have_scratch_for_two_copies_of_the_database(stack):
    # restore-latest (dump + restored database) and point-in-time (base backup tar + unpacked server) in /tmp.
    storage = settings_of(stack).postgres_storage
    number, unit = re.fullmatch(r"(\d+)(\w+)", storage).groups()
    limits = {name: {v["name"]: v["emptyDir"]["sizeLimit"] for v in job["spec"]["jobTemplate"]["spec"]["template"]
                     ["spec"]["volumes"]}["tmp"] for name, job in cron_jobs(stack).items()}
    assert limits.pop("tradeops-drill-restore-latest") == limits.pop("tradeops-drill-point-in-time") == \
        f"{2 * int(number)}{unit}"
    assert set(limits.values()) == {"1Gi"}
    with pytest.raises(ValueError, match="integer and Ki, Mi, Gi or Ti"):
        backups.doubled("1.5Gi")


def cron_jobs(stack: str) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in built(stack).of_type(CRONJOB)
            if r.inputs["metadata"]["labels"]["app.kubernetes.io/component"] in ("backup", "dr-drill",
                                                                                 "dr-drill-cluster")}


def command_of(job: dict[str, Any]) -> list[str]:
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return list(container["command"])


def documented_drills() -> list[str]:
    """The drills the docs' table lists (first column, in backticks)."""
    table = DOCS.split("| drill | what it does |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([a-z-]+)`", table, flags=re.MULTILINE)


def test_the_docs_table_lists_every_scenario():
    assert sorted(documented_drills()) == sorted(backups.scenarios())


@pytest.mark.parametrize("stack", STACKS)
def test_every_documented_drill_is_scheduled_or_manual_for_a_stated_reason(stack):
    jobs = cron_jobs(stack)
    scheduled = {job["metadata"]["labels"].get("tradeops.io/drill") for job in jobs.values()} - {None}
    manual = set(backups.manual_drills(settings_of(stack)))
    assert scheduled | manual == set(documented_drills())
    assert not scheduled & manual
    for drill in manual:  # only the destructive ones, and the docs say why they are run by hand
        assert backups.scenarios()[drill].get("destructive") is True
        scheduling = DOCS.split("## Scheduling", 1)[1].split("\n## ", 1)[0]
        assert f"`{drill}`" in scheduling
        assert "by hand" in scheduling
    for drill in scheduled:
        (job,) = [j for j in jobs.values() if j["metadata"]["labels"].get("tradeops.io/drill") == drill]
        assert command_of(job)[:5] == ["python", "-m", "drills", "run", drill]


def test_dev_schedules_every_drill_and_prod_none_of_the_destructive_ones():
    assert backups.manual_drills(settings_of("dev")) == []
    assert backups.manual_drills(settings_of("prod")) == ["pod-kill", "prometheus-loss", "redis-loss"]
    destructive = [job for job in cron_jobs("dev").values() if "--allow-destructive" in command_of(job)]
    assert {job["metadata"]["labels"]["tradeops.io/drill"] for job in destructive} == {
        "pod-kill", "prometheus-loss", "redis-loss"}
    assert all(job["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0 for job in destructive)
    # Never two at once: each takes away something another measures with.
    assert sorted(job["spec"]["schedule"] for job in destructive) == ["0 4 * * 2", "0 5 * * 2", "0 6 * * 2"]


def test_a_destructive_schedule_that_cannot_be_staggered_is_refused():
    config = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("tradeops:")}
    with pytest.raises(ValueError, match="destructiveDrillSchedule"):
        from_mapping({**config, "destructiveDrillSchedule": "*/5 * * * *"})


@pytest.mark.parametrize("stack", STACKS)
def test_each_drill_carries_its_objective_from_the_recovery_policy(stack):
    policy = yaml.safe_load((ROOT / "policies" / "defaults" / "recovery.yaml").read_text())["spec"]["objectives"]
    drills = [job for job in cron_jobs(stack).values() if "tradeops.io/drill" in job["metadata"]["labels"]]
    assert drills
    for job in drills:
        objective = policy[job["metadata"]["labels"]["tradeops.io/drill"]]
        annotations = job["metadata"]["annotations"]
        assert annotations["tradeops.io/rto-seconds"] == str(objective["rtoSeconds"])
        assert annotations["tradeops.io/rpo-seconds"] == str(objective["rpoSeconds"])


@pytest.mark.parametrize("stack", STACKS)
def test_the_documented_backup_schedule_runs(stack):
    commands = [" ".join(command_of(job)) for job in cron_jobs(stack).values()]
    for documented in ("python -m drills backup create --kind postgres --prune",
                       "python -m drills backup create --kind base", "python -m drills backup create --kind redis",
                       "python -m drills run restore-latest", "python -m drills run point-in-time"):
        assert documented in DOCS
        assert any(command.startswith(documented) for command in commands), documented


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_drills_get_only_namespaced_api_access_and_no_s3_or_database_secrets(stack):
    built_stack = built(stack)
    jobs = [job for job in cron_jobs(stack).values()
            if job["metadata"]["labels"]["app.kubernetes.io/component"] == "dr-drill-cluster"]
    roles = built_stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert not [r for r in built_stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
                if r.inputs["metadata"]["name"] == backups.CLUSTER_DRILLS_ACCOUNT]
    if stack == "prod":
        assert jobs == []
        assert [r for r in roles if r.name.startswith("drills-cluster")] == []
        return
    assert len(jobs) == 2
    for job in jobs:
        spec = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert spec["serviceAccountName"] == backups.CLUSTER_DRILLS_ACCOUNT
        assert container["envFrom"] == []
        assert [e["name"] for e in container["env"]] == ["TRADEOPS_PROMETHEUS_URL"]
    rules = {r.inputs["metadata"]["namespace"]: r.inputs["rules"] for r in roles if r.name.startswith("drills-cluster")}
    assert {"delete"} == {verb for rule in rules["trading"] for verb in rule["verbs"]} - {"get", "list", "watch"}
    assert any("statefulsets/scale" in rule["resources"] for rule in rules["monitoring"])


@pytest.mark.parametrize("stack", STACKS)
def test_postgres_archives_wal_to_the_backup_bucket_as_the_drills_expect(stack):
    sts = built(stack).one("kubernetes:apps/v1:StatefulSet", "postgres").inputs["spec"]["template"]["spec"]
    (container,) = sts["containers"]
    flags = dict(arg.split("=", 1) for arg in container["args"] if "=" in arg)
    assert flags == {"wal_level": "replica", "archive_mode": "on", "archive_timeout": "30",
                     "archive_command": "python -m drills.wal_archive push %p %f"}
    # The docs recommend the same settings (the bucket and prefix come from the environment here).
    for line in ("wal_level = replica", "archive_mode = on", "archive_timeout = 30",
                 "archive_command = 'python -m drills.wal_archive push"):
        assert line in DOCS, line
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TRADEOPS_BACKUP_BUCKET"].startswith(f"tradeops-backups-{stack}-")
    secrets = [e["secretRef"]["name"] for e in container["envFrom"]]
    assert (backups.AWS_CREDENTIALS in secrets) is (stack == "dev")
    assert sts["serviceAccountName"] == backups.SERVICE_ACCOUNT
    assert sts["automountServiceAccountToken"] is (stack == "prod")  # the IRSA token
    assert container["image"] == settings_of(stack).tools_image
    assert datastores.wal_archiving(settings_of(stack))["archive_timeout"] == "30"
