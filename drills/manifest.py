"""Backup manifests: what a backup holds (objects with size and SHA-256, tables with row counts and
checksums, the source's LSN and time) and the pure checks against what S3 or a restored database shows."""

from __future__ import annotations

import datetime
import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_NAME = "manifest.json"
# The tables whose full content is checksummed (small, and what money depends on); others get row counts.
KEY_TABLES = ("signals", "orders", "fills", "positions", "risk_events")
TRADING_TABLES = ("ticks", "bars", "signals", "orders", "fills", "positions", "risk_events")


class Kind(enum.StrEnum):
    POSTGRES = "postgres"  # pg_dump custom format
    BASE = "base"  # pg_basebackup tar, the start of point-in-time recovery
    REDIS = "redis"  # RDB snapshot


class StoredObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TableStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: int = Field(ge=0)
    checksum: str | None = None  # md5 of the ordered rows, for KEY_TABLES
    latest: datetime.datetime | None = None  # max(ts): what the newest row says about the recovery point


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: datetime.datetime  # the consistent point the backup holds
    lsn: str | None = None
    server_version: str | None = None
    database: str | None = None
    start_wal: str | None = None  # base backups: the first WAL segment recovery needs


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Kind
    created_at: datetime.datetime
    completed_at: datetime.datetime
    source: Source
    tables: dict[str, TableStats] = Field(default_factory=dict)
    objects: list[StoredObject]
    encryption: str | None = None

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)


def backup_id(kind: Kind, now: datetime.datetime) -> str:
    """Sortable, unique per millisecond and kind: `postgres-20261125T093000.123Z`."""
    utc = now.astimezone(datetime.UTC)
    return f"{kind.value}-{utc:%Y%m%dT%H%M%S}.{utc.microsecond // 1000:03d}Z"


def kind_of(ident: str) -> Kind:
    """The kind a backup id names (`postgres-…`, `base-…`, `redis-…`)."""
    head = ident.split("-", 1)[0]
    try:
        return Kind(head)
    except ValueError:
        raise ValueError(f"{ident!r} is not a backup id (postgres-…, base-… or redis-…)") from None


def backup_prefix(prefix: str, kind: Kind, ident: str) -> str:
    return f"{prefix.strip('/')}/backups/{kind.value}/{ident}/"


def wal_key(prefix: str, segment: str) -> str:
    return f"{prefix.strip('/')}/wal/{segment}"


def parse_manifest(raw: bytes | str) -> Manifest:
    return Manifest.model_validate_json(raw)


def verify_objects(objects: list[StoredObject], observed: dict[str, tuple[int, str] | None]) -> list[str]:
    """Problems of the stored objects: missing, truncated/extended or with another SHA-256.
    `observed` maps each key to (size, sha256) as recomputed, or None when the object is absent."""
    problems: list[str] = []
    for obj in objects:
        seen = observed.get(obj.key)
        if seen is None:
            problems.append(f"{obj.key}: missing (incomplete backup)")
            continue
        size, digest = seen
        if size != obj.size:
            problems.append(f"{obj.key}: {size} bytes, manifest says {obj.size} (incomplete or altered)")
        elif digest != obj.sha256:
            problems.append(f"{obj.key}: SHA-256 {digest[:12]}…, manifest says {obj.sha256[:12]}… (corrupted)")
    return problems


def compare_tables(expected: dict[str, TableStats], actual: dict[str, TableStats]) -> list[str]:
    """Integrity of a restore: every table of the manifest with the same row count and checksum."""
    problems: list[str] = []
    for name, want in sorted(expected.items()):
        got = actual.get(name)
        if got is None:
            problems.append(f"table {name}: missing after restore")
            continue
        if got.rows != want.rows:
            problems.append(f"table {name}: {got.rows} rows, backup had {want.rows}")
        if want.checksum is not None and got.checksum != want.checksum:
            problems.append(f"table {name}: checksum {got.checksum} differs from the backup's {want.checksum}")
    return problems


def summary(manifest: Manifest) -> dict[str, Any]:
    """The row `backup list` prints."""
    return {"id": manifest.id, "kind": manifest.kind.value, "created": manifest.created_at.isoformat(),
            "sourceTime": manifest.source.time.isoformat(), "lsn": manifest.source.lsn, "bytes": manifest.size,
            "objects": len(manifest.objects), "rows": sum(t.rows for t in manifest.tables.values())}
