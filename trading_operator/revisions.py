"""Revisions: the part of a spec that defines what the pods run, hashed, numbered and pruned.

A revision holds the image, resources and runtime config. Replicas, paused, the kill switch and
rollout settings are not part of it: scaling, pausing or halting never creates a revision, and a
rollback never undoes a halt."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only annotations: clients that read revisions (opsctl) need not build the API models
    from trading_operator.api import TradingSymbolSpec


@dataclass(frozen=True)
class RevisionTemplate:
    """What a revision pins."""

    image: str
    resources: dict[str, Any]
    config: dict[str, Any]

    def to_data(self) -> dict[str, Any]:
        return {"image": self.image, "resources": self.resources, "config": self.config}


@dataclass(frozen=True)
class Revision:
    """A stored revision (a ControllerRevision) as the planner sees it."""

    number: int
    name: str
    spec_hash: str
    template: RevisionTemplate


def revision_from_object(obj: dict[str, Any]) -> Revision:
    """A ControllerRevision object as the planner's Revision."""
    data = obj.get("data") or {}
    return Revision(
        number=int(obj.get("revision", 0)),
        name=obj["metadata"]["name"],
        spec_hash=str(data.get("specHash", "")),
        template=RevisionTemplate(
            image=str(data.get("image", "")),
            resources=dict(data.get("resources") or {}),
            config=dict(data.get("config") or {}),
        ),
    )


def template_of(spec: TradingSymbolSpec, config: dict[str, Any] | None = None) -> RevisionTemplate:
    """The revision template of a spec (with a tuned config in place of the spec's, when given)."""
    return RevisionTemplate(
        image=spec.image,
        resources=spec.resources.model_dump(by_alias=True, mode="json"),
        config=config if config is not None else spec.config.model_dump(by_alias=True, mode="json"),
    )


def hash_of(data: Any) -> str:
    """A stable hash of JSON-able data (sorted keys)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def template_hash(template: RevisionTemplate) -> str:
    return hash_of(template.to_data())


def find_by_hash(revisions: list[Revision], spec_hash: str) -> Revision | None:
    return next((r for r in revisions if r.spec_hash == spec_hash), None)


def find_by_number(revisions: list[Revision], number: int) -> Revision | None:
    return next((r for r in revisions if r.number == number), None)


def next_number(revisions: list[Revision]) -> int:
    """Revision numbers only grow."""
    return max((r.number for r in revisions), default=0) + 1


def previous_of(revisions: list[Revision], current: int, stable: int) -> Revision | None:
    """The target of `rollback previous`: the stable revision, or the newest one older than current."""
    if stable and stable != current:
        return find_by_number(revisions, stable)
    older = [r for r in revisions if r.number < current]
    return max(older, key=lambda r: r.number) if older else None


def to_prune(revisions: list[Revision], limit: int, keep: set[int]) -> list[Revision]:
    """Oldest revisions beyond the history limit; the ones in `keep` (running, stable, update) stay."""
    ordered = sorted(revisions, key=lambda r: r.number, reverse=True)
    kept = 0
    pruned: list[Revision] = []
    for revision in ordered:
        if revision.number in keep:
            continue
        if kept < max(limit - len(keep & {r.number for r in revisions}), 0):
            kept += 1
        else:
            pruned.append(revision)
    return pruned
