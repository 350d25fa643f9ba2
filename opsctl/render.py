"""Pure rendering: table rows and describe lines from API objects (no I/O).

Cell values come from the API (condition and event messages, rollback reasons) and are printed as literal
text. Tables show relative ages (kubectl's); -o json|yaml show the objects, with their absolute times."""

from __future__ import annotations

import datetime
from typing import Any

from opsctl.tables import Column, age
from trading_operator.diffing import changed_fields
from trading_operator.identity import API_VERSION, GROUP, KIND
from trading_operator.revisions import Revision

Obj = dict[str, Any]

# The columns kubectl shows for a TradingSymbol (the CRD's printer columns), with TRADING before AGE.
SYMBOL_COLUMNS = [Column("NAME"), Column("SYMBOL"), Column("PHASE"), Column("REVISION"), Column("STABLE"),
                  Column("READY"), Column("TRADING"), Column("AGE")]
SYMBOL_WIDE_COLUMNS = [*SYMBOL_COLUMNS, Column("MARKET"), Column("UPDATE"), Column("DESIRED"), Column("PAUSED"),
                       Column("CONDITIONS"), Column("IMAGE")]
HISTORY_COLUMNS = [Column("REVISION"), Column("AGE"), Column("MARK"), Column("CHANGE", wrap=True)]
HISTORY_WIDE_COLUMNS = [Column("REVISION"), Column("HASH"), Column("IMAGE"), Column("AGE"), Column("MARK"),
                        Column("CHANGE", wrap=True)]
CONDITION_COLUMNS = [Column("TYPE"), Column("STATUS"), Column("REASON"), Column("AGE"),
                     Column("MESSAGE", wrap=True)]
EVENT_COLUMNS = [Column("TYPE"), Column("REASON"), Column("AGE"), Column("MESSAGE", wrap=True)]

# status field -> the mark `history` shows on that revision
MARKS = (("currentRevision", "current"), ("stableRevision", "stable"), ("updateRevision", "update"),
         ("abortedRevision", "aborted"))


def resource_name(obj: Obj) -> str:
    """kubectl's `-o name` of an object: `tradingsymbol.trading.tradeops.io/spy`, `controllerrevision.apps/x`."""
    api_version, kind = str(obj.get("apiVersion", API_VERSION)), str(obj.get("kind", KIND))
    group = api_version.rpartition("/")[0]
    return f"{kind.lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def symbol_name(name: str) -> str:
    return f"{KIND.lower()}.{GROUP}/{name}"


def as_list(items: list[Obj]) -> Obj:
    """Several objects the way kubectl prints them with -o json|yaml|jsonpath: a List."""
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def phase_of(ts: Obj) -> str:
    """The phase as a person should read it: `Terminating` once deletion began, whatever status says."""
    if ts["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return str((ts.get("status") or {}).get("phase") or "Pending")


def true_conditions(status: Obj) -> str:
    """The types of the conditions that hold, comma-joined (`Ready`, `Degraded,Draining`), like kubectl's node
    STATUS; `-` when none."""
    held = [str(c.get("type")) for c in status.get("conditions") or [] if c.get("status") == "True"]
    return ",".join(held) or "-"


def symbol_row(ts: Obj, now: datetime.datetime, wide: bool = False, with_namespace: bool = False) -> list[str]:
    """One `get` row (the columns of SYMBOL_COLUMNS, or SYMBOL_WIDE_COLUMNS)."""
    spec, status, meta = ts.get("spec") or {}, ts.get("status") or {}, ts["metadata"]
    row = [
        meta["name"],
        str(spec.get("symbol", "")),
        phase_of(ts),
        str(status.get("currentRevision") or "-"),
        str(status.get("stableRevision") or "-"),
        str(status.get("readyReplicas", 0)),
        "on" if spec.get("tradingEnabled", True) else "HALTED",
        age(meta.get("creationTimestamp"), now),
    ]
    if wide:
        row += [str(spec.get("market", "")), str(status.get("updateRevision") or "-"), str(spec.get("replicas", 1)),
                "yes" if spec.get("paused", False) else "no", true_conditions(status),
                short_image(str(spec.get("image", "")))]
    return [meta.get("namespace", ""), *row] if with_namespace else row


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
    `image :0.1.0→:0.2.0`; at most `limit` changes, then `(+N more)`. The first one: `initial (image :0.1.0)`
    (its tag or digest; -o wide shows the whole reference)."""
    if previous is None:
        reference = split_image(revision.template.image)[1]
        return f"initial (image {short_image('x' + reference)[1:] if reference else revision.template.image})"
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


def history_rows(revisions: list[Revision], created: dict[int, str | None], status: Obj, now: datetime.datetime,
                 wide: bool = False) -> list[list[str]]:
    """`history` rows, oldest first; each change is relative to the previous stored revision."""
    rows = []
    previous: Revision | None = None
    for revision in sorted(revisions, key=lambda r: r.number):
        when, mark = age(created.get(revision.number), now), marks(revision.number, status) or "-"
        change = change_summary(previous, revision)
        rows.append([str(revision.number), revision.spec_hash[:10], short_image(revision.template.image), when, mark,
                     change] if wide else [str(revision.number), when, mark, change])
        previous = revision
    return rows


def condition_rows(status: Obj, now: datetime.datetime) -> list[list[str]]:
    """Every condition the operator wrote (Ready, Progressing, Degraded, Draining, ...), as it wrote it."""
    return [[str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")),
             age(c.get("lastTransitionTime"), now), str(c.get("message", ""))]
            for c in status.get("conditions") or []]


def event_time(event: Obj) -> str:
    """When an event last happened (core/v1 or events.k8s.io fields, whichever is set)."""
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
               or event.get("metadata", {}).get("creationTimestamp") or "")


def event_rows(events: list[Obj], now: datetime.datetime, limit: int = 10) -> list[list[str]]:
    """The last `limit` events (the list is oldest first); `(xN)` when one repeated."""
    rows = []
    for event in events[-limit:] if limit > 0 else []:
        count = int(event.get("count") or 1)
        when = age(event_time(event), now) + (f" (x{count})" if count > 1 else "")
        rows.append([str(event.get("type", "")), str(event.get("reason", "")), when, str(event.get("message", ""))])
    return rows
