"""The evidence an annual self-assessment needs (SEC 15c3-5 market-access controls, MiFID II RTS 6, FINRA
4511 / SEC 17a-4 records), from the audit log in PostgreSQL and the drill metrics in Prometheus: the
audit chain's verification, changes and who made them, kill-switch tests and uses (and how fast the
runtime acted), limit breaches and rejected orders, incidents, drill results."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass, field

from audit.chain import Anchor, Verification
from audit.kinds import INCIDENT_KINDS, Kind
from audit.store import verify_log
from reports.performance import DrillRun, drills
from reports.sources import Database, Prometheus
from reports.window import Window

CHANGE_KINDS = (Kind.SYMBOL_CREATED, Kind.SYMBOL_CHANGED, Kind.SYMBOL_DELETED, Kind.PAUSE, Kind.RESUME,
                Kind.ROLLBACK_REQUESTED, Kind.HALT, Kind.UNHALT, Kind.MODEL_PROMOTION)
RUNTIME_REACTION_LIMIT = datetime.timedelta(minutes=10)
"""A runtime's kill-switch event this soon after a halt is its reaction to it."""


@dataclass(frozen=True)
class Change:
    at: datetime.datetime
    actor: str
    kind: str
    symbol: str
    what: str


@dataclass(frozen=True)
class KillSwitchUse:
    symbol: str
    at: datetime.datetime
    actor: str
    reason: str
    test: bool
    halted_seconds: float | None
    """Until trading was switched back on (None: still halted at the window's end)."""
    runtime_reaction_seconds: float | None
    """From the halt to the runtime's own kill-switch event (None: none recorded)."""


@dataclass(frozen=True)
class Incident:
    at: datetime.datetime
    kind: str
    symbol: str
    what: str


@dataclass
class ComplianceResult:
    window: Window
    verification: Verification
    changes: list[Change]
    actors: dict[str, int]
    kill_switch: list[KillSwitchUse]
    rejections: dict[tuple[str, str], int]
    risk_events: list[Incident]
    incidents: list[Incident]
    drills: list[DrillRun]
    entries_in_window: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def _what(kind: str, detail: dict[str, object]) -> str:
    if "diff" in detail and isinstance(detail["diff"], list):
        paths = [str(d.get("path")) for d in detail["diff"] if isinstance(d, dict)]
        return ", ".join(paths[:6]) + (f" (+{len(paths) - 6} more)" if len(paths) > 6 else "") or kind
    if "change" in detail and isinstance(detail["change"], dict):
        change = detail["change"]
        return f"{change.get('path')}: {json.dumps(change.get('before'))} → {json.dumps(change.get('after'))}"
    if kind == Kind.MODEL_PROMOTION.value:
        was = f"version {detail.get('previous')}" if detail.get("previous") else "none"
        return f"{detail.get('model')}: {detail.get('alias')} → version {detail.get('version')} (was {was})"
    return str(detail.get("message") or detail.get("reason") or detail.get("kind") or kind)


def fetch(database: Database, prometheus: Prometheus, window: Window, anchors: list[Anchor],
          resolution: int = 300) -> ComplianceResult:
    verification = verify_log(database.conninfo, anchors)
    rows = database.rows("SELECT occurred_at, actor, kind, subject, detail::text FROM audit_log "
                         "WHERE occurred_at >= %s AND occurred_at < %s ORDER BY occurred_at, seq",
                         (window.start, window.end))
    entries = [(at, str(actor), str(kind), str(subject), json.loads(detail)) for at, actor, kind, subject, detail
               in rows]
    change_kinds = {k.value for k in CHANGE_KINDS}
    changes = [Change(at, actor, kind, subject, _what(kind, detail)) for at, actor, kind, subject, detail in entries
               if kind in change_kinds]
    incidents = [Incident(at, kind, subject, _what(kind, detail)) for at, _, kind, subject, detail in entries
                 if kind in {k.value for k in INCIDENT_KINDS}]
    rejections: dict[tuple[str, str], int] = {}
    for symbol, reason, count in database.rows(
            "SELECT symbol, reason, count(*) FROM order_rejections WHERE ts >= %s AND ts < %s GROUP BY symbol, reason "
            "ORDER BY symbol, reason", (window.start, window.end)):
        rejections[str(symbol), str(reason)] = int(count)
    return ComplianceResult(
        window, verification, changes, dict(Counter(c.actor for c in changes).most_common()),
        _kill_switch(entries, window), rejections, [i for i in incidents if i.kind == Kind.RISK_EVENT.value],
        incidents, drills(prometheus, window, resolution), len(entries),
        dict(Counter(kind for _, _, kind, _, _ in entries).most_common()))


def _kill_switch(entries: list[tuple[datetime.datetime, str, str, str, dict[str, object]]],
                 window: Window) -> list[KillSwitchUse]:
    """Each halt with how long it lasted and how soon the runtime acted on it."""
    uses = []
    for i, (at, actor, kind, symbol, detail) in enumerate(entries):
        if kind != Kind.HALT.value:
            continue
        later = entries[i + 1:]
        unhalt = next((e for e in later if e[2] == Kind.UNHALT.value and e[3] == symbol), None)
        reaction = next((e for e in later if e[2] == Kind.RISK_EVENT.value and e[3] == symbol
                         and e[4].get("kind") == "kill-switch" and e[0] - at <= RUNTIME_REACTION_LIMIT), None)
        reason = str(detail.get("reason") or "")
        uses.append(KillSwitchUse(symbol, at, actor, reason, "test" in reason.lower(),
                                  (unhalt[0] - at).total_seconds() if unhalt else None,
                                  (reaction[0] - at).total_seconds() if reaction else None))
    return uses
