"""The monthly archive of trading records: a month of the audit log (changes, orders, fills, rejections,
risk events, each with its chain hashes) written once into the backups bucket under S3 Object Lock in
compliance mode, retained `keepYears` after the month (the RecoveryPolicy's `records`), with the chain's
head at the time as an anchor. Nobody, the bucket's owner included, can delete or overwrite it before then;
the bucket's lifecycle rule (infra/reports.py) moves it to archive storage after `accessibleYears`.

A bucket without Object Lock is refused: records that could be deleted are not retained records."""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from audit.chain import Anchor
from audit.store import Window, entries, verify_log
from drills.s3 import S3Store
from policies.models import RecordRetention

RECORDS_ROOT = "records/audit"
ARCHIVE_TAG = "tradeops-record=audit-log"


class ArchiveError(RuntimeError):
    """The month cannot be archived (bucket without Object Lock, already archived, S3 refused)."""


@dataclass(frozen=True)
class ArchivedMonth:
    key: str
    entries: int
    sha256: str
    retain_until: datetime.datetime
    head: Anchor | None


def month_window(month: datetime.date) -> Window:
    start = datetime.datetime(month.year, month.month, 1, tzinfo=datetime.UTC)
    end = (start + datetime.timedelta(days=32)).replace(day=1)
    return Window(start, end)


def retain_until(month: datetime.date, records: RecordRetention) -> datetime.datetime:
    """`keepYears` after the month's end."""
    end = month_window(month).end
    assert end is not None
    return end.replace(year=end.year + records.keep_years)


def archive_key(prefix: str, month: datetime.date) -> str:
    return f"{prefix.strip('/')}/{RECORDS_ROOT}/{month:%Y-%m}.jsonl"


def export(conninfo: str, month: datetime.date) -> tuple[bytes, int]:
    """The month's entries as JSON lines, in chain order, with everything needed to re-verify them."""
    lines = []
    for e in entries(conninfo, month_window(month)):
        lines.append(json.dumps({"seq": e.seq, "recordedAt": e.recorded_at.isoformat(),
                                 "occurredAt": e.occurred_at.isoformat(), "actor": e.actor, "kind": e.kind,
                                 "subject": e.subject, "detail": e.detail_text, "sourceKey": e.source_key,
                                 "prevHash": e.prev_hash, "hash": e.hash}, sort_keys=True))
    return ("\n".join(lines) + "\n" if lines else "").encode(), len(lines)


def archive_month(conninfo: str, store: S3Store, month: datetime.date, records: RecordRetention) -> ArchivedMonth:
    """Write the month once, locked until `retain_until`; refuse a bucket without Object Lock or a month
    already archived."""
    key = archive_key(store.settings.prefix, month)
    try:
        store.client.get_object_lock_configuration(Bucket=store.bucket)
    except ClientError as error:
        raise ArchiveError(f"bucket {store.bucket} has no Object Lock: records there could be deleted "
                           f"({error.response.get('Error', {}).get('Code', 'refused')})") from None
    if store.metadata(key) is not None:
        raise ArchiveError(f"{month:%Y-%m} is already archived at s3://{store.bucket}/{key} (records are written once)")
    body, count = export(conninfo, month)
    head = verify_log(conninfo).head
    digest = hashlib.sha256(body).hexdigest()
    until = retain_until(month, records)
    extra: dict[str, Any] = {"ServerSideEncryption": store.settings.sse} if store.settings.sse else {}
    try:
        store.client.put_object(
            Bucket=store.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
            ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until, Tagging=ARCHIVE_TAG,
            Metadata={"sha256": digest, "entries": str(count), "chain-head": str(head) if head else ""}, **extra)
    except (BotoCoreError, ClientError) as error:
        raise ArchiveError(f"writing s3://{store.bucket}/{key}: {error}") from None
    return ArchivedMonth(key, count, digest, until, head)


def previous_month(today: datetime.date) -> datetime.date:
    return (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
