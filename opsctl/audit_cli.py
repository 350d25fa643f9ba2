"""opsctl audit: verify the hash-chained audit log, print its head (an anchor to keep elsewhere), list
entries, archive a month under S3 Object Lock.

Exit codes as opsctl's; 7 when `verify` finds the chain broken (an entry edited, deleted or moved)."""

from __future__ import annotations

import datetime
import itertools
import json
from typing import Annotated

import typer

from audit.archive import ArchiveError, archive_month, previous_month
from audit.chain import Anchor
from audit.store import AuditStoreError, Window, entries, verify_log
from drills.s3 import S3Settings, S3Store
from opsctl import kit, printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Output
from opsctl.tables import Column
from policies.recovery import load_recovery_policy

HELP = "The audit trail: verify the chain, its head, the entries, the monthly archive."
app = kit.group(HELP)
DatabaseOpt = Annotated[str, typer.Option(envvar="TRADEOPS_DATABASE_URL",
                                          help="PostgreSQL conninfo of the audit log ($TRADEOPS_DATABASE_URL)")]
LOG_COLUMNS = [Column("SEQ"), Column("OCCURRED"), Column("ACTOR"), Column("KIND"), Column("SYMBOL"),
               Column("DETAIL", wrap=True)]


def _anchors(values: list[str]) -> list[Anchor]:
    try:
        return [Anchor.parse(v) for v in values]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--anchor") from None


def _store_errors(error: AuditStoreError) -> OpsctlError:
    return OpsctlError(ExitCode.UNREACHABLE, str(error))


@verb(app)
def verify(
    out: Output,
    database_url: DatabaseOpt,
    anchor: Annotated[list[str] | None, typer.Option(
        help="SEQ:HASH kept from an earlier `opsctl audit head`: that entry must still be there, unchanged "
             "(catches a log cut short); repeatable")] = None,
) -> None:
    """Check every entry's hash and its link to the one before: exit 0 intact, 7 broken (each finding names
    the entry and whether it was edited, deleted, reordered or truncated)."""
    anchors = _anchors(anchor or [])
    try:
        result = verify_log(database_url, anchors)
    except AuditStoreError as error:
        raise _store_errors(error) from None
    data = {"ok": result.ok, "entries": result.entries, "head": str(result.head) if result.head else None,
            "findings": [{"seq": f.seq, "problem": f.problem.value, "message": f.message} for f in result.findings]}
    if not printing.emit(out, data):
        printing.say(result.summary())
        for finding in result.findings:
            printing.say(f"  entry {finding.seq}: {finding.problem.value}: {finding.message}")
    if not result.ok:
        raise OpsctlError(ExitCode.CHECK_FAILED, f"the audit chain does not verify: {len(result.findings)} "
                                                 "findings name the entries edited, deleted or moved")


@verb(app)
def head(out: Output, database_url: DatabaseOpt) -> None:
    """The newest entry as SEQ:HASH: keep it outside the database and pass it to `verify --anchor` later."""
    try:
        result = verify_log(database_url)
    except AuditStoreError as error:
        raise _store_errors(error) from None
    if result.head is None:
        raise OpsctlError(ExitCode.NOT_FOUND, "the audit log is empty")
    if not printing.emit(out, {"seq": result.head.seq, "hash": result.head.hash, "intact": result.ok}):
        printing.say(str(result.head))


@verb(app, "log")
def log_entries(
    out: Output,
    database_url: DatabaseOpt,
    since: Annotated[datetime.datetime | None, typer.Option(help="From this time (UTC unless an offset is given)")]
    = None,
    until: Annotated[datetime.datetime | None, typer.Option(help="Before this time")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only entries of this kind (repeatable)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (the oldest first)")] = 200,
) -> None:
    """Entries in chain order: who did what to which symbol, with the detail recorded."""
    def utc(moment: datetime.datetime | None) -> datetime.datetime | None:
        return moment.replace(tzinfo=datetime.UTC) if moment and moment.tzinfo is None else moment

    window = Window(utc(since), utc(until), tuple(kind or ()))
    try:
        found = list(itertools.islice(entries(database_url, window), limit))
    except AuditStoreError as error:
        raise _store_errors(error) from None
    data = [{"seq": e.seq, "recordedAt": e.recorded_at.isoformat(), "occurredAt": e.occurred_at.isoformat(),
             "actor": e.actor, "kind": e.kind, "subject": e.subject, "detail": json.loads(e.detail_text),
             "hash": e.hash} for e in found]
    if printing.emit(out, data):
        return
    printing.table(LOG_COLUMNS, [[str(e.seq), e.occurred_at.isoformat(timespec="seconds"), e.actor, e.kind,
                                  e.subject, e.detail_text] for e in found])


@verb(app)
def archive(
    out: Output,
    database_url: DatabaseOpt,
    bucket: Annotated[str, typer.Option(envvar="TRADEOPS_BACKUP_BUCKET", help="The backups bucket (Object Lock on)")],
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: last month)")] = None,
    prefix: Annotated[str, typer.Option(envvar="TRADEOPS_BACKUP_PREFIX", help="Key prefix in the bucket")] = "tradeops",
    s3_endpoint: Annotated[str | None, typer.Option(envvar="TRADEOPS_S3_ENDPOINT", help="S3 endpoint URL")] = None,
) -> None:
    """Write a month of the audit log (every change, order, fill, rejection, risk event) once into the backups
    bucket under Object Lock, kept as the RecoveryPolicy's `records` says (6 years by default)."""
    try:
        chosen = datetime.date.fromisoformat(f"{month}-01") if month else previous_month(datetime.date.today())
    except ValueError:
        raise typer.BadParameter(f"not a month: {month!r} (YYYY-MM)", param_hint="--month") from None
    records = load_recovery_policy().records
    try:
        with S3Store(S3Settings(bucket=bucket, prefix=prefix, endpoint=s3_endpoint)) as store:
            done = archive_month(database_url, store, chosen, records)
    except AuditStoreError as error:
        raise _store_errors(error) from None
    except ArchiveError as error:
        raise OpsctlError(ExitCode.REJECTED, str(error)) from None
    data = {"key": done.key, "entries": done.entries, "sha256": done.sha256,
            "retainUntil": done.retain_until.isoformat(), "chainHead": str(done.head) if done.head else None}
    if not printing.emit(out, data):
        printing.say(f"archived {done.entries} entries of {chosen:%Y-%m} to s3://{bucket}/{done.key}, locked until "
                     f"{done.retain_until:%Y-%m-%d}")
