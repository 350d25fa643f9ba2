"""An entry to append (the database numbers, times and hashes it) and the JSON values it may carry."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from audit.kinds import Kind

Json = Any
"""A JSON value as the Kubernetes API or a diff gives it (stored as jsonb)."""


@dataclass(frozen=True)
class NewEntry:
    occurred_at: datetime.datetime
    actor: str
    kind: Kind
    subject: str
    """The traded symbol (SPY) the entry is about."""
    detail: dict[str, Json] = field(default_factory=dict)
    source_key: str | None = None
    """What the entry was recorded from (object, version, step): recording it again is a no-op."""


def model_promotion(*, actor: str, model: str, symbol: str, alias: str, version: str, previous: str | None,
                    at: datetime.datetime) -> NewEntry:
    """The entry for a registry alias moved to a model version. Keyed on the move itself, so recording the same
    promotion twice is a no-op but promoting back and forth is recorded each time (the time tells them apart)."""
    return NewEntry(occurred_at=at, actor=actor, kind=Kind.MODEL_PROMOTION, subject=symbol,
                    detail={"model": model, "alias": alias, "version": version, "previous": previous},
                    source_key=f"model/{model}/{alias}/{version}/{at.isoformat()}")
