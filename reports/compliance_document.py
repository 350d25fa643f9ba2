"""The compliance report as a document: the audit chain's verification first, then the evidence."""

from __future__ import annotations

import datetime
from typing import Any

from reports.compliance import ComplianceResult
from reports.document import Document, Section, Table


def _at(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def _seconds(value: float | None, none: str) -> str:
    return none if value is None else f"{value:.0f} s"


def data(result: ComplianceResult) -> dict[str, Any]:
    v = result.verification
    return {
        "window": {"start": result.window.start.isoformat(), "end": result.window.end.isoformat()},
        "audit": {"verified": v.ok, "entries": v.entries, "head": str(v.head) if v.head else None,
                  "findings": [{"seq": f.seq, "problem": f.problem.value, "message": f.message} for f in v.findings],
                  "entriesInWindow": result.entries_in_window, "kinds": result.kinds},
        "changes": [{**vars(c), "at": _at(c.at)} for c in result.changes],
        "changesByActor": result.actors,
        "killSwitch": [{**vars(k), "at": _at(k.at)} for k in result.kill_switch],
        "killSwitchTests": sum(1 for k in result.kill_switch if k.test),
        "killSwitchUses": sum(1 for k in result.kill_switch if not k.test),
        "rejections": [{"symbol": s, "reason": r, "count": n} for (s, r), n in result.rejections.items()],
        "riskEvents": [{**vars(i), "at": _at(i.at)} for i in result.risk_events],
        "incidents": [{**vars(i), "at": _at(i.at)} for i in result.incidents],
        "drills": [vars(d) for d in result.drills],
    }


def document(result: ComplianceResult) -> Document:
    v = result.verification
    tests = sum(1 for k in result.kill_switch if k.test)
    failed_drills = sum(1 for d in result.drills if d.success is False)
    summary = [
        f"Window: {result.window.label()}.",
        f"Audit chain: {v.summary()}." + ("" if v.ok else " The evidence below may have been altered."),
        f"{len(result.changes)} changes by {len(result.actors)} actors; kill switch tested {tests} time(s), used "
        f"{len(result.kill_switch) - tests} time(s); {sum(result.rejections.values())} orders rejected by pre-trade "
        f"controls; {len(result.incidents)} incidents; {len(result.drills)} drills ({failed_drills} failed).",
    ]
    audit = Section("Audit trail", [
        "Every entry carries the hash of the one before it; the whole chain was recomputed for this report. Keep "
        f"the head ({v.head}) outside the database: `opsctl audit verify --anchor` proves later that nothing "
        "before it was removed."], [Table(["seq", "problem", "detail"], [[str(f.seq), f.problem.value, f.message]
                                                                          for f in v.findings])] if v.findings else [])
    changes = Section("Changes and who made them", [], [
        Table(["actor", "changes"], [[a, str(n)] for a, n in result.actors.items()]),
        Table(["time", "actor", "kind", "symbol", "what"],
              [[_at(c.at), c.actor, c.kind, c.symbol, c.what] for c in result.changes])])
    kill = Section("Kill switch: tests and uses", [
        "A halt whose reason mentions a test counts as a test. Runtime reaction: from the halt to the runtime's "
        "own kill-switch event (open orders cancelled, positions flattened)."],
        [Table(["time", "symbol", "actor", "reason", "test", "halted for", "runtime reacted after"],
               [[_at(k.at), k.symbol, k.actor, k.reason, "yes" if k.test else "no",
                 _seconds(k.halted_seconds, "still halted"), _seconds(k.runtime_reaction_seconds, "not recorded")]
                for k in result.kill_switch])])
    limits = Section("Limit breaches and rejected orders", ["Orders the pre-trade controls refused, by reason; "
                                                            "risk events (drawdown and black-swan halts)."],
                     [Table(["symbol", "reason", "rejected orders"],
                            [[s, r, str(n)] for (s, r), n in result.rejections.items()]),
                      Table(["time", "symbol", "risk event"], [[_at(i.at), i.symbol, i.what]
                                                              for i in result.risk_events])])
    incidents = Section("Incidents", ["Rollbacks, self-healing restarts, corrected drift and risk events."],
                        [Table(["time", "kind", "symbol", "what"],
                               [[_at(i.at), i.kind, i.symbol, i.what] for i in result.incidents])])
    drill = Section("Disaster-recovery drills", [], [Table(
        ["drill", "finished", "result", "duration", "RTO"],
        [[d.drill, _at(datetime.datetime.fromtimestamp(d.finished, datetime.UTC)),
          "-" if d.success is None else "passed" if d.success else "FAILED",
          "-" if d.duration is None else f"{d.duration:.1f} s", "-" if d.rto is None else f"{d.rto:.1f} s"]
         for d in result.drills])])
    return Document("compliance", "Compliance evidence", summary, [audit, changes, kill, limits, incidents, drill],
                    data(result))
