"""WAL archiving to S3, called by PostgreSQL itself:

    archive_command = 'python -m drills.wal_archive push --bucket B --prefix P %p %f'
    restore_command = 'python -m drills.wal_archive fetch --bucket B --prefix P %f %p'

Credentials come from the server's environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role).
`push` is idempotent: the same segment again succeeds, a different one under the same name fails (so
PostgreSQL keeps it and retries). `fetch` exits 1 when the segment is not archived (which is how recovery
learns it reached the end of the archive) and 2 when it is corrupted (SHA-256 differs).

`fetch --spool DIR` also keeps the next `--prefetch` segments (8) downloading, verified, into DIR in the
background (one detached `prefetch` process at a time): recovery asks for one segment at a time, and a
Python start plus a download per 16 MB segment, one after the other, is most of a long replay. A fetch
finding its segment in DIR only moves it (no S3 client, no download)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from drills.errors import DrillsError, Exit

if TYPE_CHECKING:  # boto3 is imported only when S3 is used: a fetch from the spool needs neither
    from drills.s3 import S3Store

SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
WANTED, LOCK = ".wanted", ".lock"
IDLE_SECONDS = 30  # a prefetcher whose recovery stopped asking exits after this long


def push(store: S3Store, source: pathlib.Path, name: str) -> str:
    from drills.manifest import wal_key  # pydantic: not for a fetch from the spool

    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    key = wal_key(store.settings.prefix, name)
    meta = store.metadata(key)
    if meta is not None:
        if meta.get("sha256") == digest:
            return "already archived"
        raise DrillsError(Exit.ERROR, f"{key} exists with other content: refusing to overwrite")
    store.put_bytes(key, data)
    return "archived"


def fetch(store: S3Store, name: str, destination: pathlib.Path) -> bool:
    """Copy an archived segment to `destination`; False when it was never archived."""
    from drills.manifest import wal_key

    key = wal_key(store.settings.prefix, name)
    meta = store.metadata(key)
    if meta is None:
        return False
    partial = destination.with_name(destination.name + ".part")
    with partial.open("wb") as sink:
        _, digest = store.download(key, sink)
    if meta.get("sha256") not in (None, digest):
        partial.unlink()
        raise DrillsError(Exit.CORRUPT, f"{key}: SHA-256 differs from the one archived (corrupted)")
    partial.rename(destination)
    return True


def following(name: str, segment_bytes: int, count: int) -> list[str]:
    """The `count` segment names after `name` on its timeline (none for history and backup-label files)."""
    match = SEGMENT.match(name)
    if match is None or segment_bytes <= 0:
        return []
    per_log = 0x1_0000_0000 // segment_bytes
    timeline, number = match.group(1), int(match.group(2), 16) * per_log + int(match.group(3), 16)
    return [f"{timeline}{n // per_log:08X}{n % per_log:08X}" for n in range(number + 1, number + 1 + count)]


def from_spool(spool: pathlib.Path, name: str, destination: pathlib.Path) -> bool:
    """Move a prefetched (already verified) segment into place; False when it is not there (yet)."""
    try:
        os.replace(spool / name, destination)
    except FileNotFoundError:
        return False
    except OSError:  # another filesystem
        destination.write_bytes((spool / name).read_bytes())
        (spool / name).unlink()
    return True


@contextlib.contextmanager
def _prefetch_lock(spool: pathlib.Path) -> Iterator[bool]:
    """Whether we hold the spool's lock (one prefetcher at a time), held for the block."""
    with (spool / LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def want(spool: pathlib.Path, name: str, segment_bytes: int, argv: list[str]) -> None:
    """Tell the prefetcher which segment recovery is at; start one when none is running."""
    spool.mkdir(mode=0o700, exist_ok=True)
    (spool / (WANTED + ".new")).write_text(f"{name} {segment_bytes}")
    os.replace(spool / (WANTED + ".new"), spool / WANTED)
    with _prefetch_lock(spool) as free:
        running = not free
    if not running:
        subprocess.Popen([sys.executable, "-m", "drills.wal_archive", *argv], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prefetch(store: S3Store, spool: pathlib.Path, ahead: int, idle: float = IDLE_SECONDS) -> None:
    """Keep the `ahead` segments after the wanted one in `spool`, downloading several at once and dropping
    those recovery has passed; returns at the end of the archive or when recovery stops asking."""
    with _prefetch_lock(spool) as mine, ThreadPoolExecutor(max_workers=min(ahead, 4)) as pool:
        if not mine:
            return
        last, since = "", time.monotonic()
        while time.monotonic() - since < idle:
            try:
                name, size = (spool / WANTED).read_text().split()
            except (FileNotFoundError, ValueError):
                return
            if name != last:
                last, since = name, time.monotonic()
                for stale in spool.iterdir():
                    if SEGMENT.match(stale.name) and stale.name <= name:
                        stale.unlink(missing_ok=True)
            window = [n for n in following(name, int(size), ahead) if not (spool / n).exists()]
            if not all(pool.map(lambda n: _spool(store, spool, n), window)):
                return  # the end of the archive (for now)
            time.sleep(0.2)


def _spool(store: S3Store, spool: pathlib.Path, name: str) -> bool:
    part = spool / (name + ".part")
    found = fetch(store, name, part)
    if found:
        os.replace(part, spool / name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills.wal_archive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("verb", choices=["push", "fetch", "prefetch"])
    parser.add_argument("first", help="push: the segment's path (%%p); fetch: its name (%%f)")
    parser.add_argument("second", help="push: the segment's name (%%f); fetch: where to write it (%%p)")
    parser.add_argument("--bucket", default=os.environ.get("TRADEOPS_BACKUP_BUCKET"))
    parser.add_argument("--prefix", default=os.environ.get("TRADEOPS_BACKUP_PREFIX", "tradeops"))
    parser.add_argument("--endpoint", default=os.environ.get("TRADEOPS_S3_ENDPOINT"))
    parser.add_argument("--region", default=os.environ.get("TRADEOPS_S3_REGION", "us-east-1"))
    parser.add_argument("--no-sse", action="store_true", help="do not request server-side encryption")
    parser.add_argument("--spool", type=pathlib.Path, help="fetch: prefetch the following segments into this "
                        "directory (the server's user must own it or its parent)")
    parser.add_argument("--prefetch", type=int, default=8, help="fetch --spool: how many segments ahead (8)")
    args = parser.parse_args(argv)
    if not args.bucket:
        print("wal_archive: no bucket (--bucket or TRADEOPS_BACKUP_BUCKET)", file=sys.stderr)
        return 2
    if args.verb == "prefetch" and not args.spool:
        print("wal_archive: prefetch needs --spool", file=sys.stderr)
        return 2
    destination = pathlib.Path(args.second)
    if args.verb == "fetch" and args.spool and from_spool(args.spool, args.first, destination):
        want(args.spool, args.first, destination.stat().st_size, _prefetcher_argv(argv))
        return 0
    from drills.s3 import S3Settings, S3Store

    settings = S3Settings(bucket=args.bucket, prefix=args.prefix, endpoint=args.endpoint or None,
                          region=args.region, sse=None if args.no_sse else os.environ.get("TRADEOPS_S3_SSE", "AES256"))
    try:
        with S3Store(settings) as store:
            if args.verb == "push":
                push(store, pathlib.Path(args.first), args.second)
                return 0
            if args.verb == "prefetch":
                prefetch(store, args.spool, max(1, args.prefetch))  # --spool checked above
                return 0
            if not fetch(store, args.first, destination):
                return 1
        if args.spool and SEGMENT.match(args.first):  # not after a history file: its name is no position
            want(args.spool, args.first, destination.stat().st_size, _prefetcher_argv(argv))
        return 0
    except DrillsError as error:
        print(f"wal_archive: {error.message}", file=sys.stderr)
        return 2 if args.verb == "fetch" else int(error.code) or 1


def _prefetcher_argv(argv: list[str] | None) -> list[str]:
    """This fetch's command line as the prefetcher's: the same bucket and options, verb `prefetch`."""
    args = list(sys.argv[1:] if argv is None else argv)
    args[args.index("fetch")] = "prefetch"
    return args


if __name__ == "__main__":
    sys.exit(main())
