"""What a drill step gets (settings, the S3 store, its parameters) and gives back (its measurements)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drills.config import Settings
from drills.errors import DrillsError, Exit
from drills.progress import Transfers, silent
from drills.report import Check
from drills.s3 import S3Store


@dataclass
class DrillContext:
    settings: Settings
    storage: S3Store | None
    """None for drills that need no backups (pod-kill, prometheus-loss)."""
    params: dict[str, Any]
    started_at: datetime.datetime
    progress: Transfers = silent

    @property
    def store(self) -> S3Store:
        if self.storage is None:
            raise DrillsError(Exit.USAGE, "this drill needs the backup bucket, which was not opened")
        return self.storage


@dataclass
class Outcome:
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    backup_id: str | None = None
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


Step = Callable[[DrillContext], Outcome]
