"""The Deployment controller's arithmetic, pure: how many pods each ReplicaSet gets during a rolling update,
a proportional scale and a history cleanup. Ported from kubernetes/pkg/controller/deployment
(`util/deployment_util.go`, `rolling.go`, `sync.go`); each function names the one it mirrors."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from devstack.emulator.intstr import IntOrString, scaled_value


@dataclass(frozen=True)
class Strategy:
    type: str = "RollingUpdate"
    max_surge: IntOrString | None = "25%"
    max_unavailable: IntOrString | None = "25%"


@dataclass(frozen=True)
class ReplicaSetView:
    """What the controller reads of a ReplicaSet."""

    name: str
    replicas: int
    """spec.replicas"""
    created: str = ""
    """creationTimestamp (RFC 3339, seconds): ordering ties are broken by name, as upstream does."""
    actual: int = 0
    """status.replicas"""
    ready: int = 0
    available: int = 0
    revision: int = 0
    max_replicas: int | None = None
    """The deployment.kubernetes.io/max-replicas annotation: the Deployment's size plus surge when last scaled."""
    desired_replicas: int | None = None
    """The deployment.kubernetes.io/desired-replicas annotation: the Deployment's size when last scaled."""
    terminating: bool = False
    generation: int = 1
    observed_generation: int = 1


def resolve_fenceposts(max_surge: IntOrString | None, max_unavailable: IntOrString | None,
                       desired: int) -> tuple[int, int]:
    """ResolveFenceposts: surge rounds up, unavailability rounds down; both 0 → 1 unavailable."""
    surge = scaled_value(max_surge if max_surge is not None else 0, desired, round_up=True)
    unavailable = scaled_value(max_unavailable if max_unavailable is not None else 0, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # validation forbids both 0, but rounding down a percentage can reach it
    return surge, unavailable


def max_surge(strategy: Strategy, replicas: int) -> int:
    """MaxSurge."""
    if strategy.type != "RollingUpdate":
        return 0
    return resolve_fenceposts(strategy.max_surge, strategy.max_unavailable, replicas)[0]


def max_unavailable(strategy: Strategy, replicas: int) -> int:
    """MaxUnavailable: never more than the replicas; 0 for Recreate or no replicas."""
    if strategy.type != "RollingUpdate" or replicas == 0:
        return 0
    return min(resolve_fenceposts(strategy.max_surge, strategy.max_unavailable, replicas)[1], replicas)


def _by_creation(a: ReplicaSetView, b: ReplicaSetView) -> int:
    """ReplicaSetsByCreationTimestamp."""
    if a.created != b.created:
        return -1 if a.created < b.created else 1
    return -1 if a.name < b.name else (1 if a.name > b.name else 0)


def by_creation(items: Sequence[ReplicaSetView]) -> list[ReplicaSetView]:
    return sorted(items, key=functools.cmp_to_key(_by_creation))


def new_rs_new_replicas(replicas: int, strategy: Strategy, all_rss: Sequence[ReplicaSetView],
                        new_rs: ReplicaSetView) -> int:
    """NewRSNewReplicas: scale the new ReplicaSet up as far as the surge allows (Recreate: all at once)."""
    if strategy.type != "RollingUpdate":
        return replicas
    surge = scaled_value(strategy.max_surge, replicas, round_up=True)
    current = sum(rs.replicas for rs in all_rss)
    max_total = replicas + surge
    if current >= max_total:
        return new_rs.replicas
    scale_up = min(max_total - current, replicas - new_rs.replicas)
    return new_rs.replicas + scale_up


def _cleanup_unhealthy(old_rss: list[ReplicaSetView], max_cleanup: int) -> tuple[list[ReplicaSetView], int]:
    """cleanupUnhealthyReplicas: scale down old pods that are not available first (oldest ReplicaSet first)."""
    out, total = [], 0
    for rs in by_creation(old_rss):
        if total >= max_cleanup or rs.replicas == 0 or rs.replicas <= rs.available:
            out.append(rs)
            continue
        down = min(max_cleanup - total, rs.replicas - rs.available)
        out.append(_resized(rs, rs.replicas - down))
        total += down
    return out, total


def _resized(rs: ReplicaSetView, replicas: int) -> ReplicaSetView:
    return dataclasses.replace(rs, replicas=replicas)


def old_replica_sets_targets(replicas: int, strategy: Strategy, old_rss: Sequence[ReplicaSetView],
                             new_rs: ReplicaSetView) -> dict[str, int]:
    """reconcileOldReplicaSets (+ cleanupUnhealthyReplicas, scaleDownOldReplicaSetsForRollingUpdate): the
    new size of each old ReplicaSet that shrinks, keeping at least replicas - maxUnavailable available."""
    active_old = [rs for rs in old_rss if rs.replicas > 0]
    if not active_old:
        return {}
    all_count = sum(rs.replicas for rs in active_old) + new_rs.replicas
    min_available = replicas - max_unavailable(strategy, replicas)
    new_unavailable = new_rs.replicas - new_rs.available
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    cleaned, _ = _cleanup_unhealthy(list(active_old), max_scaled_down)
    targets = {rs.name: rs.replicas for rs in cleaned if rs.replicas != _size(active_old, rs.name)}
    available = sum(rs.available for rs in cleaned) + new_rs.available
    if available > min_available:
        to_scale_down, scaled = available - min_available, 0
        for rs in by_creation(cleaned):
            if scaled >= to_scale_down or rs.replicas == 0:
                continue
            down = min(rs.replicas, to_scale_down - scaled)
            targets[rs.name] = rs.replicas - down
            scaled += down
    return targets


def _size(rss: Sequence[ReplicaSetView], name: str) -> int:
    return next(rs.replicas for rs in rss if rs.name == name)


def _fraction(rs: ReplicaSetView, replicas: int, surge: int, status_replicas: int) -> int:
    """getReplicaSetFraction: the ReplicaSet's share of a resize, from the max-replicas annotation."""
    if replicas == 0:
        return -rs.replicas
    before = rs.max_replicas or status_replicas
    if not before:
        return 0
    return _round_half_away(rs.replicas * (replicas + surge) / before) - rs.replicas


def _round_half_away(value: float) -> int:
    """integer.RoundToInt32: halves round away from zero (Python's round() would round to even)."""
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


def is_saturated(replicas: int, rs: ReplicaSetView | None) -> bool:
    """IsSaturated: the ReplicaSet runs the Deployment's full size, all of it available."""
    return rs is not None and rs.replicas == replicas and rs.desired_replicas == replicas \
        and rs.available == replicas


def proportional_targets(replicas: int, strategy: Strategy, status_replicas: int,
                         new_rs: ReplicaSetView | None, old_rss: Sequence[ReplicaSetView]) -> dict[str, int]:
    """scale(): the size of each ReplicaSet after the Deployment is resized. With one active ReplicaSet (or
    none: the newest) it takes the whole size; a saturated new one means the old ones go; otherwise the
    change is spread over the active ReplicaSets in proportion to their sizes, the largest taking the
    leftover. Every active ReplicaSet is listed (its replica annotations are brought up to date)."""
    active = [rs for rs in ([new_rs] if new_rs else []) + list(old_rss) if rs.replicas > 0]
    if len(active) <= 1:
        latest = active[0] if active else (new_rs or (by_creation(old_rss)[-1] if old_rss else None))
        return {} if latest is None or latest.replicas == replicas else {latest.name: replicas}
    if is_saturated(replicas, new_rs):
        return {rs.name: 0 for rs in active if new_rs is None or rs.name != new_rs.name}
    if strategy.type != "RollingUpdate":
        return {}
    surge = max_surge(strategy, replicas)
    allowed = replicas + surge if replicas > 0 else 0
    to_add = allowed - sum(rs.replicas for rs in active)
    if to_add > 0:  # ReplicaSetsBySizeNewer
        ordered = sorted(by_creation(active)[::-1], key=lambda rs: -rs.replicas)
    else:  # ReplicaSetsBySizeOlder
        ordered = sorted(by_creation(active), key=lambda rs: -rs.replicas)
    sizes, added = {}, 0
    for rs in ordered:
        proportion = 0
        if to_add != 0 and to_add != added:
            fraction, left = _fraction(rs, replicas, surge, status_replicas), to_add - added
            proportion = min(fraction, left) if to_add > 0 else max(fraction, left)
        sizes[rs.name] = rs.replicas + proportion
        added += proportion
    if to_add != 0:
        largest = ordered[0].name
        sizes[largest] = max(sizes[largest] + to_add - added, 0)
    return sizes


def history_to_delete(old_rss: Sequence[ReplicaSetView], limit: int) -> list[str]:
    """cleanupDeployment: beyond revisionHistoryLimit, the oldest revisions that have scaled to zero go."""
    alive = sorted((rs for rs in old_rss if not rs.terminating), key=lambda rs: (rs.revision, rs.created, rs.name))
    excess = len(alive) - limit
    if excess <= 0:
        return []
    return [rs.name for rs in alive[:excess]
            if rs.actual == 0 and rs.replicas == 0 and rs.generation <= rs.observed_generation]
