"""WAL archiving to S3, called by PostgreSQL itself:

    archive_command = 'python -m drills.wal_archive push --bucket B --prefix P %p %f'
    restore_command = 'python -m drills.wal_archive fetch --bucket B --prefix P %f %p'

Credentials come from the server's environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role).
`push` is idempotent: the same segment again succeeds, a different one under the same name fails (so
PostgreSQL keeps it and retries). `fetch` exits 1 when the segment is not archived (which is how recovery
learns it reached the end of the archive) and 2 when it is corrupted (SHA-256 differs)."""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import sys

from drills.errors import DrillsError, Exit
from drills.manifest import wal_key
from drills.s3 import S3Settings, S3Store


def push(store: S3Store, source: pathlib.Path, name: str) -> str:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills.wal_archive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("verb", choices=["push", "fetch"])
    parser.add_argument("first", help="push: the segment's path (%%p); fetch: its name (%%f)")
    parser.add_argument("second", help="push: the segment's name (%%f); fetch: where to write it (%%p)")
    parser.add_argument("--bucket", default=os.environ.get("TRADEOPS_BACKUP_BUCKET"))
    parser.add_argument("--prefix", default=os.environ.get("TRADEOPS_BACKUP_PREFIX", "tradeops"))
    parser.add_argument("--endpoint", default=os.environ.get("TRADEOPS_S3_ENDPOINT"))
    parser.add_argument("--region", default=os.environ.get("TRADEOPS_S3_REGION", "us-east-1"))
    parser.add_argument("--no-sse", action="store_true", help="do not request server-side encryption")
    args = parser.parse_args(argv)
    if not args.bucket:
        print("wal_archive: no bucket (--bucket or TRADEOPS_BACKUP_BUCKET)", file=sys.stderr)
        return 2
    settings = S3Settings(bucket=args.bucket, prefix=args.prefix, endpoint=args.endpoint or None,
                          region=args.region, sse=None if args.no_sse else os.environ.get("TRADEOPS_S3_SSE", "AES256"))
    try:
        with S3Store(settings) as store:
            if args.verb == "push":
                push(store, pathlib.Path(args.first), args.second)
                return 0
            return 0 if fetch(store, args.first, pathlib.Path(args.second)) else 1
    except DrillsError as error:
        print(f"wal_archive: {error.message}", file=sys.stderr)
        return 2 if args.verb == "fetch" else int(error.code) or 1


if __name__ == "__main__":
    sys.exit(main())
