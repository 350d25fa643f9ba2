"""Throwaway servers for integration tests: real processes on free ports, started and stopped at will."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

PG_BIN = next(iter(sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"))), pathlib.Path("/usr/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    """initdb/pg_ctl refuse to run as root: run them as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own in a temporary directory (trust auth on 127.0.0.1)."""

    def __init__(self, extra_conf: str = "") -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL server binaries not found under {PG_BIN}: install postgresql")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.extra_conf = extra_conf
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=3"

    def init(self) -> ThrowawayPostgres:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                                     "--no-sync"]), check=True, capture_output=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                       f"fsync = off\n{self.extra_conf}\n")
        return self

    def start(self) -> ThrowawayPostgres:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                                     "-w", "-t", "30", "start"]), check=True, capture_output=True)
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                       capture_output=True)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if check.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL on port {self.port} did not become ready")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def audit_database() -> Iterator[str]:
    """A throwaway PostgreSQL holding the audit trail's schema; yields its DSN."""
    from audit.store import ensure_schema

    postgres = ThrowawayPostgres().init().start()
    try:
        ensure_schema(postgres.dsn)
        yield postgres.dsn
    finally:
        postgres.destroy()


class ThrowawayRedis:
    """A redis-server of its own on a free port, nothing kept on disk."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server not found: install redis-server")
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayProcess:
    """A server process of its own: a temporary directory, a free port and a log, up once a URL answers 200."""

    def __init__(self, prefix: str) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.name = prefix
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, args: list[str], ready_path: str, timeout: float, env: dict[str, str] | None = None) -> None:
        """Start `args` (output to `server.log` in the directory) and wait until `ready_path` answers 200."""
        self._log = (self.dir / "server.log").open("wb")
        self.name = pathlib.Path(args[0]).name
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        self.wait_ready(ready_path, timeout)

    def wait_ready(self, ready_path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}{ready_path}", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:  # not listening yet (URLError, a reset, a timeout)
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}{ready_path} not ready after {timeout} s: {self.logs()}")

    def logs(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        self.process, self._log = None, None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
