"""One symbol, one trader: which TradingSymbol of a namespace owns the market symbol it names.

Two TradingSymbols naming the same symbol in one namespace would run two traders on one feed and share one
position entry. The first claimant owns the symbol: the earliest creationTimestamp, then the name (so the
answer is the same on every operator replica and every reconcile); every later claimant is refused and runs
nothing until the owner is gone. Pure: the executor reads the claims, the planner asks `rival_owner`."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.admission import normalise_symbol
from trading_operator.timestamps import parse_time

_NEVER = datetime.datetime.max.replace(tzinfo=datetime.UTC)
"""Where a claim without a creationTimestamp sorts: after every dated one (a server always dates objects)."""


@dataclass(frozen=True)
class Claim:
    """A TradingSymbol of a namespace and the market symbol it names."""

    name: str
    symbol: str
    created: str = ""
    """metadata.creationTimestamp (RFC 3339)."""
    terminating: bool = False
    """Being deleted (draining): it still owns the symbol until it is gone."""

    @property
    def key(self) -> tuple[datetime.datetime, str]:
        """First claimant first: creation time, then name."""
        try:
            created = parse_time(self.created) if self.created else _NEVER
        except ValueError:
            created = _NEVER
        if created.tzinfo is None:
            created = created.replace(tzinfo=datetime.UTC)
        return created, self.name


def normalise(symbol: str) -> str:
    """One spelling per symbol (the rule `opsctl policy check` applies to manifests too)."""
    return normalise_symbol(symbol)


def claim_of(obj: Mapping[str, Any]) -> Claim | None:
    """The claim a TradingSymbol object makes: the symbol it trades (`status.symbol`, fixed once accepted: a
    changed spec.symbol the API server let through is refused and claims nothing new), else the one its spec
    names; None when it names none."""
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    symbol = (status.get("symbol") if isinstance(status, Mapping) else None) or \
        (spec.get("symbol") if isinstance(spec, Mapping) else None)
    if not isinstance(symbol, str) or not normalise(symbol) or not meta.get("name"):
        return None
    return Claim(name=str(meta["name"]), symbol=normalise(symbol), created=str(meta.get("creationTimestamp") or ""),
                 terminating=bool(meta.get("deletionTimestamp")))


def owner(claims: Iterable[Claim], symbol: str) -> Claim | None:
    """The first claimant of a symbol among the claims of one namespace."""
    wanted = normalise(symbol)
    return min((c for c in claims if normalise(c.symbol) == wanted), key=lambda c: c.key, default=None)


def rival_owner(name: str, symbol: str, claims: Iterable[Claim]) -> Claim | None:
    """The TradingSymbol that owns `symbol` when it is not `name` (so `name` must run nothing); None when `name`
    owns it or nobody else claims it."""
    first = owner(claims, symbol)
    return first if first is not None and first.name != name else None


def waiting(claims: Iterable[Claim], symbol: str, released_by: str) -> list[str]:
    """The claimants of a symbol other than the one that released it (deleted: spec.symbol is immutable, so
    trading another symbol is a delete and a create): each must be reconciled now, so the new owner starts
    without waiting for a resync."""
    wanted = normalise(symbol)
    return sorted(c.name for c in claims if normalise(c.symbol) == wanted and c.name != released_by)


def conflict_message(symbol: str, namespace: str, holder: Claim) -> str:
    """Why a claimant runs nothing, naming the owner."""
    gone = " (it is being deleted: this one starts once it is gone)" if holder.terminating else ""
    return (f"{normalise(symbol)} in namespace {namespace} is already traded by TradingSymbol {holder.name} "
            f"(created {holder.created or 'earlier'}){gone}; nothing started here. One symbol has one trader: "
            f"delete {holder.name}, or delete this one and create it for another symbol (spec.symbol is "
            "immutable)")
