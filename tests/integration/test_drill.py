"""Drills end to end through `python -m drills run` (the CronJob's entry point): restore-latest under
write load, point-in-time recovery from archived WAL, redis-loss with a running runtime; reports, metrics
and exit codes. RTO and RPO come from the drill's own report."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
import time

import psycopg
import pytest
import yaml

from drills import backups
from drills.errors import Exit
from drills.s3 import S3Store
from tests.integration.dr_support import (
    ArchivingPostgres,
    WriteLoad,
    make_bucket,
    postgres_python,
    prepare,
    settings_for,
)
from tests.servers import PG_BIN, ThrowawayPostgres, ThrowawayRedis, _as_postgres, free_port
from trading_runtime.feeds.server import FeedServer


@pytest.fixture
def bucket(s3, request):
    return make_bucket(s3, "d-" + request.node.name.lower().replace("_", "-")[:50])


def run_drill(name: str, bucket, tmp_path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    environment = {**os.environ, "TRADEOPS_BACKUP_BUCKET": bucket.bucket, "TRADEOPS_S3_ENDPOINT": bucket.endpoint,
                   "TRADEOPS_DRILL_REPORT_DIR": str(tmp_path / "reports"),
                   "TRADEOPS_DRILL_METRICS_FILE": str(tmp_path / "metrics" / "drills.prom"),
                   "TRADEOPS_WAL_PYTHON": " ".join(postgres_python()), **env}
    done = subprocess.run([sys.executable, "-m", "drills", "run", name, *args], capture_output=True, text=True,
                          env=environment, timeout=240)
    reports = sorted((tmp_path / "reports").glob(f"{name}-*.json"))
    return done, json.loads(reports[-1].read_text()) if reports else {}


def test_restore_latest_under_write_load_reports_rto_and_rpo(bucket, tmp_path):
    pg = ThrowawayPostgres().init().start()
    try:
        prepare(pg.dsn)
        with WriteLoad(pg.dsn, interval=0.02, ticks=100) as load:
            load.wait_committed(10)
            with S3Store(bucket) as store:
                manifest = backups.create_postgres(settings_for(bucket, pg.dsn), store)
            time.sleep(1.0)  # writes the backup does not have: the RPO the drill must find
            done, report = run_drill("restore-latest", bucket, tmp_path, DATABASE_URL=pg.dsn)
            writes_at_end = load.last
        with psycopg.connect(pg.dsn) as conn:
            leftovers = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'drill_%'")]
    finally:
        pg.destroy()
    assert done.returncode == 0, done.stderr
    assert report["success"] is True
    assert report["backup_id"] == manifest.id
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "backup verified (size, SHA-256)": True,
        "row counts and key-table checksums match the manifest": True,
        "no orphan fills": True, "no orders of unknown signals": True, "no fills before their order": True,
        "bars have low <= open, close <= high": True}
    assert 0 < report["rto_seconds"] < 60
    # RPO: from the newest row the source had at the drill to the newest restored one (>= the 1 s sleep).
    assert 1.0 <= report["rpo_seconds"] <= (writes_at_end - manifest.source.time).total_seconds() + 1
    assert report["objective_rto_seconds"] == 120
    assert leftovers == []
    metrics = (tmp_path / "metrics" / "drills.prom").read_text()
    assert 'tradeops_drill_success{drill="restore-latest",kind="restore-latest"} 1.0' in metrics
    assert "tradeops_drill_rto_seconds" in metrics
    assert "tradeops_drill_rpo_seconds" in metrics
    markdown = next((tmp_path / "reports").glob("restore-latest-*.md")).read_text()
    assert "PASSED" in markdown
    assert "| RPO |" in markdown


def test_restore_latest_restores_into_a_scratch_server_never_the_archived_source(bucket, tmp_path):
    # A restore into the source would put the whole database into its archived WAL (archiver lag, and every
    # later point-in-time recovery replaying it): without TRADEOPS_RESTORE_DSN the drill brings its own server.
    pg = ThrowawayPostgres().init().start()
    kept = None
    try:
        prepare(pg.dsn)
        with WriteLoad(pg.dsn, interval=0.02, ticks=20) as load:
            load.wait_committed(5)
            with S3Store(bucket) as store:
                manifest = backups.create_postgres(settings_for(bucket, pg.dsn), store)
        with psycopg.connect(pg.dsn) as conn:
            databases = conn.execute("SELECT count(*) FROM pg_database").fetchone()
        done, report = run_drill("restore-latest", bucket, tmp_path, "--param", "keep=true", DATABASE_URL=pg.dsn)
        kept = report["facts"].get("restored_server")
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT count(*) FROM pg_database").fetchone() == databases
        assert done.returncode == 0, done.stderr
        assert report["facts"]["restore_server"] == "scratch"
        assert f"port={pg.port} " not in kept
        restored = psycopg.conninfo.make_conninfo(kept, dbname=report["facts"]["restored_database"])
        with psycopg.connect(restored) as conn:
            assert conn.execute("SELECT count(*) FROM fills").fetchone() == (manifest.tables["fills"].rows,)
    finally:
        if kept:
            with psycopg.connect(kept) as conn:
                data = conn.execute("SHOW data_directory").fetchone()[0]
            subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate", "stop"]),
                           capture_output=True)
        pg.destroy()


def test_missed_objective_and_missing_backup_exit_non_zero(bucket, tmp_path):
    pg = ThrowawayPostgres().init().start()
    try:
        prepare(pg.dsn)
        nothing, report = run_drill("restore-latest", bucket, tmp_path, DATABASE_URL=pg.dsn)
        assert nothing.returncode == Exit.DRILL_FAILED
        assert "no postgres backup in s3://" in nothing.stderr
        assert report["success"] is False
        assert "no postgres backup" in report["error"]
        with WriteLoad(pg.dsn, interval=0.01) as load:
            load.wait_committed(5)
            with S3Store(bucket) as store:
                backups.create_postgres(settings_for(bucket, pg.dsn), store)
            time.sleep(0.5)
        strict = tmp_path / "strict.yaml"
        strict.write_text(yaml.safe_dump({
            "apiVersion": "policies.tradeops.io/v1alpha1", "kind": "RecoveryPolicy", "metadata": {"name": "default"},
            "spec": {"objectives": {"restore-latest": {"rtoSeconds": 120, "rpoSeconds": 0.1}}}}))
        missed, report = run_drill("restore-latest", bucket, tmp_path, DATABASE_URL=pg.dsn,
                                   TRADEOPS_RECOVERY_POLICY=str(strict), TRADEOPS_RESTORE_DSN=pg.dsn)
    finally:
        pg.destroy()
    assert missed.returncode == Exit.DRILL_FAILED
    assert all(c["ok"] for c in report["checks"])
    assert report["success"] is False
    assert report["objective_misses"] == [f"RPO {report['rpo_seconds']:.1f}s exceeds the objective of 0.1s"]
    assert "exceeds the objective" in missed.stderr
    assert 'tradeops_drill_success{drill="restore-latest",kind="restore-latest"} 0.0' in \
        (tmp_path / "metrics" / "drills.prom").read_text()


def _archived_through_now(dsn: str, timeout: float = 30) -> None:
    """Switch WAL and wait until the segment holding everything so far is archived."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        wanted = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            if last is not None and last >= wanted:
                return
            time.sleep(0.1)
    raise AssertionError(f"WAL segment {wanted} was not archived within {timeout}s")


def test_point_in_time_recovery_keeps_rows_before_t_and_drops_rows_after(bucket, tmp_path):
    pg = ArchivingPostgres(bucket).init().start()
    try:
        prepare(pg.dsn)
        with WriteLoad(pg.dsn, interval=0.02, ticks=50) as load:
            load.wait_committed(10)
            with S3Store(bucket) as store:
                base = backups.create_base(settings_for(bucket, pg.dsn), store)
            time.sleep(1.5)
            target = datetime.datetime.now(datetime.UTC)
            time.sleep(1.5)
        after_target = load.committed
        _archived_through_now(pg.dsn)
        done, report = run_drill("point-in-time", bucket, tmp_path, "--param", f"target={target.isoformat()}",
                                 "--param", "marginSeconds=1.0", DATABASE_URL=pg.dsn)
    finally:
        pg.destroy()
    assert after_target > 20
    assert done.returncode == 0, done.stderr + done.stdout
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["rows after T are absent"]["ok"]
    assert checks["rows before T are present"]["ok"], checks["rows before T are present"]["detail"]
    assert "as many as the source has" in checks["rows before T are present"]["detail"]
    assert report["backup_id"] == base.id
    restored_newest = datetime.datetime.fromisoformat(report["facts"]["restored_newest_row"])
    assert target - datetime.timedelta(seconds=1) < restored_newest <= target
    assert report["rpo_seconds"] < 1.0
    assert 0 < report["rto_seconds"] < 60


def test_redis_loss_the_runtime_rebuilds_its_book_and_the_snapshot_the_streams(bucket, tmp_path):
    redis_server = ThrowawayRedis().start()
    (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(
        {"symbol": "SPY", "market": "equity-options", "revision": 1,
         "runtime": {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}}}))
    (tmp_path / "switches.yaml").write_text(yaml.safe_dump({"tradingEnabled": True}))

    async def scenario() -> tuple[subprocess.CompletedProcess[str], dict, subprocess.CompletedProcess[str]]:
        async with FeedServer(["SPY"], seed=3, rate=100, time_scale=5.0) as feed:
            log = (tmp_path / "runtime.log").open("w")
            runtime = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "trading_runtime", "--config", str(tmp_path / "runtime.yaml"),
                "--switches", str(tmp_path / "switches.yaml"), "--feed-url", feed.url, "--redis-url",
                redis_server.url, "--share-interval", "0.2", "--metrics-host", "127.0.0.1",
                "--metrics-port", str(free_port()), stdout=log, stderr=asyncio.subprocess.STDOUT)
            try:
                import redis as redis_lib
                conn = redis_lib.Redis.from_url(redis_server.url)
                deadline = time.monotonic() + 30
                while not conn.xlen("tradeops:position-events"):
                    assert time.monotonic() < deadline, "the runtime never wrote its book"
                    await asyncio.sleep(0.1)
                conn.xadd("tradeops:signals", {"data": "{}"})
                conn.xgroup_create("tradeops:signals", "audit", id="0")
                conn.close()
                with S3Store(bucket) as store:
                    await asyncio.to_thread(backups.create_redis, settings_for(bucket, redis_url=redis_server.url),
                                            store)
                refused, _ = await asyncio.to_thread(run_drill, "redis-loss", bucket, tmp_path,
                                                     REDIS_URL=redis_server.url)
                done, report = await asyncio.to_thread(run_drill, "redis-loss", bucket, tmp_path,
                                                       "--allow-destructive", REDIS_URL=redis_server.url)
                return done, report, refused
            finally:
                runtime.terminate()
                await runtime.wait()
                log.close()

    try:
        done, report, refused = asyncio.run(scenario())
    finally:
        redis_server.stop()
    assert refused.returncode == Exit.USAGE
    assert "--allow-destructive" in refused.stderr
    assert done.returncode == 0, done.stderr + done.stdout
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert report["facts"]["symbols"] == ["SPY"]
    assert report["facts"]["streams_after"]["tradeops:signals"] >= 1
    assert report["facts"]["consumer_groups_after"]["tradeops:signals"] == 1
    assert 0 < report["rto_seconds"] < 30
    assert report["rpo_seconds"] > 0


def test_drill_metrics_are_pushed_to_a_pushgateway(tmp_path):
    import http.server
    import threading

    from drills.metrics import export
    from drills.report import Check, DrillResult

    received: list[tuple[str, str, bytes]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    started = datetime.datetime.now(datetime.UTC)
    result = DrillResult(drill="point-in-time", kind="point-in-time", started_at=started,
                         finished_at=started + datetime.timedelta(seconds=9), success=True, rto_seconds=8.0,
                         rpo_seconds=0.5, checks=[Check(name="rows after T are absent", ok=True)])
    try:
        export(result, None, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    [(method, path, body)] = received
    assert (method, path) == ("PUT", "/metrics/job/tradeops-drill/drill/point-in-time")
    assert b'tradeops_drill_rpo_seconds{drill="point-in-time",kind="point-in-time"} 0.5' in body
