"""The audit log in PostgreSQL: append entries (the database numbers and hashes them), read them back in
chain order, and verify the chain. The table and its triggers are the runtime's migrations
(`trading_runtime.storage.schema`); `ensure_schema` applies them."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from audit.chain import Anchor, Entry, Verification, verify
from audit.entries import NewEntry
from trading_runtime.storage.schema import migrate

_COLUMNS = "seq, recorded_at, occurred_at, actor, kind, subject, detail::text, source_key, prev_hash, hash"


class AuditStoreError(RuntimeError):
    """The audit database cannot be reached or refused the request."""


def ensure_schema(conninfo: str) -> None:
    """Apply the runtime's migrations (the audit log is one of them); idempotent."""
    migrate(conninfo)


def connect(conninfo: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(conninfo, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise AuditStoreError(f"cannot reach the audit database: {str(error).strip().splitlines()[0]}") from None


def append(conninfo: str, entries: Sequence[NewEntry]) -> int:
    """Append entries in one transaction, in order; an entry whose source_key is already recorded is skipped.
    Returns how many were appended."""
    if not entries:
        return 0
    appended = 0
    with connect(conninfo) as conn, conn.transaction(), conn.cursor() as cursor:
        for entry in entries:
            cursor.execute(
                "INSERT INTO audit_log (occurred_at, actor, kind, subject, detail, source_key) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (source_key) DO NOTHING",
                (entry.occurred_at, entry.actor, entry.kind.value, entry.subject, Jsonb(entry.detail),
                 entry.source_key))
            appended += cursor.rowcount
    return appended


@dataclass(frozen=True)
class Window:
    """Entries that occurred in [start, end) (either open), optionally of some kinds only."""

    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    kinds: tuple[str, ...] = ()

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        if self.start is not None:
            clauses.append("occurred_at >= %s")
            args.append(self.start)
        if self.end is not None:
            clauses.append("occurred_at < %s")
            args.append(self.end)
        if self.kinds:
            clauses.append("kind = ANY(%s)")
            args.append(list(self.kinds))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _entry(row: tuple[object, ...]) -> Entry:
    seq, recorded, occurred, actor, kind, subject, detail, key, prev_hash, digest = row
    assert isinstance(recorded, datetime.datetime)
    assert isinstance(occurred, datetime.datetime)
    return Entry(int(str(seq)), recorded, occurred, str(actor), str(kind), str(subject), str(detail),
                 None if key is None else str(key), str(prev_hash), str(digest))


def entries(conninfo: str, window: Window | None = None, batch: int = 5000) -> Iterator[Entry]:
    """Entries in chain order, streamed with a server-side cursor (the log may be large)."""
    where, args = (window or Window()).where()
    with connect(conninfo) as conn, conn.transaction(), \
            conn.cursor(name="audit_entries") as cursor:
        cursor.itersize = batch
        cursor.execute(f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY seq", args)  # static columns
        for row in cursor:
            yield _entry(row)


def count(conninfo: str) -> int:
    with connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    return int(str(row[0])) if row else 0


def verify_log(conninfo: str, anchors: Iterable[Anchor] = ()) -> Verification:
    """Verify the whole chain as stored now."""
    return verify(entries(conninfo), anchors)
