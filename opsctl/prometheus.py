"""The one Prometheus client opsctl uses: instant queries, connection errors as exit code 4."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from opsctl.errors import ExitCode, OpsctlError

Labels = dict[str, str]


class Prometheus:
    """Instant queries against one Prometheus; use as a context manager (closes its HTTP session)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        # No retries: an unreachable Prometheus is reported at once, not after a backoff.
        self._client = PrometheusConnect(url=self.url, retry=Retry(total=0), timeout=timeout)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def vector(self, query: str) -> list[tuple[Labels, float]]:
        """(labels, value) of each series of an instant query's result."""
        try:
            result: list[dict[str, Any]] = self._client.custom_query(query)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise OpsctlError(ExitCode.UNREACHABLE, f"Prometheus at {self.url} is unreachable: "
                                                    f"{type(error).__name__}") from None
        except PrometheusApiClientException as error:
            raise OpsctlError(ExitCode.ERROR, f"Prometheus at {self.url} refused the query: {error}") from None
        return [(dict(series["metric"]), float(series["value"][1])) for series in result]
