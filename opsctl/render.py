"""Pure rendering: rows and summaries from API objects (no I/O), plus the output writers."""

from __future__ import annotations

import datetime
import json
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from trading_operator.diffing import changed_fields
from trading_operator.revisions import Revision
from trading_operator.timestamps import age

Obj = dict[str, Any]

SYMBOL_COLUMNS = ["NAME", "SYMBOL", "MARKET", "PHASE", "REVISION", "STABLE", "READY", "TRADING", "PAUSED", "AGE"]
HISTORY_COLUMNS = ["REVISION", "HASH", "IMAGE", "CHANGE", "CREATED", "MARK"]


def symbol_row(ts: Obj, now: datetime.datetime | None = None, with_namespace: bool = False) -> list[str]:
    spec, status, meta = ts.get("spec") or {}, ts.get("status") or {}, ts["metadata"]
    row = [
        meta["name"],
        str(spec.get("symbol", "")),
        str(spec.get("market", "")),
        str(status.get("phase", "Pending")),
        str(status.get("currentRevision") or "-"),
        str(status.get("stableRevision") or "-"),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        "on" if spec.get("tradingEnabled", True) else "HALTED",
        "yes" if spec.get("paused", False) else "no",
        age(meta.get("creationTimestamp"), now),
    ]
    return [meta.get("namespace", ""), *row] if with_namespace else row


def change_summary(previous: Revision | None, revision: Revision, limit: int = 3) -> str:
    """What a revision changed relative to the one before it."""
    if previous is None:
        return "initial"
    changes = changed_fields(previous.template.to_data(), revision.template.to_data())
    if not changes:
        return "(same as previous)"
    shown = ", ".join(changes[:limit])
    return shown + (f" (+{len(changes) - limit} more)" if len(changes) > limit else "")


def marks(number: int, status: Obj) -> str:
    labels = []
    for key, label in (("currentRevision", "current"), ("stableRevision", "stable"),
                       ("updateRevision", "spec"), ("abortedRevision", "aborted")):
        if status.get(key) == number:
            labels.append(label)
    return ",".join(labels)


def history_rows(revisions: list[Revision], created: dict[int, str], status: Obj) -> list[list[str]]:
    rows = []
    previous: Revision | None = None
    for revision in revisions:
        rows.append([str(revision.number), revision.spec_hash[:10], revision.template.image,
                     change_summary(previous, revision), created.get(revision.number, "-"),
                     marks(revision.number, status)])
        previous = revision
    return rows


def condition_rows(status: Obj) -> list[list[str]]:
    return [[c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""),
             c.get("lastTransitionTime", "")] for c in status.get("conditions", [])]


def event_rows(events: list[Obj], limit: int = 10) -> list[list[str]]:
    return [[e.get("lastTimestamp") or "", e.get("type", ""), e.get("reason", ""), e.get("message", "")]
            for e in events[-limit:]]


def print_table(console: Console, columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
    table = Table(*columns, title=title, box=None, pad_edge=False, header_style="bold", title_justify="left")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def dump(data: Any, output: str) -> str:
    """json or yaml text of data."""
    if output == "yaml":
        return yaml.safe_dump(data, sort_keys=False)
    return json.dumps(data, indent=2)
