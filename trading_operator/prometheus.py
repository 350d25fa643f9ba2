"""The one small object through which the operator reads Prometheus (prometheus-api-client)."""

from __future__ import annotations

import asyncio
import logging
import math

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from trading_operator.analysis import Sample

# A refused connection is reported once, as the sample's error; urllib3 would log every retry too.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


class MetricsSource:
    """Instant queries returning one value each; failures come back as `Sample(error=...)`, never raise."""

    def __init__(self, url: str | None, timeout_seconds: float = 3.0) -> None:
        self.url = url
        self._client = (
            PrometheusConnect(url=url, disable_ssl=True, timeout=timeout_seconds,
                              retry=Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504)))
            if url else None
        )

    def query(self, promql: str) -> Sample:
        if self._client is None:
            return Sample(error="no Prometheus configured (TRADEOPS_PROMETHEUS_URL)")
        try:
            result = self._client.custom_query(query=promql)
        except (requests.RequestException, PrometheusApiClientException) as error:
            return Sample(error=f"Prometheus at {self.url} unreachable: {type(error).__name__}: "
                                f"{str(error).splitlines()[0][:200]}")
        if not result:
            return Sample()
        if len(result) > 1:
            return Sample(error=f"query returned {len(result)} series, analysis needs one: {promql}")
        value = float(result[0]["value"][1])
        return Sample() if math.isnan(value) else Sample(value=value)

    async def measure(self, queries: list[str]) -> list[Sample]:
        """Run queries concurrently off the event loop."""
        return list(await asyncio.gather(*(asyncio.to_thread(self.query, q) for q in queries)))

    def close(self) -> None:
        if self._client is not None:
            self._client._session.close()
