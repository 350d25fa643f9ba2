"""The one Prometheus client opsctl uses: instant queries bounded by --request-timeout; a Prometheus that
cannot be reached is exit code 4 and one that does not answer exit code 8, each naming
TRADEOPS_PROMETHEUS_URL / --prometheus-url."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from opsctl.errors import ExitCode, OpsctlError

Labels = dict[str, str]
WHERE = "set TRADEOPS_PROMETHEUS_URL or pass --prometheus-url"


class Prometheus:
    """Instant queries against one Prometheus; use as a context manager (closes its HTTP session)."""

    def __init__(self, url: str, timeout: float | None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
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
        except (requests.Timeout, requests.ConnectionError) as error:
            # Without retries urllib3 wraps a read timeout in MaxRetryError, which requests calls a ConnectionError.
            cause = getattr(error.args[0] if error.args else None, "reason", None)
            if isinstance(error, requests.Timeout) or isinstance(cause, ReadTimeoutError):
                raise OpsctlError(ExitCode.NO_ANSWER, f"Prometheus at {self.url} did not answer within "
                                                      f"{self.timeout or 0:g}s: raise --request-timeout, or "
                                                      f"{WHERE}") from None
            reason = "connection refused" if "refused" in str(error).lower() else type(error).__name__
            raise OpsctlError(ExitCode.UNREACHABLE, f"Prometheus at {self.url} is unreachable ({reason}): "
                                                    f"{WHERE}") from None
        except PrometheusApiClientException as error:
            raise OpsctlError(ExitCode.ERROR, f"Prometheus at {self.url} refused the query: {error}") from None
        return [(dict(series["metric"]), float(series["value"][1])) for series in result]
