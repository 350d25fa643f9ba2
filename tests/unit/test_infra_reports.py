"""The reports' and audit trail's cluster objects (infra/reports.py builders): the recorder only reads, jobs
are hardened and get the database URL only from a Secret, the records rule follows the RecoveryPolicy."""

from __future__ import annotations

import shlex

import pytest

from infra import backups, reports
from infra.settings import from_mapping
from policies.loader import load_dir
from tests.unit.infra_harness import STACKS, built, is_secret

SETTINGS = from_mapping({"environment": "dev", "operatorImage": "ghcr.io/tradeops/operator:1",
                         "runtimeImage": "ghcr.io/tradeops/runtime:1", "toolsImage": "ghcr.io/tradeops/tools:1"})


def test_the_recorder_only_lists_and_watches_what_it_records():
    rules = reports.recorder_rules()
    assert {verb for rule in rules for verb in rule["verbs"]} == {"get", "list", "watch"}
    assert {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]} == {
        ("trading.tradeops.io", "tradingsymbols"), ("apps", "controllerrevisions"), ("", "events")}


@pytest.mark.parametrize(("command", "recorder"), [(reports.RECORDER_COMMAND, True),
                                                   (reports.ARCHIVE_COMMAND, False),
                                                   (reports.report_command("cost"), False)],
                         ids=["recorder", "archive", "report"])
def test_pods_are_hardened_and_take_credentials_only_from_secrets(command, recorder):
    pod = reports.pod(SETTINGS, command, "bucket", recorder=recorder, reports_volume=True)
    container, = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["envFrom"][0] == {"secretRef": {"name": reports.CREDENTIALS}}
    assert all("secretRef" in source for source in container["envFrom"])
    assert not [e for e in container["env"] if "DATABASE" in e["name"]]
    # Only the recorder talks to the API (dev has no IRSA token to project either).
    assert pod["automountServiceAccountToken"] is recorder
    assert container["resources"]["limits"]


@pytest.mark.parametrize("report", sorted(reports.SCHEDULES))
def test_report_jobs_run_opsctl_into_a_dated_directory(report):
    shell = reports.report_command(report)
    assert shell[:2] == ["sh", "-c"]
    words = shlex.split(shell[2])
    assert words[:4] == ["exec", "opsctl", "report", report]
    assert words[words.index("--out") + 1].startswith(f"/reports/{report}/")


def test_records_rule_follows_the_recovery_policy():
    records = load_dir().recovery["default"].records
    rule = backups.records_lifecycle_rule("tradeops")
    assert rule["filter"] == {"prefix": "tradeops/records/"}
    assert rule["transitions"] == [{"days": records.accessible_years * 365, "storage_class": "GLACIER"}]
    assert rule["noncurrent_version_expiration"]["noncurrent_days"] > records.keep_years * 365


DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRONJOB = "kubernetes:batch/v1:CronJob"
JOBS = ["report-performance", "report-compliance", "report-cost", "records-archive"]


def job_pod(stack, job):
    return built(stack).one(CRONJOB, job).inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_runs_the_recorder_and_every_report_job(stack):
    recorder = built(stack).one(DEPLOYMENT, "audit-recorder").inputs["spec"]["template"]["spec"]
    assert recorder["containers"][0]["command"] == reports.RECORDER_COMMAND
    assert recorder["serviceAccountName"] == reports.RECORDER
    assert {r.name for r in built(stack).of_type(CRONJOB)} >= set(JOBS)
    assert job_pod(stack, "records-archive")["containers"][0]["command"] == reports.ARCHIVE_COMMAND
    binding = built(stack).one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
                               "audit-recorder-binding").inputs
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": reports.RECORDER, "namespace": "tradeops-data"}]


@pytest.mark.parametrize("stack", STACKS)
def test_the_credentials_secret_holds_the_stacks_database_url(stack):
    secret = built(stack).one("kubernetes:core/v1:Secret", "reports-credentials")
    assert is_secret(secret.raw["stringData"]), "the URL carries the password: a Pulumi secret"
    url = secret.inputs["stringData"]["TRADEOPS_DATABASE_URL"]
    assert url.startswith("postgresql://"), url
    assert "mock-" in url, "the generated password is in it"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("job", JOBS)
def test_report_jobs_reach_the_bucket_as_the_backup_jobs_do(stack, job):
    """The cost report prices the bucket and the archive writes into it: the backup ServiceAccount (IRSA in
    prod, the access-key Secret in dev) and the bucket's name, never an inline key."""
    pod = job_pod(stack, job)
    container, = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TRADEOPS_BACKUP_BUCKET"] == built(stack).outputs["backupBucket"]
    assert pod["serviceAccountName"] == backups.SERVICE_ACCOUNT
    sources = [e["secretRef"]["name"] for e in container["envFrom"]]
    if stack == "prod":
        assert pod["automountServiceAccountToken"] is True
        assert sources == [reports.CREDENTIALS]
    else:
        assert pod["automountServiceAccountToken"] is False
        assert sources == [reports.CREDENTIALS, backups.AWS_CREDENTIALS]
    assert not [e for e in container["env"] if "SECRET" in e["name"] or "DATABASE" in e["name"]]
