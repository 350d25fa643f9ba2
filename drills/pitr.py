"""Point-in-time recovery: base backups (pg_basebackup tar streamed to S3) and restores that start a new
PostgreSQL server from one, fetching archived WAL back from S3 and stopping at a target time. Also the empty
scratch server a restore drill restores into when it is given none (never the archived source)."""

from __future__ import annotations

import datetime
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import psycopg

from drills.errors import DrillsError, Exit
from drills.postgres import connect, pg_tool, tool_args
from drills.s3 import S3Settings

_START = re.compile(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)")


class BaseBackup:
    """`pg_basebackup -Ft -D -` as a stream: the cluster's files and the WAL needed to make them consistent."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        conninfo, env = tool_args(dsn)
        self.process = subprocess.Popen(
            [pg_tool("pg_basebackup"), f"--dbname={conninfo}", "--pgdata=-", "--format=tar", "--wal-method=fetch",
             "--checkpoint=fast", "--verbose", "--no-manifest"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.process.stdout is not None
        return self.process.stdout

    def finish(self) -> tuple[str, str]:
        """Wait for pg_basebackup; returns (start LSN, first WAL segment needed)."""
        assert self.process.stderr is not None
        self.stdout.close()
        err = self.process.stderr.read().decode(errors="replace")
        self.process.stderr.close()
        if self.process.wait() != 0:
            raise DrillsError(Exit.ERROR, f"pg_basebackup failed: {err.strip()}")
        match = _START.search(err)
        if match is None:
            raise DrillsError(Exit.ERROR, f"pg_basebackup did not report its start point: {err.strip()}")
        with connect(self.dsn) as conn:
            row = conn.execute("SELECT pg_walfile_name(%s::pg_lsn)", (match.group(1),)).fetchone()
        assert row is not None
        return match.group(1), str(row[0])


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run the server as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wal_command(python: Sequence[str], settings: S3Settings, verb: str, spool: pathlib.Path | None = None) -> str:
    """The archive_command/restore_command calling `python -m drills.wal_archive` (credentials come from
    the server's environment, never from this string); a restore_command with `spool` prefetches into it."""
    args = [*python, "-m", "drills.wal_archive", verb, "--bucket", settings.bucket, "--prefix", settings.prefix]
    if settings.endpoint:
        args += ["--endpoint", settings.endpoint]
    if settings.sse is None:
        args += ["--no-sse"]
    if spool is not None:
        args += ["--spool", str(spool)]
    files = ["%p", "%f"] if verb == "push" else ["%f", "%p"]
    return " ".join(shlex.quote(a) for a in args) + " " + " ".join(files)


@dataclass
class RecoveredServer:
    """A PostgreSQL server of a drill's own (from a base backup, or empty) in its own directory and port."""

    directory: pathlib.Path
    port: int

    @property
    def data(self) -> pathlib.Path:
        return self.directory / "data"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=3"

    def local_conf(self) -> str:
        """Settings that keep the server to itself: its port, loopback only, sockets in its directory."""
        return (f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\n")

    def log(self) -> str:
        path = self.directory / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        subprocess.run(_as_postgres([pg_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _refuse_unsafe_members(tar: tarfile.TarFile, root: pathlib.Path) -> None:
    base = root.resolve()
    for member in tar.getmembers():
        target = (base / member.name).resolve()
        link = ((target.parent if member.issym() else base) / member.linkname).resolve() if member.issym() or \
            member.islnk() else target
        if member.isdev() or not target.is_relative_to(base) or not link.is_relative_to(base):
            raise DrillsError(Exit.ERROR, f"base backup member {member.name!r} would land outside {root}")


def unpack(tar_path: pathlib.Path, directory: pathlib.Path) -> RecoveredServer:
    """Extract a base backup tar into `directory`/data, owned by postgres with the modes it demands."""
    server = RecoveredServer(directory, free_port())
    server.data.mkdir(parents=True)
    directory.parent.chmod(0o711)  # the server's user must reach its directory through ours
    with tarfile.open(tar_path) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(server.data, filter="data")
        else:  # Python < 3.11.4 (Debian 12 has 3.11.2) has no extraction filters: refuse what "data" refuses
            _refuse_unsafe_members(tar, server.data)
            tar.extractall(server.data)
    server.data.chmod(0o700)
    if os.geteuid() == 0:
        for path in [directory, *directory.rglob("*")]:
            shutil.chown(path, "postgres", "postgres")
    return server


def start_scratch(directory: pathlib.Path, timeout: float = 120) -> RecoveredServer:
    """A new, empty server (initdb, trust on loopback) in `directory`, started: the restore drill's target when
    no TRADEOPS_RESTORE_DSN names one. A restore into the source server would write the whole database into
    its WAL: the archiver falls minutes behind (RPO) and every later point-in-time recovery replays it (RTO)."""
    server = RecoveredServer(directory, free_port())
    directory.mkdir(parents=True)
    directory.parent.chmod(0o711)  # the server's user must reach its directory through ours
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    made = subprocess.run(_as_postgres([pg_tool("initdb"), "-D", str(server.data), "-A", "trust", "-U", "postgres",
                                        "--no-sync"]), capture_output=True)  # no-sync: initdb's files only
    if made.returncode != 0:
        raise DrillsError(Exit.ERROR, f"initdb of the scratch server failed: {_tail(made.stderr.decode())}")
    with (server.data / "postgresql.auto.conf").open("a") as conf:
        conf.write(server.local_conf())
    started = subprocess.run(_as_postgres([pg_tool("pg_ctl"), "-D", str(server.data), "-l",
                                           str(server.directory / "log"), "-w", "-t", str(int(timeout)), "start"]),
                             capture_output=True)
    if started.returncode != 0:
        raise DrillsError(Exit.ERROR, "scratch server did not start: "
                          + _tail(server.log() or started.stderr.decode(errors="replace")))
    return server


def recover(server: RecoveredServer, restore_command: str, target: datetime.datetime | None,
            timeout: float = 300) -> None:
    """Start the server in recovery: replay archived WAL up to `target` (or to the end of the archive),
    then promote. Raises with the server's log when it cannot get there."""
    target_conf = (f"recovery_target_time = '{target.astimezone(datetime.UTC).isoformat()}'\n"
                   "recovery_target_inclusive = true\n") if target else ""
    with (server.data / "postgresql.auto.conf").open("a") as conf:
        conf.write(server.local_conf()
                   + "archive_mode = off\n"  # a restored copy must never archive into the source's WAL prefix
                   f"restore_command = '{restore_command.replace(chr(39), chr(39) * 2)}'\n"
                   f"{target_conf}recovery_target_action = 'promote'\nrecovery_target_timeline = 'latest'\n")
    (server.data / "recovery.signal").touch()
    for stale in ("postmaster.pid", "postmaster.opts"):
        (server.data / stale).unlink(missing_ok=True)
    if os.geteuid() == 0:
        for path in (server.data / "postgresql.auto.conf", server.data / "recovery.signal"):
            shutil.chown(path, "postgres", "postgres")
    started = subprocess.run(_as_postgres([pg_tool("pg_ctl"), "-D", str(server.data), "-l",
                                           str(server.directory / "log"), "-w", "-t", str(int(timeout)), "start"]),
                             capture_output=True)
    if started.returncode != 0:
        raise DrillsError(Exit.ERROR, "recovered server did not start: "
                          + _tail(server.log() or started.stderr.decode(errors="replace")))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(server.dsn) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and not row[0]:
                    return
        except psycopg.OperationalError:
            if "recovery ended before configured recovery target" in server.log():
                raise DrillsError(Exit.ERROR, "the archive ends before the target time: "
                                  + _tail(server.log())) from None
        time.sleep(0.2)
    raise DrillsError(Exit.ERROR, f"recovery did not finish within {timeout:.0f}s: " + _tail(server.log()))


def _tail(log: str, lines: int = 5) -> str:
    return " | ".join(log.strip().splitlines()[-lines:])


def remove(directory: pathlib.Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
