"""Redis snapshots: an RDB file fetched over the replication protocol (`redis-cli --rdb`), restored by
starting a new redis-server on it, and copied back key by key (DUMP/RESTORE) into a Redis that lost them."""

from __future__ import annotations

import datetime
import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from drills.errors import DrillsError, Exit
from drills.manifest import TableStats


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DrillsError(Exit.USAGE, f"{name} not found: install redis-tools / redis-server")
    return found


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def keyspace(url: str) -> dict[str, TableStats]:
    """Keys per database (`db0`: rows = number of keys), for the manifest and the restore check."""
    try:
        with client(url) as conn:
            info: dict[str, Any] = conn.info("keyspace")
    except RedisError as error:
        raise DrillsError(Exit.UNREACHABLE, f"Redis unreachable: {error}") from None
    return {db: TableStats(rows=int(stats["keys"])) for db, stats in sorted(info.items())}


def redis_cli_args(url: str) -> tuple[list[str], dict[str, str]]:
    """redis-cli's connection arguments for `url`, its password moved to REDISCLI_AUTH: a password on a
    command line is readable by every user of the machine."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return ["-u", url], {}
    args = ["--user", urllib.parse.unquote(parts.username)] if parts.username else []
    netloc = f"{parts.hostname}:{parts.port or 6379}"
    return [*args, "-u", urllib.parse.urlunsplit(parts._replace(netloc=netloc))], {
        "REDISCLI_AUTH": urllib.parse.unquote(parts.password)}


def fetch_rdb(url: str, path: pathlib.Path) -> datetime.datetime:
    """Write a point-in-time RDB of the server at `url` to `path`; returns when it was taken."""
    args, env = redis_cli_args(url)
    taken = datetime.datetime.now(datetime.UTC)
    done = subprocess.run([_tool("redis-cli"), *args, "--rdb", str(path)], capture_output=True, timeout=600,
                          env={**os.environ, **env})
    if done.returncode != 0 or not path.exists():
        raise DrillsError(Exit.UNREACHABLE, "redis-cli --rdb failed: "
                          + (done.stderr or done.stdout).decode(errors="replace").strip())
    return taken


@dataclass
class SnapshotServer:
    """A redis-server of its own, loaded from a snapshot: the "new place" a Redis restore goes to."""

    directory: pathlib.Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_from(rdb: pathlib.Path, timeout: float = 60) -> SnapshotServer:
    """Start redis-server on `rdb` (in its directory) on a free port, and wait until it has loaded it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [_tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(rdb.parent),
         "--dbfilename", rdb.name, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = SnapshotServer(rdb.parent, port, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DrillsError(Exit.CORRUPT, f"redis-server refused the snapshot {rdb.name} (exit {process.returncode})")
        try:
            with client(server.url) as conn:
                if int(conn.info("persistence").get("loading", 1)) == 0:
                    return server
        except RedisError:
            pass
        time.sleep(0.05)
    server.stop()
    raise DrillsError(Exit.ERROR, f"redis-server did not load the snapshot within {timeout:.0f}s")


# Atomic (a Lua script runs alone): the snapshot's copy, now in KEYS[2], takes what the live writers added
# to KEYS[1] since the loss, then replaces it. Stream ids after the loss are newer than the snapshot's.
_MERGE_STREAM = """
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
for _, entry in ipairs(entries) do redis.call('XADD', KEYS[2], entry[1], unpack(entry[2])) end
redis.call('RENAME', KEYS[2], KEYS[1])
return #entries
"""
_MERGE_LIST = """
local values = redis.call('LRANGE', KEYS[1], 0, -1)
for _, value in ipairs(values) do redis.call('RPUSH', KEYS[2], value) end
redis.call('RENAME', KEYS[2], KEYS[1])
return #values
"""


@dataclass(frozen=True)
class Restored:
    restored: int  # keys the live Redis lacked, put back as they were
    merged: int  # streams and lists the writers had started again: the snapshot's entries put in front
    kept: int  # other keys the writers had rewritten: theirs is newer


def restore_keys(source_url: str, target_url: str) -> Restored:
    """Put the snapshot's keys (from the server at `source_url`) back into `target_url`, with their TTLs.
    A key the live writers already recreated keeps their data; streams (with their consumer groups) and
    lists get the snapshot's entries in front of the new ones."""
    restored = merged = kept = 0
    with client(source_url) as source, client(target_url) as target:
        merge_stream = target.register_script(_MERGE_STREAM)
        merge_list = target.register_script(_MERGE_LIST)
        for key in source.scan_iter(count=1000):
            payload: Any = source.dump(key)
            if payload is None:
                continue
            ttl = max(int(source.pttl(key)), 0)
            try:
                target.restore(key, ttl, payload)
                restored += 1
                continue
            except ResponseError as error:
                if "BUSYKEY" not in str(error):
                    raise
            kind = source.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind not in ("stream", "list"):
                kept += 1
                continue
            staging = key + b":drills-restore" if isinstance(key, bytes) else f"{key}:drills-restore"
            target.restore(staging, ttl, payload, replace=True)
            if kind == "stream":
                last = source.xinfo_stream(key)["last-generated-id"]
                merge_stream(keys=[key, staging], args=[last.decode() if isinstance(last, bytes) else last])
            else:
                merge_list(keys=[key, staging])
            merged += 1
    return Restored(restored, merged, kept)
