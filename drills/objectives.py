"""RTO/RPO arithmetic and the objective check (pure)."""

from __future__ import annotations

import datetime

from policies.recovery import Objective


def rpo_seconds(source_latest: datetime.datetime | None, restored_latest: datetime.datetime | None,
                fallback_point: datetime.datetime, disaster: datetime.datetime) -> float:
    """Data lost, in seconds of writes. From the data itself when both sides are known (the newest row the
    source had at the disaster minus the newest row the restore holds); else from the recovery point the
    backup claims (disaster time minus that point)."""
    if source_latest is not None and restored_latest is not None:
        return max(0.0, (source_latest - restored_latest).total_seconds())
    if source_latest is not None and restored_latest is None:
        return max(0.0, (source_latest - fallback_point).total_seconds())
    return max(0.0, (disaster - fallback_point).total_seconds())


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
