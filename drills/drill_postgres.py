"""The PostgreSQL drills: restore-latest (logical backup → new database) and point-in-time (base backup +
archived WAL → new server, stopped at T). Both measure RTO from the drill's start to a restored copy that
passed its checks, and RPO from the data itself."""

from __future__ import annotations

import datetime
import pathlib
import re
import tempfile
import time
from typing import Any

import psycopg

from drills import backups, pitr, postgres
from drills.context import DrillContext, Outcome
from drills.errors import DrillsError, Exit
from drills.manifest import Kind, Manifest, compare_tables
from drills.objectives import reference_point, rpo_seconds
from drills.report import Check


def _source_latest(ctx: DrillContext, facts: dict[str, Any]) -> datetime.datetime | None:
    """The newest row the live database has now (None when it is gone: that may be the disaster)."""
    if not ctx.settings.database_url:
        facts["source"] = "not configured"
        return None
    try:
        with postgres.connect(ctx.settings.database_url) as conn:
            return postgres.newest(conn)
    except DrillsError as error:
        facts["source"] = f"unreachable ({error.message})"
        return None


def restore_latest(ctx: DrillContext) -> Outcome:
    disaster, clock = ctx.started_at, time.monotonic()
    manifest = backups.find(ctx.store, str(ctx.params.get("backup", "latest")))
    if manifest.kind is not Kind.POSTGRES:
        raise DrillsError(Exit.USAGE, f"restore-latest takes a postgres backup, not {manifest.id}")
    facts: dict[str, Any] = {"backup_source_time": manifest.source.time.isoformat(), "backup_bytes": manifest.size,
                             "backup_lsn": manifest.source.lsn}
    source_latest = _source_latest(ctx, facts)
    name = "drill_" + re.sub(r"[^a-z0-9]", "_", manifest.id.lower())[-40:] + f"_{int(disaster.timestamp())}"
    # Into TRADEOPS_RESTORE_DSN's server, or a scratch server of the drill's own: never the archived source.
    scratch = None if ctx.settings.restore_dsn else pathlib.Path(
        tempfile.mkdtemp(prefix="tradeops-restore-", dir=ctx.settings.workdir))
    server: pitr.RecoveredServer | None = None
    try:
        server = pitr.start_scratch(scratch / "server") if scratch else None
        admin = server.dsn if server else ctx.settings.restore_server()
        facts["restore_server"] = "scratch" if server else "TRADEOPS_RESTORE_DSN"
        restore_clock = time.monotonic()
        dsn = backups.restore_postgres(ctx.settings, ctx.store, manifest, name, int(ctx.params.get("jobs", 2)),
                                       ctx.progress, admin)
        facts["restore_seconds"] = round(time.monotonic() - restore_clock, 3)  # download, verify, pg_restore
    except BaseException:
        _discard(server, scratch)
        raise
    try:
        with postgres.connect(dsn) as conn:
            restored = postgres.table_stats(conn, manifest.tables)
            problems = compare_tables(manifest.tables, restored)
            checks = [Check(name="backup verified (size, SHA-256)", ok=True, detail=manifest.objects[0].sha256[:16]),
                      Check(name="row counts and key-table checksums match the manifest", ok=not problems,
                            detail="; ".join(problems) or f"{sum(t.rows for t in restored.values())} rows in "
                            f"{len(restored)} tables"),
                      *postgres.invariant_checks(conn)]
            restored_latest = postgres.newest(conn)
        rto = time.monotonic() - clock
    finally:
        if ctx.params.get("keep"):
            facts["restored_database"] = name
            if server is not None:  # trust on loopback: its DSN holds no secret
                facts["restored_server"] = server.dsn
        elif server is not None:
            _discard(server, scratch)
        else:
            postgres.drop_database(admin, name)
    reference = reference_point(source_latest, None, disaster)
    facts["restored_newest_row"] = restored_latest.isoformat() if restored_latest else None
    return Outcome(rto_seconds=rto, rpo_seconds=rpo_seconds(reference, restored_latest, manifest.source.time),
                   backup_id=manifest.id, checks=checks, facts=facts)


def _discard(server: pitr.RecoveredServer | None, scratch: pathlib.Path | None) -> None:
    if server is not None:
        server.destroy()
    if scratch is not None:
        pitr.remove(scratch)


def _target(ctx: DrillContext) -> datetime.datetime | None:
    raw = ctx.params.get("target")
    if raw == "latest":
        return None
    if raw:
        value = raw if isinstance(raw, datetime.datetime) else datetime.datetime.fromisoformat(str(raw))
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return ctx.started_at - datetime.timedelta(seconds=float(ctx.params.get("agoSeconds", 60)))


def _base_for(ctx: DrillContext, target: datetime.datetime | None) -> Manifest:
    manifests, _ = backups.list_backups(ctx.store, Kind.BASE)
    usable = [m for m in manifests if target is None or m.source.time <= target]
    if not usable:
        when = f"before {target.isoformat()}" if target else "at all"
        raise DrillsError(Exit.NOT_FOUND, f"no base backup {when} in s3://{ctx.store.bucket}/"
                          f"{ctx.store.settings.prefix}: run `python -m drills backup create --kind base`")
    return usable[-1]


def _source_counts(ctx: DrillContext, tables: list[str], before: datetime.datetime) -> dict[str, int] | None:
    if not ctx.settings.database_url:
        return None
    try:
        with postgres.connect(ctx.settings.database_url) as conn:
            return {t: postgres.count_where(conn, t, "<=", before) for t in tables}
    except DrillsError:
        return None


def _check_recovered(ctx: DrillContext, dsn: str, target: datetime.datetime | None, margin: datetime.timedelta,
                     base: Manifest) -> tuple[list[Check], datetime.datetime | None]:
    """Rows after T absent, rows up to T - margin as many as the source has, the invariants."""
    with psycopg.connect(dsn) as conn:
        tables = postgres.existing_tables(conn)
        checks = [Check(name="base backup verified (size, SHA-256)", ok=True, detail=base.id)]
        if target is not None:
            after = {t: postgres.count_where(conn, t, ">", target) for t in tables}
            late = {t: n for t, n in after.items() if n}
            checks.append(Check(name="rows after T are absent", ok=not late,
                                detail=f"{late or 'none'} after {target.isoformat()}"))
            cutoff = target - margin
            present = {t: postgres.count_where(conn, t, "<=", cutoff) for t in tables}
            expected = _source_counts(ctx, tables, cutoff)
            if expected is not None:
                missing = {t: expected[t] - present[t] for t in tables if present[t] != expected[t]}
                checks.append(Check(name="rows before T are present", ok=not missing,
                                    detail=f"{sum(present.values())} rows up to {cutoff.isoformat()}"
                                    + (f"; differs from the source by {missing}" if missing else
                                       ", as many as the source has")))
        checks += postgres.invariant_checks(conn)
        return checks, postgres.newest(conn)


def point_in_time(ctx: DrillContext) -> Outcome:
    disaster, clock = ctx.started_at, time.monotonic()
    target = _target(ctx)
    base = _base_for(ctx, target)
    margin = datetime.timedelta(seconds=float(ctx.params.get("marginSeconds", 1.0)))
    facts: dict[str, Any] = {"target": target.isoformat() if target else "latest", "base_backup_time":
                             base.source.time.isoformat(), "base_start_wal": base.source.start_wal}
    source_latest = _source_latest(ctx, facts)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-pitr-", dir=ctx.settings.workdir))
    server: pitr.RecoveredServer | None = None
    try:
        tar = scratch / "base.tar"
        backups.download_verified(ctx.store, base.objects[0], tar, ctx.progress)
        server = pitr.unpack(tar, scratch / "server")
        tar.unlink()
        facts["fetch_seconds"] = round(time.monotonic() - clock, 3)  # to a base backup unpacked, verified
        restore_command = pitr.wal_command(ctx.settings.wal_python, ctx.store.settings, "fetch",
                                           server.directory / "wal-prefetch")
        replay_clock = time.monotonic()
        pitr.recover(server, restore_command, target, float(ctx.params.get("timeoutSeconds", 300)))
        facts["replay_seconds"] = round(time.monotonic() - replay_clock, 3)
        checks, restored_latest = _check_recovered(ctx, server.dsn, target, margin, base)
        rto = time.monotonic() - clock
    finally:
        if ctx.params.get("keep") and server is not None:
            facts["recovered_server"] = server.dsn
        else:
            if server is not None:
                server.destroy()
            pitr.remove(scratch)
    facts["restored_newest_row"] = restored_latest.isoformat() if restored_latest else None
    reference = reference_point(source_latest, target, disaster)
    return Outcome(rto_seconds=rto, rpo_seconds=rpo_seconds(reference, restored_latest, base.source.time),
                   backup_id=base.id, checks=checks, facts=facts)
