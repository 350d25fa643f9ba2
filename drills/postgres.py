"""The PostgreSQL edge: consistent statistics of the trading tables, pg_dump streamed out, pg_restore
into a new database, and the application's invariants checked on a restored copy."""

from __future__ import annotations

import contextlib
import datetime
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from drills.errors import DrillsError, Exit
from drills.manifest import KEY_TABLES, TRADING_TABLES, Source, TableStats
from drills.report import Check


def pg_tool(name: str) -> str:
    """A PostgreSQL client/server binary: $TRADEOPS_PG_BIN, the newest /usr/lib/postgresql/*/bin, or PATH."""
    candidates = [pathlib.Path(os.environ["TRADEOPS_PG_BIN"])] if os.environ.get("TRADEOPS_PG_BIN") else []
    candidates += sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise DrillsError(Exit.USAGE, f"{name} not found (set TRADEOPS_PG_BIN or install the PostgreSQL client)")
    return found


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, connect_timeout=5, **kwargs)
    except psycopg.OperationalError as error:
        host = conninfo_to_dict(dsn).get("host", "?")
        raise DrillsError(Exit.UNREACHABLE, f"PostgreSQL at {host} unreachable: {str(error).strip()}") from None


def tool_args(dsn: str) -> tuple[str, dict[str, str]]:
    """The conninfo for a client tool's --dbname without its password, and the environment carrying it
    (PGPASSWORD): a password on a command line is readable by every user of the machine."""
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    password = params.pop("password", None)
    env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    return make_conninfo("", **params), env


def with_database(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


def existing_tables(conn: psycopg.Connection[Any], wanted: Iterable[str] = TRADING_TABLES) -> list[str]:
    rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    present = {str(r[0]) for r in rows}
    return [t for t in wanted if t in present]


def table_stats(conn: psycopg.Connection[Any], tables: Iterable[str] | None = None,
                checksums: bool = True) -> dict[str, TableStats]:
    """Row count, newest `ts` and (for the key tables) an md5 of the ordered rows, read in the connection's
    current transaction (so inside a snapshot they match what pg_dump of that snapshot holds)."""
    out: dict[str, TableStats] = {}
    for name in existing_tables(conn, tables or TRADING_TABLES):
        table = sql.Identifier(name)
        row = conn.execute(sql.SQL("SELECT count(*), max(ts) FROM {}").format(table)).fetchone()
        assert row is not None
        checksum = None
        if checksums and name in KEY_TABLES:
            digest = conn.execute(sql.SQL("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                                          "FROM {} AS t").format(table)).fetchone()
            checksum = str(digest[0]) if digest else None
        out[name] = TableStats(rows=int(row[0]), latest=row[1], checksum=checksum)
    return out


def source_facts(conn: psycopg.Connection[Any]) -> Source:
    row = conn.execute(
        "SELECT clock_timestamp(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
        "ELSE pg_current_wal_lsn() END::text, current_setting('server_version'), current_database()").fetchone()
    assert row is not None
    return Source(time=row[0], lsn=row[1], server_version=row[2], database=row[3])


class ConsistentDump:
    """A repeatable-read snapshot exported to pg_dump: the statistics and the dump see the same rows,
    however busy the writers are."""

    def __init__(self, dsn: str, compress: int = 1) -> None:
        self.dsn = dsn
        self.compress = compress
        self.conn = connect(dsn)
        try:
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.conn.read_only = True
            snapshot = self.conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert snapshot is not None
            self.snapshot = str(snapshot[0])
            self.source = source_facts(self.conn)
            self.tables = table_stats(self.conn)
        except BaseException:
            self.conn.close()
            raise
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        dsn, env = tool_args(self.dsn)
        self.process = subprocess.Popen(
            [pg_tool("pg_dump"), "--format=custom", f"--compress={self.compress}", f"--snapshot={self.snapshot}",
             "--no-owner", "--no-privileges", f"--dbname={dsn}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        return self.process

    def finish(self) -> None:
        """Wait for pg_dump and release the snapshot; a failed dump is an error, never a short backup."""
        try:
            if self.process is not None:
                assert self.process.stdout is not None
                assert self.process.stderr is not None
                self.process.stdout.close()
                err = self.process.stderr.read().decode(errors="replace").strip()
                self.process.stderr.close()
                if self.process.wait() != 0:
                    raise DrillsError(Exit.ERROR, f"pg_dump failed: {err}")
        finally:
            self.conn.rollback()
            self.conn.close()

    def abort(self) -> None:
        """After a failed upload: stop pg_dump and release the snapshot (the first error is what matters)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(DrillsError):
            self.finish()


def create_database(admin_dsn: str, name: str) -> str:
    """A new, empty database: restores never write into one that exists."""
    with connect(admin_dsn, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            raise DrillsError(Exit.USAGE, f"database {name} already exists: a restore only goes into a new "
                              "database (choose another --into)") from None
    return with_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    with connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pg_restore(dump: pathlib.Path, dsn: str, jobs: int = 2) -> None:
    """Load a custom-format dump into the (empty) database of `dsn`, in parallel, stopping at the first
    error."""
    conninfo, env = tool_args(dsn)
    done = subprocess.run([pg_tool("pg_restore"), f"--jobs={jobs}", "--exit-on-error", "--no-owner",
                           "--no-privileges", f"--dbname={conninfo}", str(dump)], capture_output=True, env=env)
    if done.returncode != 0:
        raise DrillsError(Exit.ERROR, f"pg_restore failed: {done.stderr.decode(errors='replace').strip()}")


INVARIANTS = (
    ("no orphan fills", "SELECT count(*) FROM fills f LEFT JOIN orders o ON o.id = f.order_id WHERE o.id IS NULL",
     ("fills", "orders")),
    ("no orders of unknown signals", "SELECT count(*) FROM orders o LEFT JOIN signals s ON s.id = o.signal_id "
     "WHERE o.signal_id IS NOT NULL AND s.id IS NULL", ("orders", "signals")),
    ("no fills before their order", "SELECT count(*) FROM fills f JOIN orders o ON o.id = f.order_id "
     "WHERE f.ts < o.ts", ("fills", "orders")),
    ("bars have low <= open, close <= high", "SELECT count(*) FROM bars WHERE NOT (low <= open AND open <= high "
     "AND low <= close AND close <= high)", ("bars",)),
)


def invariant_checks(conn: psycopg.Connection[Any]) -> list[Check]:
    """The application's invariants on a restored database, each as a check with the offending count."""
    present = set(existing_tables(conn))
    checks = []
    for name, query, needs in INVARIANTS:
        if not set(needs) <= present:
            continue
        row = conn.execute(query).fetchone()  # static SQL of this module
        bad = int(row[0]) if row else 0
        checks.append(Check(name=name, ok=bad == 0, detail=f"{bad} offending rows"))
    return checks


def count_where(conn: psycopg.Connection[Any], table: str, condition: str, at: datetime.datetime) -> int:
    """Rows of `table` whose ts is `condition` (one of <=, >) the time `at`."""
    if condition not in ("<=", ">"):
        raise ValueError(condition)
    query = sql.SQL("SELECT count(*) FROM {} WHERE ts " + condition + " %s").format(sql.Identifier(table))
    row = conn.execute(query, (at,)).fetchone()
    return int(row[0]) if row else 0


def newest(conn: psycopg.Connection[Any]) -> datetime.datetime | None:
    """The newest `ts` over the trading tables: the recovery point the data itself shows."""
    stamps = []
    for name in existing_tables(conn):
        row = conn.execute(sql.SQL("SELECT max(ts) FROM {}").format(sql.Identifier(name))).fetchone()
        if row is not None and row[0] is not None:
            stamps.append(row[0])
    return max(stamps) if stamps else None
