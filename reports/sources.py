"""The reports' sources: Prometheus (instant and range queries) and PostgreSQL, with their failures as one
error type the CLI turns into an exit code. A query that returns nothing is `no data`, never 0."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psycopg
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

Labels = Mapping[str, str]
MAX_POINTS = 11_000
"""Prometheus refuses a range query of more points per series than this."""


class SourceError(RuntimeError):
    """A source cannot be reached (`unreachable`) or refused a query."""

    def __init__(self, message: str, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Series:
    labels: Labels
    points: tuple[tuple[float, float], ...]
    """(unix time, value), NaN and infinite values dropped."""

    def at(self, when: float) -> float | None:
        return next((v for t, v in self.points if t == when), None)


def _finite(pairs: Sequence[Sequence[Any]]) -> tuple[tuple[float, float], ...]:
    out = []
    for t, v in pairs:
        value = float(v)
        if math.isfinite(value):
            out.append((float(t), value))
    return tuple(out)


class Prometheus:
    """Queries against one Prometheus; a context manager that closes its HTTP session."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._client = PrometheusConnect(url=self.url, retry=Retry(total=2, backoff_factor=0.5), timeout=timeout)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._client.close()

    def _call(self, fn: Any, *args: Any) -> list[dict[str, Any]]:
        try:
            return list(fn(*args))
        except (requests.ConnectionError, requests.Timeout) as error:
            raise SourceError(f"Prometheus at {self.url} is unreachable: {type(error).__name__}", True) from None
        except PrometheusApiClientException as error:
            raise SourceError(f"Prometheus at {self.url} refused a query: {error}", False) from None

    def instant(self, query: str, when: datetime.datetime) -> list[tuple[Labels, float]]:
        """(labels, value) of each series at `when` (non-finite values dropped)."""
        result = self._call(self._client.custom_query, query, {"time": when.timestamp()})
        return [(dict(s["metric"]), float(s["value"][1])) for s in result if math.isfinite(float(s["value"][1]))]

    def range(self, query: str, start: datetime.datetime, end: datetime.datetime, step_seconds: int) -> list[Series]:
        """Each series' values at start, start + step, … end (split into requests Prometheus accepts)."""
        series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
        chunk = datetime.timedelta(seconds=step_seconds * (MAX_POINTS - 1))
        begin = start
        while begin <= end:
            stop = min(end, begin + chunk)
            for s in self._call(self._client.custom_query_range, query, begin, stop, f"{step_seconds}s"):
                key = tuple(sorted(dict(s["metric"]).items()))
                series.setdefault(key, []).extend(_finite(s["values"]))
            begin = stop + datetime.timedelta(seconds=step_seconds)
        return [Series(dict(k), tuple(sorted(set(v)))) for k, v in series.items()]


class Database:
    """Read-only queries against the runtime's PostgreSQL."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            with psycopg.connect(self.conninfo, connect_timeout=5) as conn:
                return list(conn.execute(sql, args).fetchall())  # static SQL, values as parameters
        except psycopg.OperationalError as error:
            message = str(error).strip().splitlines()[0]
            raise SourceError(f"cannot reach PostgreSQL: {message}", True) from None
        except psycopg.Error as error:
            raise SourceError(f"PostgreSQL refused a query: {error}", False) from None
