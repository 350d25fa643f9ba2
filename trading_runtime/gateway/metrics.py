"""The client pool's Prometheus series, per endpoint (and per key where a key is what matters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from trading_runtime.metrics import LATENCY_BUCKETS, PREFIX

API_BUCKETS = (*LATENCY_BUCKETS[4:], 2.5, 5.0, 10.0)


class PoolMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter(f"{PREFIX}_api_requests", "API attempts by endpoint and outcome",
                                ["endpoint", "outcome"], registry=r)
        self.latency = Histogram(f"{PREFIX}_api_request_seconds", "API attempt latency by endpoint", ["endpoint"],
                                 buckets=API_BUCKETS, registry=r)
        self.outstanding = Gauge(f"{PREFIX}_api_outstanding_requests", "Requests in flight by endpoint",
                                 ["endpoint"], registry=r)
        self.breaker = Gauge(f"{PREFIX}_api_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
                             ["endpoint"], registry=r)
        self.throttled = Counter(f"{PREFIX}_api_throttled", "429 answers by API key", ["key"], registry=r)
        self.key_waits = Counter(f"{PREFIX}_api_rate_limit_wait_seconds",
                                 "Time spent waiting for a key's rate limit", ["key"], registry=r)
        self.retries = Counter(f"{PREFIX}_api_retries", "Attempts after the first, by the reason of the retry",
                               ["reason"], registry=r)
        self.budget_exhausted = Counter(f"{PREFIX}_api_retry_budget_exhausted",
                                        "Retries refused: the retry budget was spent", registry=r)
        self.rate_store_errors = Counter(f"{PREFIX}_api_rate_store_errors",
                                         "Shared rate-limit checks Redis did not answer (no call goes out meanwhile)",
                                         registry=r)
        self.unavailable = Counter(f"{PREFIX}_api_no_endpoint",
                                   "Calls failed at once: every endpoint's breaker was open", registry=r)
