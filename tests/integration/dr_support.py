"""What the backup and drill tests (and benchmarks/dr_drill.py) share: PostgreSQL with WAL archiving to
S3 through `python -m drills.wal_archive`, a bucket on ThrowawayS3, and a steady writer of realistic
trading rows (ticks, bars, signals → orders → fills, positions, risk events)."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import random
import site
import subprocess
import sys
import threading
import time
import uuid

import boto3
import psycopg

from drills.config import Settings
from drills.pitr import wal_command
from drills.s3 import S3Settings
from tests.s3_server import FAKE_CREDENTIALS, ThrowawayS3
from tests.servers import PG_BIN, ThrowawayPostgres, _as_postgres
from trading_runtime.storage.schema import migrate

ROOT = pathlib.Path(__file__).resolve().parents[2]


def postgres_python() -> list[str]:
    """An interpreter the postgres user can run with this checkout and its dependencies importable: ours
    when postgres may execute it, else the system python3 of the same minor version pointed at our
    site-packages. A checkout under a private home (/root) is reachable only with the access the bootstrap grants
    (scripts/grant-postgres-access.sh)."""
    path = os.pathsep.join([str(ROOT), *site.getsitepackages()])
    for python in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        probe = subprocess.run(
            _as_postgres(["env", f"PYTHONPATH={path}", python, "-c", "import boto3, drills.wal_archive"]),
            capture_output=True, cwd="/")
        if probe.returncode == 0:
            return ["env", f"PYTHONPATH={path}", python]
    raise RuntimeError(f"no Python the postgres user can run with boto3 and drills importable (archive_command "
                       f"needs one): run ./scripts/install-system-deps.sh, which gives postgres access to {ROOT} "
                       f"(scripts/grant-postgres-access.sh)")


DURABLE = "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
"""What production runs with: the drills kill servers mid-write, so what they prove must hold with these."""


class ArchivingPostgres(ThrowawayPostgres):
    """A throwaway cluster with small (1 MB) WAL segments archived to S3 every `archive_timeout` seconds, with
    durable settings (fsync on)."""

    def __init__(self, s3: S3Settings, archive_timeout: int = 1, wal_segsize_mb: int = 1) -> None:
        python = postgres_python()
        conf = (f"wal_level = replica\narchive_mode = on\narchive_timeout = {archive_timeout}\n"
                f"archive_command = '{wal_command(python, s3, 'push')}'\nmax_wal_senders = 4\n")
        super().__init__(conf)
        self.wal_segsize_mb = wal_segsize_mb

    def init(self) -> ArchivingPostgres:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                                     "--no-sync", f"--wal-segsize={self.wal_segsize_mb}"]),
                       check=True, capture_output=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                       f"{DURABLE}{self.extra_conf}\n")
        return self


def make_bucket(s3: ThrowawayS3, name: str = "tradeops-backups") -> S3Settings:
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()
    return S3Settings(bucket=name, prefix="tradeops", endpoint=s3.endpoint)


def settings_for(s3: S3Settings, database_url: str | None = None, redis_url: str | None = None,
                 report_dir: pathlib.Path | None = None) -> Settings:
    return Settings(bucket=s3.bucket, prefix=s3.prefix, endpoint=s3.endpoint, database_url=database_url,
                    redis_url=redis_url, report_dir=report_dir or pathlib.Path("drill-reports"),
                    wal_python=postgres_python())


def fake_credentials() -> None:
    """boto3 in this process and the PostgreSQL servers it starts sign with moto's fake keys."""
    os.environ.update(FAKE_CREDENTIALS)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def write_trading_rows(conn: psycopg.Connection, rng: random.Random, ticks: int = 200, ts: datetime.datetime | None
                       = None) -> datetime.datetime:
    """One transaction of realistic rows stamped `ts` (default: now): ticks, a bar, and a signal with its
    order, fill, position and a risk event. Returns the stamp."""
    stamp = ts or now()
    symbol = rng.choice(["SPY", "QQQ", "ES"])
    mid = 500 + rng.gauss(0, 5)
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy("COPY ticks (ts, symbol, instrument, kind, bid, ask, bid_size, ask_size, price, size, seq) "
                      "FROM STDIN") as copy:
            for i in range(ticks):
                copy.write_row((stamp, symbol, f"{symbol} 2026-12-18 C{int(mid)}", "quote", mid - 0.01, mid + 0.01,
                                rng.randint(1, 500), rng.randint(1, 500), None, None, rng.getrandbits(40) + i))
        cur.execute("INSERT INTO bars VALUES (%s, %s, 60, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (stamp, symbol, mid, mid + 1, mid - 1, mid + 0.5, rng.randint(100, 10_000)))
        signal, order = uuid.uuid4(), uuid.uuid4()
        cur.execute("INSERT INTO signals VALUES (%s, %s, %s, 1, %s, %s, %s, %s)",
                    (signal, stamp, symbol, rng.choice([-1, 1]), rng.random(), rng.random(),
                     json.dumps({"ofi": rng.random(), "vpin": rng.random()})))
        cur.execute("INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'filled')",
                    (order, stamp, symbol, f"{symbol} C{int(mid)}", rng.choice(["buy", "sell"]), 1.0, mid, signal))
        cur.execute("INSERT INTO fills VALUES (%s, %s, %s, 1.0, %s, 0.65)", (uuid.uuid4(), stamp, order, mid))
        cur.execute("INSERT INTO positions VALUES (%s, %s, %s, %s, %s, %s)",
                    (stamp, symbol, f"{symbol} C{int(mid)}", rng.choice([-1.0, 1.0]), mid, rng.gauss(0, 10)))
        cur.execute("INSERT INTO risk_events VALUES (%s, %s, 'drawdown', 'info', %s)",
                    (stamp, symbol, json.dumps({"dd": rng.random() / 10})))
    return stamp


class WriteLoad:
    """A thread committing a transaction of trading rows every `interval` seconds until stopped."""

    def __init__(self, dsn: str, interval: float = 0.05, ticks: int = 50) -> None:
        self.dsn, self.interval, self.ticks = dsn, interval, ticks
        self.stop_event = threading.Event()
        self.committed = 0
        self.last: datetime.datetime | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(42)
        try:
            with psycopg.connect(self.dsn) as conn:
                while not self.stop_event.is_set():
                    self.last = write_trading_rows(conn, rng, self.ticks)
                    self.committed += 1
                    self.stop_event.wait(self.interval)
        except BaseException as error:  # surfaced by stop()
            self.error = error

    def wait_committed(self, count: int, timeout: float = 60) -> None:
        """Until `count` transactions are committed; raises the writer's error, or on timeout."""
        deadline = time.monotonic() + timeout
        while self.committed < count:
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"write load committed {self.committed} of {count} transactions in {timeout}s")
            self.stop_event.wait(0.05)

    def __enter__(self) -> WriteLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        if self.error is not None:
            raise self.error


def prepare(dsn: str) -> None:
    migrate(dsn)
