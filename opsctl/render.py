"""Pure rendering: rows and summaries from API objects (no I/O), plus the output writers.

Cell values come from the API (condition messages, event messages, rollback reasons) and are printed as
literal text: never as rich markup or emoji codes, so `[/x]` or `:bar:` in a message cannot garble or crash
the output."""

from __future__ import annotations

import datetime
import json
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trading_operator.diffing import changed_fields
from trading_operator.revisions import Revision
from trading_operator.timestamps import age

Obj = dict[str, Any]

SYMBOL_COLUMNS = ["NAME", "SYMBOL", "MARKET", "PHASE", "REVISION", "STABLE", "READY", "TRADING", "PAUSED", "AGE"]
HISTORY_COLUMNS = ["REVISION", "HASH", "IMAGE", "CHANGE", "CREATED", "MARK"]
CONDITION_COLUMNS = ["TYPE", "STATUS", "REASON", "MESSAGE", "SINCE"]
EVENT_COLUMNS = ["TIME", "TYPE", "REASON", "MESSAGE"]

# status field -> the mark `history` shows on that revision
MARKS = (("currentRevision", "current"), ("stableRevision", "stable"), ("updateRevision", "update"),
         ("abortedRevision", "aborted"))

__all__ = ["age", "change_summary", "condition_rows", "dump", "event_rows", "history_rows", "image_change",
           "marks", "print_table", "short_image", "symbol_row", "symbol_summary"]


def symbol_row(ts: Obj, now: datetime.datetime | None = None, with_namespace: bool = False) -> list[str]:
    """One `get` row: NAME SYMBOL MARKET PHASE REVISION STABLE READY(ready/desired) TRADING PAUSED AGE."""
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


def symbol_summary(ts: Obj) -> Obj:
    """The compact, machine-readable form of a TradingSymbol (`describe -o json` puts it beside the object)."""
    spec, status, meta = ts.get("spec") or {}, ts.get("status") or {}, ts["metadata"]
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace"),
        "symbol": spec.get("symbol"),
        "market": spec.get("market"),
        "phase": status.get("phase", "Pending"),
        "currentRevision": status.get("currentRevision"),
        "stableRevision": status.get("stableRevision"),
        "updateRevision": status.get("updateRevision"),
        "abortedRevision": status.get("abortedRevision"),
        "readyReplicas": status.get("readyReplicas", 0),
        "replicas": spec.get("replicas", 1),
        "tradingEnabled": spec.get("tradingEnabled", True),
        "paused": spec.get("paused", False),
    }


def short_image(image: str) -> str:
    """An image reference with its digest cut to 12 hex digits (`repo@sha256:0123456789ab`)."""
    repository, at, digest = image.partition("@")
    if not at:
        return image
    algorithm, _, value = digest.partition(":")
    return f"{repository}@{algorithm}:{value[:12]}" if value else image


def split_image(image: str) -> tuple[str, str]:
    """(repository, `:tag` or `@digest` or ``) of an image reference."""
    if "@" in image:
        repository, _, digest = image.partition("@")
        return repository, "@" + digest
    head, slash, last = image.rpartition("/")
    if ":" in last:
        name, _, tag = last.partition(":")
        return head + slash + name, ":" + tag
    return image, ""


def image_change(old: str, new: str) -> str:
    """`image :0.1.0→:0.2.0` within one repository, else both references (digests shortened)."""
    (old_repository, old_ref), (new_repository, new_ref) = split_image(old), split_image(new)
    if old_repository == new_repository and old_ref and new_ref:
        return f"image {short_image('x' + old_ref)[1:]}→{short_image('x' + new_ref)[1:]}"
    return f"image {short_image(old)}→{short_image(new)}"


def change_summary(previous: Revision | None, revision: Revision, limit: int = 3) -> str:
    """What a revision changed relative to the one before it, e.g. `config.parameters.batchSize 256→512`,
    `image :0.1.0→:0.2.0`; at most `limit` changes, then `(+N more)`."""
    if previous is None:
        return "initial"
    old, new = previous.template, revision.template
    changes = [image_change(old.image, new.image)] if old.image != new.image else []
    changes += changed_fields({"resources": old.resources, "config": old.config},
                              {"resources": new.resources, "config": new.config})
    if not changes:
        return "(same as previous)"
    shown = ", ".join(changes[:limit])
    return shown + (f" (+{len(changes) - limit} more)" if len(changes) > limit else "")


def marks(number: int, status: Obj) -> str:
    """`current`, `stable`, `update` (built from the spec) and `aborted` marks of a revision, comma-joined."""
    return ",".join(label for key, label in MARKS if status.get(key) == number)


def history_rows(revisions: list[Revision], created: dict[int, str], status: Obj) -> list[list[str]]:
    """`history` rows, oldest first; each change is relative to the previous stored revision."""
    rows = []
    previous: Revision | None = None
    for revision in sorted(revisions, key=lambda r: r.number):
        rows.append([str(revision.number), revision.spec_hash[:10], short_image(revision.template.image),
                     change_summary(previous, revision), created.get(revision.number, "-"),
                     marks(revision.number, status)])
        previous = revision
    return rows


def condition_rows(status: Obj) -> list[list[str]]:
    return [[str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")), str(c.get("message", "")),
             str(c.get("lastTransitionTime", ""))] for c in status.get("conditions") or []]


def event_time(event: Obj) -> str:
    """When an event last happened (core/v1 or events.k8s.io fields, whichever is set)."""
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
               or event.get("metadata", {}).get("creationTimestamp") or "")


def event_rows(events: list[Obj], limit: int = 10) -> list[list[str]]:
    """The last `limit` events (the list is oldest first)."""
    return [[event_time(e), str(e.get("type", "")), str(e.get("reason", "")), str(e.get("message", ""))]
            for e in events[-limit:]] if limit > 0 else []


def print_table(console: Console, columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """A borderless, kubectl-like table; cells are literal text."""
    table = Table(*columns, title=title, box=None, pad_edge=False, header_style="bold", title_justify="left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    with console.capture() as captured:
        console.print(table)
    # No trailing blanks (rich pads every line to the table's width): friendlier to diff, grep and awk.
    text = "\n".join(line.rstrip() for line in captured.get().splitlines())
    print(text, file=console.file)


def dump(data: Any, output: str) -> str:
    """json or yaml text of data."""
    if output == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")
    return json.dumps(data, indent=2, ensure_ascii=False)
