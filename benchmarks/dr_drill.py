"""DR benchmark: backup and restore throughput (MB/s) and the RTO of the restore-latest drill for
databases of 100 MB and 1 GB, and the RPO point-in-time recovery achieves with WAL archiving under a
steady write load. Targets: RPO <= 60 s, RTO <= 120 s at 1 GB.

    python benchmarks/dr_drill.py [--sizes 100,1000] [--archive-timeout 10] [--json]

Everything real on this machine: a throwaway PostgreSQL (16 MB WAL segments archived to S3 by
`python -m drills.wal_archive`), moto's S3 server over HTTP, the drills as the CronJob runs them. Each
figure is one run (no warm-up, no repetition): read it as an order of magnitude on this 2-core box."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the tests' throwaway servers

import psycopg

from drills import backups, runner
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


def measure(size_mb: int, archive_timeout: int, workdir: pathlib.Path, s3: ThrowawayS3) -> dict[str, Any]:
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
        with S3Store(bucket) as store:
            load = WriteLoad(server.dsn, interval=0.05, ticks=50).__enter__()
            time.sleep(2)  # a steady write load before, during and after the backups
            started = time.monotonic()
            manifest = backups.create_postgres(settings, store)
            backup_s = time.monotonic() - started
            backups.create_base(settings, store)
            time.sleep(2)
            latest = runner.run(runner.scenario("restore-latest"), settings)
            time.sleep(archive_timeout * 1.5)  # WAL archiving in its steady state
            # The disaster: the writers stop and the server dies at once (no clean shutdown, no last archive).
            load.stop()
            server.stop("immediate")
            pitr = runner.run(runner.scenario("point-in-time"), settings, {"target": "latest"})
        for result in (latest, pitr):
            if not result.success and result.error:
                raise RuntimeError(f"{result.drill}: {result.error}")
        return {"db_mb": round(db_mb, 1), "dump_mb": round(manifest.size / MB, 1),
                "backup_mb_s": round(db_mb / backup_s, 1),
                "restore_mb_s": round(db_mb / float(latest.facts["restore_seconds"]), 1),
                "rto_s": round(latest.rto_seconds or 0, 1), "rpo_s": round(pitr.rpo_seconds or 0, 1),
                "logical_rpo_s": round(latest.rpo_seconds or 0, 1), "pitr_rto_s": round(pitr.rto_seconds or 0, 1),
                "pitr_fetch_s": pitr.facts.get("fetch_seconds"), "pitr_replay_s": pitr.facts.get("replay_seconds"),
                "checks_passed": latest.success and all(c.ok for c in pitr.checks)}
    finally:
        server.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="database sizes in MB, comma-separated")
    parser.add_argument("--archive-timeout", type=int, default=10, help="archive_timeout of the source (s)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per size")
    args = parser.parse_args()
    fake_credentials()
    s3 = ThrowawayS3().start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="tradeops-dr-bench-") as scratch:
            pathlib.Path(scratch).chmod(0o711)  # recovered servers run as postgres below it
            for size in (int(s) for s in args.sizes.split(",")):
                results.append(measure(size, args.archive_timeout, pathlib.Path(scratch), s3))
                if not args.json:
                    r = results[-1]
                    print(f"{r['db_mb']:7.1f} MB  backup {r['backup_mb_s']:6.1f} MB/s  restore "
                          f"{r['restore_mb_s']:6.1f} MB/s  RTO {r['rto_s']:6.1f} s (target 120)  RPO with WAL "
                          f"{r['rpo_s']:5.1f} s (target 60)  [dump {r['dump_mb']} MB, PITR RTO {r['pitr_rto_s']} s "
                          f"(fetch {r['pitr_fetch_s']} s, replay {r['pitr_replay_s']} s), logical-backup RPO "
                          f"{r['logical_rpo_s']} s, checks {'ok' if r['checks_passed'] else 'FAILED'}]",
                          flush=True)
    finally:
        s3.stop()
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
