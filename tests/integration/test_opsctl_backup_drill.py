"""The backup and drill commands on opsctl's kit, as `opsctl backup|drill` and as `python -m drills` (the
CronJob's entry point): settings accepted before or after the verb, an empty answer is exit 3, a drill
that cannot run here says what to set, exits 2 and writes nothing. S3 is moto's server over HTTP."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from opsctl.errors import ExitCode
from tests.integration.dr_support import make_bucket

# Nothing of the environment of whoever runs the tests leaks in as a drill setting.
SETTINGS = ("TRADEOPS_BACKUP_BUCKET", "TRADEOPS_S3_ENDPOINT", "DATABASE_URL", "TRADEOPS_RESTORE_DSN", "REDIS_URL",
            "KUBECONFIG", "TRADEOPS_PROMETHEUS_URL", "KUBERNETES_SERVICE_HOST")


def run(program: list[str], *args: str, cwd: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return subprocess.run([*program, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**clean, "TRADEOPS_DRILL_REPORT_DIR": str(cwd / "reports"), **env}, check=False)


OPSCTL = [str(pathlib.Path(sys.executable).with_name("opsctl"))]
DRILLS = [sys.executable, "-m", "drills"]


@pytest.mark.parametrize(("program", "words"), [
    (OPSCTL, ["backup", "list", "--bucket", "{bucket}", "--endpoint", "{endpoint}"]),
    (OPSCTL, ["backup", "--bucket", "{bucket}", "--endpoint", "{endpoint}", "list"]),
    (DRILLS, ["backup", "list", "--bucket", "{bucket}", "--endpoint", "{endpoint}"]),
    (DRILLS, ["--bucket", "{bucket}", "--endpoint", "{endpoint}", "backup", "list"])],
    ids=["opsctl-after-verb", "opsctl-before-verb", "drills-after-verb", "drills-before-group"])
def test_backup_settings_go_before_or_after_the_verb(s3, tmp_path, program, words):
    bucket = make_bucket(s3, "opsctl-empty")
    done = run(program, *[w.format(bucket=bucket.bucket, endpoint=bucket.endpoint) for w in words], cwd=tmp_path)
    name = "opsctl" if program is OPSCTL else "drills"
    assert done.returncode == ExitCode.NOT_FOUND, done.stderr
    assert done.stderr == (f"{name}: error: no backups in s3://opsctl-empty/tradeops: take one with `opsctl backup "
                           "create`, or check --bucket/--prefix\n")


def test_without_a_bucket_backup_list_says_what_to_set(tmp_path):
    done = run(OPSCTL, "backup", "list", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (ExitCode.USAGE, "opsctl: error: no backup bucket: set "
                                                              "TRADEOPS_BACKUP_BUCKET or pass --bucket\n")


def test_drill_list_says_which_drills_can_run_here_and_what_to_set(tmp_path):
    nothing = json.loads(run(OPSCTL, "drill", "list", "-o", "json", cwd=tmp_path).stdout)
    assert {d["name"]: d["canRun"] for d in nothing} == {
        "pod-kill": False, "point-in-time": False, "prometheus-loss": False, "redis-loss": False,
        "restore-latest": False}
    assert {d["name"]: d["missing"] for d in nothing}["restore-latest"] == [
        "TRADEOPS_BACKUP_BUCKET (--bucket)", "TRADEOPS_RESTORE_DSN or DATABASE_URL (--database-url)"]
    some = run(OPSCTL, "drill", "list", "--bucket", "b", "--database-url", "postgresql://x/y", cwd=tmp_path)
    rows = {line.split()[0]: line for line in some.stdout.splitlines()[1:] if line[:1].strip()}
    assert "   yes   " in rows["restore-latest"]
    assert "   yes   " in rows["point-in-time"]
    assert "no: set REDIS_URL (--redis-url)" in rows["redis-loss"]
    assert "no: set KUBECONFIG (--kubeconfig), or running in a pod; TRADEOPS_PROMETHEUS_URL" in rows["pod-kill"]


@pytest.mark.parametrize("program", [[*OPSCTL, "drill"], DRILLS], ids=["opsctl", "python-m-drills"])
def test_a_drill_that_cannot_run_here_exits_2_and_writes_no_report(tmp_path, program):
    # The CronJob's own command line: options after the drill's name.
    done = run(program, "run", "restore-latest", "--report-dir", str(tmp_path / "cronjob-reports"), cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stderr.endswith("error: drill restore-latest cannot run here: set TRADEOPS_BACKUP_BUCKET (--bucket); "
                                "TRADEOPS_RESTORE_DSN or DATABASE_URL (--database-url)\n")
    assert not (tmp_path / "cronjob-reports").exists()
    assert not (tmp_path / "reports").exists()


def test_no_reports_is_exit_3_with_where_to_look(tmp_path):
    done = run(OPSCTL, "drill", "report", cwd=tmp_path)
    assert done.returncode == ExitCode.NOT_FOUND
    assert done.stderr == (f"opsctl: error: no drill reports in {tmp_path / 'reports'}: run one (`drill run NAME`), "
                           "or set TRADEOPS_DRILL_REPORT_DIR (--report-dir)\n")
