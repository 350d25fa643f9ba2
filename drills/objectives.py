"""RTO/RPO arithmetic and the objective check (pure)."""

from __future__ import annotations

import datetime

from policies.recovery import Objective


def reference_point(source_latest: datetime.datetime | None, target: datetime.datetime | None,
                    disaster: datetime.datetime) -> datetime.datetime:
    """What a perfect recovery would hold up to: the newest row the source had at the disaster (capped at
    the target of a point-in-time recovery); without the source, the target or the disaster time."""
    if source_latest is not None:
        return min(source_latest, target) if target is not None else source_latest
    return target if target is not None else disaster


def rpo_seconds(reference: datetime.datetime, restored_latest: datetime.datetime | None,
                recovery_point: datetime.datetime) -> float:
    """Data lost, in seconds of writes: from the reference to the newest row the restore holds (or, for a
    restore with no timestamped rows, to the recovery point the backup claims)."""
    held = restored_latest if restored_latest is not None else recovery_point
    return max(0.0, (reference - held).total_seconds())


def misses(objective: Objective | None, rto_s: float | None, rpo_s: float | None) -> list[str]:
    """What the objective says was missed (empty: met, or no objective set)."""
    if objective is None:
        return []
    out = []
    if rto_s is not None and rto_s > objective.rto_seconds:
        out.append(f"RTO {rto_s:.1f}s exceeds the objective of {objective.rto_seconds:g}s")
    if rpo_s is not None and rpo_s > objective.rpo_seconds:
        out.append(f"RPO {rpo_s:.1f}s exceeds the objective of {objective.rpo_seconds:g}s")
    return out
