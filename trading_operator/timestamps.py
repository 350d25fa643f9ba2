"""RFC 3339 timestamps as the Kubernetes API writes them, and kubectl-style ages."""

from __future__ import annotations

import datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(FORMAT)


def age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """`42s`, `5m`, `3h`, `2d` since a timestamp; `-` when unknown."""
    if not timestamp:
        return "-"
    then = datetime.datetime.strptime(timestamp, FORMAT).replace(tzinfo=datetime.UTC)
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - then).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def parse_time(timestamp: str) -> datetime.datetime:
    """An RFC 3339 timestamp (as written by `now_rfc3339` or the API server) as an aware datetime."""
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def seconds_between(earlier: str, later: str) -> float:
    return (parse_time(later) - parse_time(earlier)).total_seconds()
