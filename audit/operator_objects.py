"""The operator's Events and ControllerRevisions as audit entries (pure)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from audit.entries import NewEntry
from audit.kinds import EVENT_KINDS, Kind

OPERATOR_ACTOR = "tradeops-operator"
SYMBOL_LABEL = "trading.tradeops.io/symbol"
OWNER_LABEL = "trading.tradeops.io/trading-symbol"


def parse_time(text: str | None, default: datetime.datetime) -> datetime.datetime:
    """An RFC 3339 time of the API (`2026-12-06T01:02:03Z`, fractions allowed); `default` when absent."""
    if not text:
        return default
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(datetime.UTC)


def event_entry(event: Mapping[str, Any], symbols: Mapping[str, str], now: datetime.datetime) -> NewEntry | None:
    """An Event about a TradingSymbol as an entry (None for Events about anything else). `symbols` maps
    `namespace/name` of TradingSymbols to their ticker. A repeated Event (count > 1) is a new entry."""
    involved = event.get("involvedObject") or {}
    if involved.get("kind") != "TradingSymbol":
        return None
    metadata = event.get("metadata") or {}
    namespace, name = involved.get("namespace") or metadata.get("namespace", ""), involved.get("name", "")
    reason = str(event.get("reason") or "")
    occurred = parse_time(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp"), now)
    source = event.get("source") or {}
    actor = str(event.get("reportingComponent") or source.get("component") or OPERATOR_ACTOR)
    detail = {"namespace": namespace, "name": name, "reason": reason, "type": event.get("type", ""),
              "message": event.get("message", ""), "count": event.get("count", 1)}
    return NewEntry(occurred, actor, EVENT_KINDS.get(reason, Kind.OPERATOR_EVENT),
                    symbols.get(f"{namespace}/{name}", name), detail,
                    f"Event/{metadata.get('uid', metadata.get('name'))}/{event.get('count', 1)}")


def revision_entry(revision: Mapping[str, Any], now: datetime.datetime) -> NewEntry | None:
    """A ControllerRevision of a TradingSymbol as a `revision` entry: its number, what it runs (image,
    resources, config) and its spec hash."""
    metadata = revision.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if OWNER_LABEL not in labels:
        return None
    data = revision.get("data") or {}
    detail = {"namespace": metadata.get("namespace", ""), "name": labels[OWNER_LABEL],
              "revision": revision.get("revision"), "object": metadata.get("name", ""),
              "image": data.get("image"), "resources": data.get("resources"), "config": data.get("config"),
              "specHash": data.get("specHash")}
    return NewEntry(parse_time(metadata.get("creationTimestamp"), now), OPERATOR_ACTOR, Kind.REVISION,
                    str(labels.get(SYMBOL_LABEL) or labels[OWNER_LABEL]), detail,
                    f"ControllerRevision/{metadata.get('uid', metadata.get('name'))}")
