"""DR benchmark: backup and restore throughput (MB/s), RTO and RPO for databases of 100 MB and 1 GB, with
a steady write load. Targets: RPO <= 60 s, RTO <= 120 s at 1 GB.

    python benchmarks/dr_drill.py [--sizes 100,1000] [--archive-timeout 30] [--json]

RTO is service restored: from the disaster to the trading runtime connected to the restored database and
writing again (its first new row committed there). It adds, to the drill's own RTO (a verified copy in a
new database or server), the time a restarted runtime takes to start, migrate, reach the feed and flush.
It excludes repointing the runtime's Secret and the pod's restart in a cluster (the runtime here is started
with the restored DSN at once). RPO is the point-in-time drill's to `latest` after the source was killed.

Durable settings, as production runs: fsync, synchronous_commit and full_page_writes on, the archive_timeout
docs/backups-and-drills.md recommends (30 s). Everything real on this machine: a throwaway PostgreSQL (16 MB
WAL segments archived to S3 by `python -m drills.wal_archive`), moto's S3 server over HTTP, the drills as
the CronJob runs them, the runtime as its pod runs it. Each figure is one run (no warm-up, no repetition):
read it as an order of magnitude on this 2-core box."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the tests' throwaway servers

import psycopg
import yaml
from psycopg.conninfo import make_conninfo

from drills import backups, postgres, runner
from drills.s3 import S3Store
from tests.integration.dr_support import (
    ArchivingPostgres,
    WriteLoad,
    fake_credentials,
    make_bucket,
    prepare,
    settings_for,
)
from tests.s3_server import ThrowawayS3
from tests.servers import PG_BIN, _as_postgres, free_port
from trading_runtime.feeds.server import FeedServer

MB = 1024 * 1024


def database_mb(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return float(row[0]) / MB


def fill(dsn: str, target_mb: float) -> None:
    """Ticks in bulk (most of a trading database), with signals → orders → fills alongside."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        batch = 0
        while database_mb(dsn) < target_mb:
            conn.execute(
                "INSERT INTO ticks SELECT now() - interval '1 day' + g * interval '1 ms', "
                "(ARRAY['SPY','QQQ','ES'])[1 + g %% 3], 'SPY 2026-12-18 C' || (500 + g %% 40), 'quote', "
                "500 + random(), 500.02 + random(), 1 + g %% 500, 1 + g %% 300, NULL, NULL, g "
                "FROM generate_series(%s, %s) g", (batch * 100_000, batch * 100_000 + 99_999))
            conn.execute(
                "WITH s AS (INSERT INTO signals SELECT gen_random_uuid(), now() - interval '1 day', 'SPY', 1, 1, "
                "random(), random(), '{}' FROM generate_series(1, 1000) RETURNING id, ts), "
                "o AS (INSERT INTO orders SELECT gen_random_uuid(), ts, 'SPY', 'SPY C500', 'buy', 1, 500, id, "
                "'filled' FROM s RETURNING id, ts) "
                "INSERT INTO fills SELECT gen_random_uuid(), ts, id, 1, 500, 0.65 FROM o")
            batch += 1
        conn.execute("VACUUM ANALYZE")


def set_archiving(server: ArchivingPostgres, on: bool) -> None:
    """Bulk loading is not what is measured: load with archiving off, then restart with it on."""
    conf = server.data / "postgresql.conf"
    lines = [line for line in conf.read_text().splitlines() if line != "archive_mode = off"]
    conf.write_text("\n".join(lines + ([] if on else ["archive_mode = off"])) + "\n")


def rows_written(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM ticks").fetchone()
    assert row is not None
    return int(row[0])


async def _runtime_writing(dsn: str, workdir: pathlib.Path, limit: float = 120.0) -> float:
    """Seconds from starting `python -m trading_runtime` on `dsn` to its first new tick row committed."""
    config = {"symbol": "SPY", "market": "equity-options", "revision": 1, "runtime": {}}
    (workdir / "runtime.yaml").write_text(yaml.safe_dump(config))
    (workdir / "switches.yaml").write_text("tradingEnabled: true\n")
    before = await asyncio.to_thread(rows_written, dsn)
    async with FeedServer(["SPY"], seed=11, rate=50) as feed:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trading_runtime", "--config", str(workdir / "runtime.yaml"), "--switches",
            str(workdir / "switches.yaml"), "--feed-url", feed.url, "--database-url", dsn, "--metrics-host",
            "127.0.0.1", "--metrics-port", str(free_port()), "--spill-path", str(workdir / "spill.jsonl"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while await asyncio.to_thread(rows_written, dsn) <= before:
                if time.monotonic() - started > limit or process.returncode is not None:
                    raise RuntimeError(f"the runtime wrote nothing to the restored database within {limit:g} s")
                await asyncio.sleep(0.05)
            return time.monotonic() - started
        finally:
            process.terminate()
            await process.wait()


def runtime_writing(dsn: str, workdir: pathlib.Path) -> float:
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_runtime_writing(dsn, workdir))


WAL_SEGMENT = 16 * MB  # the benchmark's source runs initdb --wal-segsize=16


def _segment_number(walfile: str) -> int:
    """A WAL file's position in the stream (timeline dropped): log * segments per 4 GiB + segment."""
    return int(walfile[8:16], 16) * (0x1_0000_0000 // WAL_SEGMENT) + int(walfile[16:24], 16)


class ArchiverWatch:
    """Samples the source's WAL position and pg_stat_archiver every `interval` s: how far the archiver is
    behind the segment being written (segments complete but not yet archived), and at the last sample before
    the disaster."""

    def __init__(self, dsn: str, interval: float = 1.0) -> None:
        self.dsn, self.interval = dsn, interval
        self.max_lag = 0
        self.last_lag: int | None = None
        self.last_lsn: int | None = None
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(self.interval):  # until stopped, or the disaster kills the server
                row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, pg_walfile_name(pg_current_wal_lsn()),"
                                   " last_archived_wal, failed_count FROM pg_stat_archiver").fetchone()
                assert row is not None
                lsn, current, archived, failed = row
                self.last_lsn, self.failed = int(lsn), int(failed)
                if archived is None:  # nothing archived yet: the bulk load's WAL was never due
                    continue
                # The segment being written is not due yet: lag = complete segments not archived.
                lag = _segment_number(current) - 1 - _segment_number(archived)
                self.last_lag = max(0, lag)
                self.max_lag = max(self.max_lag, self.last_lag)

    def __enter__(self) -> ArchiverWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def wal_lsn(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert row is not None
    return int(row[0])


def lsn_bytes(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def stop_recovered(dsn: str) -> None:
    """A drill kept its server (`keep`: restore-latest's scratch one, point-in-time's recovered one) for the
    runtime: stop it now."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "stop", "-D", str(row[0]), "-m", "immediate"]),
                   check=True, capture_output=True)


def measure(size_mb: int, archive_timeout: int, workdir: pathlib.Path, s3: ThrowawayS3,
            restore_into_source: bool = False) -> dict[str, Any]:
    bucket = make_bucket(s3, f"bench-{size_mb}-{int(time.time())}")
    server = ArchivingPostgres(bucket, archive_timeout=archive_timeout, wal_segsize_mb=16).init()
    set_archiving(server, False)
    server.start()
    try:
        prepare(server.dsn)
        fill(server.dsn, size_mb)
        server.stop()
        set_archiving(server, True)
        server.start()
        db_mb = database_mb(server.dsn)
        settings = settings_for(bucket, server.dsn, report_dir=workdir / f"reports-{size_mb}")
        settings.workdir = workdir
        if restore_into_source:  # what the stack did before: no TRADEOPS_RESTORE_DSN, the source's server
            settings.restore_dsn = server.dsn
        with S3Store(bucket) as store, ArchiverWatch(server.dsn) as watch:
            load = WriteLoad(server.dsn, interval=0.05, ticks=50).__enter__()
            time.sleep(2)  # a steady write load before, during and after the backups
            started = time.monotonic()
            manifest = backups.create_postgres(settings, store)
            backup_s = time.monotonic() - started
            base = backups.create_base(settings, store)
            time.sleep(2)
            before_drill = wal_lsn(server.dsn)
            latest = runner.run(runner.scenario("restore-latest"), settings, {"keep": True})
            restored = make_conninfo(latest.facts.get("restored_server", server.dsn),
                                     dbname=latest.facts["restored_database"])
            try:  # service restored: the runtime on the restored copy (on the drill's scratch server), writing
                latest_runtime_s = runtime_writing(restored, workdir / f"runtime-latest-{size_mb}")
            finally:
                if "restored_server" in latest.facts:
                    stop_recovered(latest.facts["restored_server"])
                else:
                    postgres.drop_database(server.dsn, latest.facts["restored_database"])
            drill_wal = wal_lsn(server.dsn) - before_drill
            time.sleep(archive_timeout * 1.5)  # WAL archiving in its steady state
            # The disaster: the writers stop and the server dies at once (no clean shutdown, no last archive).
            load.stop()
            lag_at_disaster, lsn_at_disaster = watch.last_lag, watch.last_lsn
            server.stop("immediate")
            pitr = runner.run(runner.scenario("point-in-time"), settings, {"target": "latest", "keep": True})
            recovered = pitr.facts.get("recovered_server")
            try:
                pitr_runtime_s = runtime_writing(recovered, workdir / f"runtime-pitr-{size_mb}") if recovered else None
            finally:
                if recovered:
                    stop_recovered(recovered)
        for result in (latest, pitr):
            if not result.success and result.error:
                raise RuntimeError(f"{result.drill}: {result.error}")
        latest_rto, pitr_rto = latest.rto_seconds or 0.0, pitr.rto_seconds or 0.0
        return {"db_mb": round(db_mb, 1), "dump_mb": round(manifest.size / MB, 1),
                "backup_mb_s": round(db_mb / backup_s, 1),
                "restore_mb_s": round(db_mb / float(latest.facts["restore_seconds"]), 1),
                "rto_s": round(latest_rto + latest_runtime_s, 1), "copy_verified_rto_s": round(latest_rto, 1),
                "runtime_writing_s": round(latest_runtime_s, 1), "rpo_s": round(pitr.rpo_seconds or 0, 1),
                "logical_rpo_s": round(latest.rpo_seconds or 0, 1),
                "pitr_rto_s": round(pitr_rto + pitr_runtime_s, 1) if pitr_runtime_s is not None else None,
                "pitr_copy_verified_rto_s": round(pitr_rto, 1),
                "pitr_runtime_writing_s": round(pitr_runtime_s, 1) if pitr_runtime_s is not None else None,
                "pitr_fetch_s": pitr.facts.get("fetch_seconds"), "pitr_replay_s": pitr.facts.get("replay_seconds"),
                "archive_timeout_s": archive_timeout, "fsync": "on", "restore_into_source": restore_into_source,
                "restore_drill_wal_mb": round(drill_wal / MB, 1),
                "pitr_wal_mb": round((lsn_at_disaster - lsn_bytes(base.source.lsn or "0/0")) / MB, 1)
                if lsn_at_disaster is not None else None,
                "archiver_lag_segments_at_disaster": lag_at_disaster, "archiver_max_lag_segments": watch.max_lag,
                "archive_failures": watch.failed,
                "checks_passed": latest.success and all(c.ok for c in pitr.checks)}
    finally:
        server.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="database sizes in MB, comma-separated")
    parser.add_argument("--archive-timeout", type=int, default=30,
                        help="archive_timeout of the source (s); 30 is what docs/backups-and-drills.md recommends")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per size")
    parser.add_argument("--restore-into-source", action="store_true",
                        help="restore-latest restores into the source server (TRADEOPS_RESTORE_DSN = its DSN), as "
                        "the stack did before: its WAL floods the archive and the point-in-time recovery")
    args = parser.parse_args()
    fake_credentials()
    s3 = ThrowawayS3().start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="tradeops-dr-bench-") as scratch:
            pathlib.Path(scratch).chmod(0o711)  # recovered servers run as postgres below it
            for size in (int(s) for s in args.sizes.split(",")):
                results.append(measure(size, args.archive_timeout, pathlib.Path(scratch), s3,
                                       args.restore_into_source))
                if not args.json:
                    r = results[-1]
                    print(f"{r['db_mb']:7.1f} MB  backup {r['backup_mb_s']:6.1f} MB/s  restore "
                          f"{r['restore_mb_s']:6.1f} MB/s  RTO (service restored) {r['rto_s']:6.1f} s (target 120; "
                          f"copy verified {r['copy_verified_rto_s']} s + runtime writing {r['runtime_writing_s']} s)"
                          f"  RPO with WAL {r['rpo_s']:5.1f} s (target 60)  [dump {r['dump_mb']} MB, PITR RTO "
                          f"{r['pitr_rto_s']} s (fetch {r['pitr_fetch_s']} s, replay {r['pitr_replay_s']} s, runtime "
                          f"writing {r['pitr_runtime_writing_s']} s), logical-backup RPO {r['logical_rpo_s']} s, "
                          f"checks {'ok' if r['checks_passed'] else 'FAILED'}]", flush=True)
    except Exception:
        # moto's own traceback says why an S3 call failed (an HTTP 500 alone does not): keep it with the error.
        print(f"--- moto_server log ---\n{s3.logs()}", file=sys.stderr)
        raise
    finally:
        s3.destroy()
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
