"""The reports' and audit trail's cluster objects (infra/reports.py builders): the recorder only reads, jobs
are hardened and get the database URL only from a Secret, the records rule follows the RecoveryPolicy."""

from __future__ import annotations

import shlex

import pytest

from infra import reports
from infra.settings import from_mapping
from policies.loader import load_dir

SETTINGS = from_mapping({"environment": "dev", "operatorImage": "ghcr.io/tradeops/operator:1",
                         "runtimeImage": "ghcr.io/tradeops/runtime:1", "toolsImage": "ghcr.io/tradeops/tools:1"})


def test_the_recorder_only_lists_and_watches_what_it_records():
    rules = reports.recorder_rules()
    assert {verb for rule in rules for verb in rule["verbs"]} == {"get", "list", "watch"}
    assert {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]} == {
        ("trading.tradeops.io", "tradingsymbols"), ("apps", "controllerrevisions"), ("", "events")}


@pytest.mark.parametrize(("command", "account"), [(reports.RECORDER_COMMAND, reports.RECORDER),
                                                  (reports.ARCHIVE_COMMAND, None),
                                                  (reports.report_command("cost"), None)],
                         ids=["recorder", "archive", "report"])
def test_pods_are_hardened_and_take_credentials_only_from_the_secret(command, account):
    pod = reports.pod(SETTINGS, command, "bucket", service_account=account, restart="Never", reports_volume=True)
    container, = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["envFrom"] == [{"secretRef": {"name": reports.CREDENTIALS}}]
    assert not [e for e in container["env"] if "DATABASE" in e["name"]]
    assert pod["automountServiceAccountToken"] is (account is not None), "only the recorder talks to the API"
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
    rule = reports.records_lifecycle_rule("tradeops")
    assert rule["filter"] == {"prefix": "tradeops/records/"}
    assert rule["transitions"] == [{"days": records.accessible_years * 365, "storage_class": "GLACIER"}]
    assert rule["noncurrent_version_expiration"]["noncurrent_days"] > records.keep_years * 365
