"""The pure core of backups and drills: manifests and their checks, retention, RTO/RPO and objectives,
scenarios, reports and metrics, the recovery policy."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drills import runner
from drills.manifest import (
    Kind,
    Manifest,
    Source,
    StoredObject,
    TableStats,
    backup_id,
    compare_tables,
    kind_of,
    parse_manifest,
    verify_objects,
)
from drills.metrics import export
from drills.objectives import misses, reference_point, rpo_seconds
from drills.pitr import wal_command
from drills.report import Check, DrillResult, render_json, render_markdown
from drills.retention import BackupRef, plan_retention
from drills.s3 import S3Settings
from drills.scenarios import ScenarioError, load_scenarios, parse_params
from policies.recovery import Objective, RecoveryPolicy, Retention, load_recovery_policy

T0 = datetime.datetime(2026, 11, 25, 9, 30, tzinfo=datetime.UTC)
SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


OBJ = StoredObject(key="p/backups/postgres/x/database.pgdump", size=10, sha256=SHA_A)


@pytest.mark.parametrize(("observed", "expected"), [
    ((10, SHA_A), []),
    (None, ["p/backups/postgres/x/database.pgdump: missing (incomplete backup)"]),
    ((9, SHA_A), ["p/backups/postgres/x/database.pgdump: 9 bytes, manifest says 10 (incomplete or altered)"]),
    ((10, SHA_B), [f"p/backups/postgres/x/database.pgdump: SHA-256 {SHA_B[:12]}…, manifest says {SHA_A[:12]}… "
                   "(corrupted)"]),
], ids=["intact", "missing", "truncated", "corrupted"])
def test_verify_objects(observed, expected):
    assert verify_objects([OBJ], {OBJ.key: observed}) == expected


@pytest.mark.parametrize(("actual", "expected"), [
    ({"fills": TableStats(rows=3, checksum="c")}, []),
    ({}, ["table fills: missing after restore"]),
    ({"fills": TableStats(rows=2, checksum="c")}, ["table fills: 2 rows, backup had 3"]),
    ({"fills": TableStats(rows=3, checksum="d")}, ["table fills: checksum d differs from the backup's c"]),
], ids=["same", "missing-table", "rows", "checksum"])
def test_compare_tables(actual, expected):
    assert compare_tables({"fills": TableStats(rows=3, checksum="c")}, actual) == expected


def test_backup_ids_sort_by_time_and_name_their_kind():
    ids = [backup_id(Kind.POSTGRES, at(s)) for s in (0, 0.001, 1, 86400)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4
    assert ids[0] == "postgres-20261125T093000.000Z"
    assert kind_of(ids[0]) is Kind.POSTGRES
    with pytest.raises(ValueError, match="not a backup id"):
        kind_of("nonsense-1")


def test_manifest_round_trips_through_json():
    manifest = Manifest(id="postgres-x", kind=Kind.POSTGRES, created_at=T0, completed_at=at(5),
                        source=Source(time=at(1), lsn="0/16B3748"), tables={"fills": TableStats(rows=1, checksum="c")},
                        objects=[OBJ], encryption="AES256")
    assert parse_manifest(manifest.model_dump_json()) == manifest
    assert manifest.size == 10
    with pytest.raises(ValidationError):
        StoredObject(key="k", size=1, sha256="not-hex")


def ref(ident: str, kind: Kind, age_days: float, start_wal: str | None = None) -> BackupRef:
    return BackupRef(ident, kind, T0 - datetime.timedelta(days=age_days), start_wal)


@pytest.mark.parametrize(("refs", "policy", "deleted"), [
    ([ref("p1", Kind.POSTGRES, 30), ref("p2", Kind.POSTGRES, 20), ref("p3", Kind.POSTGRES, 1)],
     Retention(keep_last=1, keep_days=14), ("p1", "p2")),
    ([ref("p1", Kind.POSTGRES, 30), ref("p2", Kind.POSTGRES, 20)], Retention(keep_last=2, keep_days=0), ()),
    ([ref("p1", Kind.POSTGRES, 3), ref("p2", Kind.POSTGRES, 2)], Retention(keep_last=1, keep_days=14), ()),
    ([ref("p1", Kind.POSTGRES, 30), ref("r1", Kind.REDIS, 40)], Retention(keep_last=1, keep_days=0), ()),
], ids=["keep-last-and-days", "keep-last-covers-all", "young-kept", "per-kind"])
def test_plan_retention_backups(refs, policy, deleted):
    plan = plan_retention(refs, [], policy, T0)
    assert plan.delete_backups == deleted
    assert sorted(plan.delete_backups + plan.keep_backups) == sorted(r.id for r in refs)


def test_plan_retention_keeps_the_wal_the_oldest_kept_base_backup_needs():
    refs = [ref("b1", Kind.BASE, 30, "000000010000000000000003"), ref("b2", Kind.BASE, 1, "000000010000000000000007")]
    segments = [f"0000000100000000000000{n:02X}" for n in range(1, 10)] + ["00000002.history"]
    plan = plan_retention(refs, segments, Retention(keep_last=1, keep_days=7), T0)
    assert plan.delete_backups == ("b1",)
    assert plan.delete_wal == tuple(f"0000000100000000000000{n:02X}" for n in range(1, 7))
    assert plan_retention([], segments, Retention(), T0).delete_wal == ()  # no base backup: keep every segment


@given(ages=st.lists(st.floats(min_value=0, max_value=100), max_size=12), keep_last=st.integers(1, 5),
       keep_days=st.floats(min_value=0, max_value=50))
def test_plan_retention_never_deletes_the_newest_or_the_young(ages, keep_last, keep_days):
    refs = [ref(f"p{i}", Kind.POSTGRES, age) for i, age in enumerate(ages)]
    plan = plan_retention(refs, [], Retention(keep_last=keep_last, keep_days=keep_days), T0)
    newest = {r.id for r in sorted(refs, key=lambda r: (r.created_at, r.id), reverse=True)[:keep_last]}
    young = {r.id for r in refs if r.created_at >= T0 - datetime.timedelta(days=keep_days)}
    assert not (newest | young) & set(plan.delete_backups)
    assert set(plan.delete_backups) | set(plan.keep_backups) == {r.id for r in refs}


@pytest.mark.parametrize(("source_latest", "target", "expected"), [
    (at(10), None, at(10)),
    (at(10), at(5), at(5)),
    (at(3), at(5), at(3)),
    (None, at(5), at(5)),
    (None, None, at(60)),
], ids=["source", "target-before-source", "source-before-target", "target-only", "disaster"])
def test_reference_point(source_latest, target, expected):
    assert reference_point(source_latest, target, at(60)) == expected


@pytest.mark.parametrize(("restored", "expected"), [(at(7), 3.0), (at(12), 0.0), (None, 9.0)],
                         ids=["lost-3s", "nothing-lost", "from-recovery-point"])
def test_rpo_seconds(restored, expected):
    assert rpo_seconds(at(10), restored, at(1)) == expected


@pytest.mark.parametrize(("rto", "rpo", "expected"), [
    (10, 5, []),
    (121, 5, ["RTO 121.0s exceeds the objective of 120s"]),
    (10, 61, ["RPO 61.0s exceeds the objective of 60s"]),
    (None, None, []),
], ids=["met", "rto", "rpo", "not-measured"])
def test_misses(rto, rpo, expected):
    assert misses(Objective(rto_seconds=120, rpo_seconds=60), rto, rpo) == expected
    assert misses(None, 1e9, 1e9) == []


def test_recovery_policy_default_and_validation(tmp_path):
    policy = load_recovery_policy()
    assert set(policy.objectives) == {"restore-latest", "point-in-time", "redis-loss", "pod-kill", "prometheus-loss"}
    assert policy.objective("point-in-time") == Objective(rto_seconds=120, rpo_seconds=60)
    assert policy.retention.keep_last >= 1
    with pytest.raises(ValidationError):
        RecoveryPolicy.model_validate({"objectives": {"x": {"rtoSeconds": 0, "rpoSeconds": 1}}})
    with pytest.raises(ValidationError):
        RecoveryPolicy.model_validate({"objectives": {"x": {"rtoSeconds": 1, "rpoSeconds": 1, "extra": 1}}})


def test_packaged_scenarios_and_the_registry(tmp_path):
    packaged = load_scenarios()
    assert set(packaged) == {"restore-latest", "point-in-time", "redis-loss", "pod-kill", "prometheus-loss"}
    assert packaged["redis-loss"].destructive
    assert packaged["pod-kill"].destructive
    assert packaged["prometheus-loss"].destructive
    assert set(runner.implemented()) == set(packaged)
    (tmp_path / "node-drain.yaml").write_text("name: node-drain\nkind: node-drain\n")
    (tmp_path / "mine.yaml").write_text("name: mine\nkind: restore-latest\nparams: {jobs: 4}\n")
    assert set(runner.implemented(tmp_path)) == {"mine"}  # kinds without a step are not offered
    (tmp_path / "bad.yaml").write_text("name: Bad Name\nkind: x\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml"):
        load_scenarios(tmp_path)


@pytest.mark.parametrize(("pairs", "expected"), [
    (["jobs=4", "keep=true", "target=2026-11-25T09:30:00+00:00"],
     {"jobs": 4, "keep": True, "target": datetime.datetime(2026, 11, 25, 9, 30, tzinfo=datetime.UTC)}),
    (["backup=postgres-1"], {"backup": "postgres-1"}),
], ids=["typed", "string"])
def test_parse_params(pairs, expected):
    assert parse_params(pairs) == expected


def test_parse_params_rejects_what_is_not_key_value():
    with pytest.raises(ScenarioError, match="key=value"):
        parse_params(["jobs"])


def result(success: bool = True) -> DrillResult:
    return DrillResult(drill="restore-latest", kind="restore-latest", started_at=T0, finished_at=at(42.5),
                       success=success, rto_seconds=40.2, rpo_seconds=3.5, objective_rto_seconds=120,
                       objective_rpo_seconds=60, backup_id="postgres-x",
                       checks=[Check(name="no orphan fills", ok=success, detail="0 | rows")],
                       objective_misses=[] if success else ["RPO 3.5s exceeds the objective of 1s"])


def test_reports_render_the_figures_and_every_check():
    markdown = render_markdown(result(success=False))
    assert markdown.startswith("# Drill restore-latest (restore-latest): FAILED")
    assert "| RTO | 40.2 s | 120.0 s |" in markdown
    assert "| no orphan fills | FAILED | 0 / rows |" in markdown
    assert "- RPO 3.5s exceeds the objective of 1s" in markdown
    data = json.loads(render_json(result()))
    assert data["duration_seconds"] == 42.5
    assert data["rto_seconds"] == 40.2
    assert result().report_stem() == "restore-latest-20261125T093000Z"


def test_metrics_textfile(tmp_path):
    path = tmp_path / "textfile" / "drills.prom"
    export(result(), path, None)
    text = path.read_text()
    labels = '{drill="restore-latest",kind="restore-latest"}'
    for line in (f"tradeops_drill_success{labels} 1.0", f"tradeops_drill_rto_seconds{labels} 40.2",
                 f"tradeops_drill_rpo_seconds{labels} 3.5", f"tradeops_drill_duration_seconds{labels} 42.5"):
        assert line in text


def test_wal_commands_quote_their_arguments_and_carry_no_credentials():
    settings = S3Settings(bucket="bk", prefix="tradeops/prod", endpoint="http://s3:9000", sse=None)
    push = wal_command(["/opt/py thon"], settings, "push")
    assert push == ("'/opt/py thon' -m drills.wal_archive push --bucket bk --prefix tradeops/prod "
                    "--endpoint http://s3:9000 --no-sse %p %f")
    assert wal_command(["python"], S3Settings(bucket="bk"), "fetch").endswith("fetch --bucket bk --prefix "
                                                                              "tradeops %f %p")


@pytest.mark.parametrize(("dsn", "conninfo", "password"), [
    ("postgresql://u:s3cret@db:5433/trading?sslmode=require", "user=u dbname=trading host=db port=5433 "
     "sslmode=require", "s3cret"),
    ("host=127.0.0.1 port=5432 user=postgres dbname=postgres", "host=127.0.0.1 port=5432 user=postgres "
     "dbname=postgres", None),
], ids=["url-with-password", "conninfo-without"])
def test_client_tools_get_the_password_through_the_environment(dsn, conninfo, password):
    from psycopg.conninfo import conninfo_to_dict

    from drills.postgres import tool_args
    args, env = tool_args(dsn)
    assert conninfo_to_dict(args) == conninfo_to_dict(conninfo)
    assert env.get("PGPASSWORD") == password


@pytest.mark.parametrize(("url", "args", "env"), [
    ("redis://127.0.0.1:6379/0", ["-u", "redis://127.0.0.1:6379/0"], {}),
    ("rediss://app:p%40ss@cache:6380/1", ["--user", "app", "-u", "rediss://cache:6380/1"], {"REDISCLI_AUTH": "p@ss"}),
    ("redis://:secret@cache/0", ["-u", "redis://cache:6379/0"], {"REDISCLI_AUTH": "secret"}),
], ids=["plain", "acl-user-tls", "password-only"])
def test_redis_cli_gets_the_password_through_the_environment(url, args, env):
    from drills.redis_snapshot import redis_cli_args
    assert redis_cli_args(url) == (args, env)
