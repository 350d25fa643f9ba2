"""`opsctl backup create | list | verify | restore | prune` (also `python -m drills backup ...`): backups of
PostgreSQL and Redis in S3, with manifests and checksums. Settings: opsctl.storage."""

from __future__ import annotations

import datetime
from typing import Annotated

import typer

from drills import backups
from drills.manifest import Kind, summary
from drills.progress import bars
from drills.s3 import S3Store
from opsctl import kit, printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Output
from opsctl.storage import Storage
from opsctl.tables import Column
from policies.recovery import load_recovery_policy

HELP = "Backups to S3: create, list, verify, restore, prune."
app = kit.group(HELP, Storage)
LIST_COLUMNS = [Column("ID"), Column("KIND"), Column("SOURCE TIME"), Column("LSN"), Column("BYTES"), Column("ROWS")]


@verb(app, "create")
def create(
    storage: Storage,
    out: Output,
    kind: Annotated[Kind, typer.Option(help="postgres (pg_dump), base (for point-in-time recovery) or redis")]
    = Kind.POSTGRES,
    prune: Annotated[bool, typer.Option(help="Apply the retention policy afterwards")] = False,
) -> None:
    """Take a backup and stream it to S3 (multipart, SHA-256 per object, manifest written last)."""
    settings = storage.settings()
    take = {Kind.POSTGRES: backups.create_postgres, Kind.BASE: backups.create_base,
            Kind.REDIS: backups.create_redis}[kind]
    with S3Store(settings.s3()) as store:
        manifest = take(settings, store, bars)
        deleted = 0
        if prune:
            plan = backups.retention_plan(store, load_recovery_policy(settings.policy_path).retention)
            deleted = backups.apply_retention(store, plan)
    if not printing.emit(out, {**summary(manifest), "pruned_objects": deleted}):
        printing.say(f"{manifest.id}: {manifest.size} bytes, sha256 {manifest.objects[0].sha256}, "
                f"source time {manifest.source.time.isoformat()}" + (f", pruned {deleted} objects" if prune else ""))


@verb(app, "list")
def list_(
    storage: Storage,
    out: Output,
    kind: Annotated[Kind | None, typer.Option(help="Only this kind")] = None,
) -> None:
    """Backups in S3, oldest first; incomplete ones (no manifest) are named on stderr. None at all is exit
    code 3."""
    settings = storage.settings()
    with S3Store(settings.s3()) as store:
        manifests, incomplete = backups.list_backups(store, kind)
    rows = [summary(m) for m in manifests]
    for ident in incomplete:
        printing.note(f"incomplete backup (no manifest): {ident}")
    if not rows:
        raise OpsctlError(ExitCode.NOT_FOUND, f"no {kind.value + ' ' if kind else ''}backups in "
                                              f"s3://{settings.bucket}/{settings.prefix}: take one with "
                                              "`opsctl backup create`, or check --bucket/--prefix")
    if not printing.emit(out, {"backups": rows, "incomplete": incomplete}):
        printing.table(LIST_COLUMNS, [[r["id"], r["kind"], r["sourceTime"], str(r["lsn"] or "-"), str(r["bytes"]),
                                  str(r["rows"])] for r in rows])


@verb(app, "verify")
def verify(
    storage: Storage,
    out: Output,
    backup: Annotated[str, typer.Argument(help="Backup id, or latest / latest-postgres|base|redis")] = "latest",
) -> None:
    """Download every object of a backup and recompute its size and SHA-256 (exit 6 when it differs)."""
    with S3Store(storage.settings().s3()) as store:
        manifest = backups.find(store, backup)
        problems = backups.verify(store, manifest, bars)
    if problems:
        raise OpsctlError(ExitCode.REJECTED, f"backup {manifest.id} failed verification: {'; '.join(problems)}")
    if not printing.emit(out, {"id": manifest.id, "verified": True, "objects": len(manifest.objects),
                          "bytes": manifest.size}):
        printing.say(f"{manifest.id}: ok ({len(manifest.objects)} objects, {manifest.size} bytes, SHA-256 match)")


@verb(app, "restore")
def restore(
    storage: Storage,
    out: Output,
    backup: Annotated[str, typer.Argument(help="Backup id, or latest")] = "latest",
    into: Annotated[str | None, typer.Option(help="New database name (default: restored_<id>)")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="pg_restore parallel jobs")] = 2,
) -> None:
    """Restore a logical backup into a NEW database on the restore server (verified first; refused when
    corrupted or incomplete)."""
    settings = storage.settings()
    with S3Store(settings.s3()) as store:
        manifest = backups.find(store, backup)
        name = into or "restored_" + "".join(c if c.isalnum() else "_" for c in manifest.id.lower())
        started = datetime.datetime.now(datetime.UTC)
        backups.restore_postgres(settings, store, manifest, name, jobs, bars)
    seconds = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
    if not printing.emit(out, {"id": manifest.id, "database": name, "seconds": seconds}):
        printing.say(f"{manifest.id}: restored into database {name} in {seconds:.1f}s")


@verb(app, "prune")
def prune(
    storage: Storage,
    out: Output,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be deleted")] = False,
) -> None:
    """Apply the retention policy: delete old backups and WAL no kept base backup needs."""
    settings = storage.settings()
    with S3Store(settings.s3()) as store:
        plan = backups.retention_plan(store, load_recovery_policy(settings.policy_path).retention)
        deleted = 0 if dry_run else backups.apply_retention(store, plan)
    data = {"deleteBackups": list(plan.delete_backups), "keepBackups": list(plan.keep_backups),
            "deleteWal": len(plan.delete_wal), "deletedObjects": deleted, "dryRun": dry_run}
    if not printing.emit(out, data):
        printing.say(f"{'would delete' if dry_run else 'deleted'} {len(plan.delete_backups)} backups and "
                f"{len(plan.delete_wal)} WAL segments; kept {len(plan.keep_backups)} backups")
