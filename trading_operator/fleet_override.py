"""The change a FleetRollout hands one TradingSymbol: an operator-owned annotation, and how the TradingSymbol
planner applies it — pure.

Precedence: a symbol runs its spec (from git) with the fleet change on top: the change's `image` replaces
`spec.image` and its `config` is merged (RFC 7386) over `spec.config`. The spec itself is never rewritten, so
GitOps sees no drift; taking the annotation away returns the symbol to exactly what its spec says. Only the
FleetRollout reconciler writes the annotation (`fleet_planner`); a hand-edited one that does not parse makes
the symbol Invalid (nothing running changes) rather than being guessed at."""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError

from trading_operator.identity import GROUP
from trading_runtime.config import CamelModel

FLEET_CHANGE_ANNOTATION = f"{GROUP}/fleet-change"
"""On a TradingSymbol: the FleetRollout change it runs (a `FleetOverride` as JSON)."""


class FleetOverride(CamelModel):
    """What a FleetRollout asks of one TradingSymbol."""

    rollout: str
    """The FleetRollout's name (same namespace)."""
    change: str
    """The change's hash: the symbol's status echoes `rollout@change` once its planner has applied it."""
    image: str | None = None
    """Replaces spec.image."""
    config: dict[str, Any] = {}
    """Merged over spec.config (RFC 7386)."""

    @property
    def ref(self) -> str:
        """`rollout@change`, as the symbol's status.fleetChange reports it."""
        return f"{self.rollout}@{self.change}"

    def to_annotation(self) -> str:
        return json.dumps(self.model_dump(by_alias=True, mode="json", exclude_none=True), sort_keys=True,
                          separators=(",", ":"))


def read_override(annotations: dict[str, str]) -> FleetOverride | None:
    """The override on a TradingSymbol, None when there is none; ValueError (saying what is wrong) when the
    annotation is not one."""
    raw = annotations.get(FLEET_CHANGE_ANNOTATION)
    if raw is None:
        return None
    try:
        return FleetOverride.model_validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"annotation {FLEET_CHANGE_ANNOTATION} is not a fleet change: {problems}") from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps are merged key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def apply_override(spec: dict[str, Any], override: FleetOverride | None) -> dict[str, Any]:
    """The spec the symbol runs: its own, with the fleet change on top (a new dict; `spec` is not touched)."""
    if override is None:
        return spec
    effective = dict(spec)
    if override.image is not None:
        effective["image"] = override.image
    if override.config:
        effective["config"] = merge_patch(spec.get("config") or {}, override.config)
    return effective
