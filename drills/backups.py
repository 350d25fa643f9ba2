"""Backups as operations: create (PostgreSQL logical dump, base backup, Redis snapshot), list, verify,
download-verified, restore into a new database, and retention. A backup is complete when its manifest is
written, which happens last."""

from __future__ import annotations

import datetime
import pathlib
import tempfile

from drills import pitr, postgres, redis_snapshot
from drills.config import Settings
from drills.errors import DrillsError, Exit
from drills.manifest import (
    MANIFEST_NAME,
    Kind,
    Manifest,
    Source,
    StoredObject,
    backup_id,
    backup_prefix,
    kind_of,
    parse_manifest,
    verify_objects,
)
from drills.progress import Transfers, silent
from drills.retention import BackupRef, RetentionPlan, plan_retention
from drills.s3 import S3Store
from policies.recovery import Retention

DUMP_NAME = "database.pgdump"
BASE_NAME = "base.tar"
RDB_NAME = "dump.rdb"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _finish(store: S3Store, manifest: Manifest) -> Manifest:
    key = backup_prefix(store.settings.prefix, manifest.kind, manifest.id) + MANIFEST_NAME
    store.put_bytes(key, manifest.model_dump_json(indent=2).encode(), "application/json")
    return manifest


def create_postgres(settings: Settings, store: S3Store, progress: Transfers = silent) -> Manifest:
    """pg_dump (custom format) of one consistent snapshot, streamed to S3 in parts; the manifest records
    the snapshot's row counts, key-table checksums, LSN and time."""
    started = _now()
    ident = backup_id(Kind.POSTGRES, started)
    key = backup_prefix(store.settings.prefix, Kind.POSTGRES, ident) + DUMP_NAME
    dump = postgres.ConsistentDump(settings.need_database())
    try:
        process = dump.start()
        assert process.stdout is not None
        with progress(f"upload {ident}", None) as advance:
            stored = store.upload_stream(key, process.stdout, advance)
    except BaseException:
        dump.abort()
        raise
    dump.finish()
    return _finish(store, Manifest(id=ident, kind=Kind.POSTGRES, created_at=started, completed_at=_now(),
                                   source=dump.source, tables=dump.tables, objects=[stored],
                                   encryption=store.settings.sse))


def create_base(settings: Settings, store: S3Store, progress: Transfers = silent) -> Manifest:
    """A base backup (the starting point of point-in-time recovery) streamed to S3."""
    started = _now()
    ident = backup_id(Kind.BASE, started)
    key = backup_prefix(store.settings.prefix, Kind.BASE, ident) + BASE_NAME
    dsn = settings.need_database()
    with postgres.connect(dsn) as conn:
        before = postgres.source_facts(conn)
    backup = pitr.BaseBackup(dsn)
    try:
        with progress(f"upload {ident}", None) as advance:
            stored = store.upload_stream(key, backup.stdout, advance)
    except BaseException:
        backup.process.kill()
        raise
    lsn, start_wal = backup.finish()
    with postgres.connect(dsn) as conn:
        after = postgres.source_facts(conn)
    # Consistent from the end of the backup on: recovery targets must lie after `after.time`.
    source = Source(time=after.time, lsn=lsn, server_version=before.server_version, database=before.database,
                    start_wal=start_wal)
    return _finish(store, Manifest(id=ident, kind=Kind.BASE, created_at=started, completed_at=_now(),
                                   source=source, objects=[stored], encryption=store.settings.sse))


def create_redis(settings: Settings, store: S3Store, progress: Transfers = silent) -> Manifest:
    """An RDB snapshot of Redis, with the number of keys per database."""
    started = _now()
    ident = backup_id(Kind.REDIS, started)
    url = settings.need_redis()
    with tempfile.TemporaryDirectory(dir=settings.workdir) as scratch:
        rdb = pathlib.Path(scratch) / RDB_NAME
        keys = redis_snapshot.keyspace(url)
        taken = redis_snapshot.fetch_rdb(url, rdb)
        key = backup_prefix(store.settings.prefix, Kind.REDIS, ident) + RDB_NAME
        with rdb.open("rb") as stream, progress(f"upload {ident}", rdb.stat().st_size) as advance:
            stored = store.upload_stream(key, stream, advance)
    return _finish(store, Manifest(id=ident, kind=Kind.REDIS, created_at=started, completed_at=_now(),
                                   source=Source(time=taken), tables=keys, objects=[stored],
                                   encryption=store.settings.sse))


def list_backups(store: S3Store, kind: Kind | None = None) -> tuple[list[Manifest], list[str]]:
    """Complete backups (oldest first) and the ids of incomplete ones (objects but no manifest)."""
    root = f"{store.settings.prefix.strip('/')}/backups/" + (f"{kind.value}/" if kind else "")
    manifests: list[Manifest] = []
    seen: dict[str, bool] = {}
    for key, _size in store.objects(root):
        parts = key[len(root):].split("/")
        ident = parts[-2] if len(parts) >= 2 else parts[0]
        is_manifest = parts[-1] == MANIFEST_NAME
        seen[ident] = seen.get(ident, False) or is_manifest
        if is_manifest:
            manifests.append(parse_manifest(store.get_bytes(key)))
    manifests.sort(key=lambda m: (m.created_at, m.id))
    return manifests, sorted(i for i, complete in seen.items() if not complete)


def find(store: S3Store, ident: str) -> Manifest:
    """A backup by id, or the newest of a kind with `latest` / `latest-postgres|base|redis`."""
    if ident == "latest" or ident.startswith("latest-"):
        kind = Kind(ident.removeprefix("latest-")) if ident != "latest" else Kind.POSTGRES
        manifests, _ = list_backups(store, kind)
        if not manifests:
            raise DrillsError(Exit.NOT_FOUND, f"no {kind.value} backup in s3://{store.bucket}/{store.settings.prefix}")
        return manifests[-1]
    try:
        kind = kind_of(ident)
    except ValueError as error:
        raise DrillsError(Exit.NOT_FOUND, str(error)) from None
    prefix = backup_prefix(store.settings.prefix, kind, ident)
    if store.metadata(prefix + MANIFEST_NAME) is None:
        if any(True for _ in store.objects(prefix)):
            raise DrillsError(Exit.CORRUPT, f"backup {ident} is incomplete: it has no manifest (the backup did "
                              "not finish)")
        raise DrillsError(Exit.NOT_FOUND, f"no backup {ident} in s3://{store.bucket}/{store.settings.prefix}")
    return parse_manifest(store.get_bytes(prefix + MANIFEST_NAME))


def verify(store: S3Store, manifest: Manifest, progress: Transfers = silent) -> list[str]:
    """Download every object, recompute size and SHA-256, compare with the manifest."""
    present = dict(store.objects(backup_prefix(store.settings.prefix, manifest.kind, manifest.id)))
    observed: dict[str, tuple[int, str] | None] = {}
    for obj in manifest.objects:
        if obj.key not in present:
            observed[obj.key] = None
            continue
        with progress(f"verify {obj.key.rsplit('/', 1)[-1]}", present[obj.key]) as advance:
            observed[obj.key] = store.download(obj.key, None, advance)
    return verify_objects(manifest.objects, observed)


def download_verified(store: S3Store, obj: StoredObject, path: pathlib.Path, progress: Transfers = silent) -> None:
    """Download an object, refusing it (and deleting the copy) unless it matches its manifest entry."""
    if store.metadata(obj.key) is None:
        raise DrillsError(Exit.CORRUPT, f"{obj.key}: missing (incomplete backup): refusing to restore")
    with path.open("wb") as sink, progress(f"download {obj.key.rsplit('/', 1)[-1]}", obj.size) as advance:
        size, digest = store.download(obj.key, sink, advance)
    problems = verify_objects([obj], {obj.key: (size, digest)})
    if problems:
        path.unlink()
        raise DrillsError(Exit.CORRUPT, f"{problems[0]}: refusing to restore")


def restore_postgres(settings: Settings, store: S3Store, manifest: Manifest, dbname: str, jobs: int = 2,
                     progress: Transfers = silent, server: str | None = None) -> str:
    """Restore a logical backup into a new database `dbname` on `server` (default: the restore server);
    returns its DSN. The dump is verified before anything is created."""
    if manifest.kind is not Kind.POSTGRES:
        raise DrillsError(Exit.USAGE, f"{manifest.id} is a {manifest.kind.value} backup: restore takes a postgres "
                          "backup (point-in-time recovery: `drills run point-in-time`)")
    admin = server or settings.restore_server()
    with tempfile.TemporaryDirectory(dir=settings.workdir) as scratch:
        dump = pathlib.Path(scratch) / DUMP_NAME
        download_verified(store, manifest.objects[0], dump, progress)
        dsn = postgres.create_database(admin, dbname)
        try:
            postgres.pg_restore(dump, dsn, jobs)
        except BaseException:
            postgres.drop_database(admin, dbname)
            raise
    return dsn


def retention_plan(store: S3Store, policy: Retention, now: datetime.datetime | None = None) -> RetentionPlan:
    manifests, _ = list_backups(store)
    refs = [BackupRef(m.id, m.kind, m.created_at, m.source.start_wal) for m in manifests]
    wal_root = f"{store.settings.prefix.strip('/')}/wal/"
    segments = [key[len(wal_root):] for key, _ in store.objects(wal_root)]
    return plan_retention(refs, segments, policy, now or _now())


def apply_retention(store: S3Store, plan: RetentionPlan) -> int:
    """Delete what the plan says; returns the number of objects deleted."""
    keys: list[str] = []
    for ident in plan.delete_backups:
        keys += [key for key, _ in store.objects(backup_prefix(store.settings.prefix, kind_of(ident), ident))]
    wal_root = f"{store.settings.prefix.strip('/')}/wal/"
    keys += [wal_root + segment for segment in plan.delete_wal]
    store.delete(keys)
    return len(keys)
