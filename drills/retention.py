"""Retention planning (pure): which backups and WAL segments to delete from S3 under a policy."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass

from drills.manifest import Kind
from policies.recovery import Retention

_SEGMENT = re.compile(r"^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$")


@dataclass(frozen=True)
class BackupRef:
    id: str
    kind: Kind
    created_at: datetime.datetime
    start_wal: str | None = None


@dataclass(frozen=True)
class RetentionPlan:
    delete_backups: tuple[str, ...]
    keep_backups: tuple[str, ...]
    delete_wal: tuple[str, ...]


def plan_retention(backups: Iterable[BackupRef], wal_segments: Iterable[str], policy: Retention,
                   now: datetime.datetime) -> RetentionPlan:
    """Per kind, keep the newest `keep_last` and every backup younger than `keep_days`; delete the rest.
    WAL segments older than the oldest kept base backup's start segment cannot serve any recovery: delete
    them too (all WAL is kept while no base backup exists; timeline history files are always kept)."""
    horizon = now - datetime.timedelta(days=policy.keep_days)
    keep: list[BackupRef] = []
    delete: list[BackupRef] = []
    by_kind: dict[Kind, list[BackupRef]] = {}
    for ref in backups:
        by_kind.setdefault(ref.kind, []).append(ref)
    for refs in by_kind.values():
        refs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        for index, ref in enumerate(refs):
            (keep if index < policy.keep_last or ref.created_at >= horizon else delete).append(ref)
    starts = [r.start_wal for r in keep if r.kind is Kind.BASE and r.start_wal]
    oldest_needed = min(starts, key=_segment_order) if starts else None
    delete_wal = tuple(sorted(s for s in wal_segments if oldest_needed is not None and _SEGMENT.match(s)
                              and _segment_order(s) < _segment_order(oldest_needed)))
    return RetentionPlan(tuple(sorted(r.id for r in delete)), tuple(sorted(r.id for r in keep)), delete_wal)


def _segment_order(name: str) -> str:
    """WAL segment names (24 hex digits: timeline, log, segment) sort by position after the timeline;
    history and backup-label files sort with their segment."""
    return name[8:24] + name[:8]
