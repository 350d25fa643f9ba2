"""The client pool's pure parts: circuit breaker transitions, the retry budget, Retry-After, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trading_runtime.gateway.breaker import BreakerState, CircuitBreaker
from trading_runtime.gateway.budget import RetryBudget
from trading_runtime.gateway.pool import retry_after_seconds
from trading_runtime.gateway.settings import ApiKey, PoolSettings


def state(b: CircuitBreaker) -> BreakerState:
    return b.state  # read through a call: the breaker's methods move it (mypy would keep the narrowed type)


def test_breaker_opens_after_consecutive_failures_and_probes_once_when_half_open():
    b = CircuitBreaker(failure_threshold=3, open_seconds=1.0)
    for t in (0.0, 0.1):
        b.on_failure(t)
    assert b.available(0.2)
    b.on_failure(0.2)
    assert state(b) is BreakerState.OPEN
    assert not b.available(1.1)
    assert b.available(1.2)
    assert state(b) is BreakerState.HALF_OPEN
    b.on_send()
    assert not b.available(1.3)  # one probe at a time
    b.on_failure(1.4)  # the probe failed: open again, for twice as long
    assert not b.available(3.3)
    assert b.available(3.5)
    b.on_send()
    b.on_success()
    assert state(b) is BreakerState.CLOSED
    assert b.failures == 0
    assert b.available(3.6)


def test_a_success_resets_the_failure_count():
    b = CircuitBreaker(failure_threshold=2)
    b.on_failure(0.0)
    b.on_success()
    b.on_failure(0.1)
    assert state(b) is BreakerState.CLOSED


def test_retry_budget_allows_a_ratio_of_requests_plus_a_floor():
    budget = RetryBudget(ratio=0.1, min_per_second=0.0, cap=100.0)
    for _ in range(100):
        budget.on_request(0.0)
    spent = sum(budget.try_spend(0.0) for _ in range(50))
    assert spent == 10
    floor = RetryBudget(ratio=0.0, min_per_second=2.0)
    floor.on_request(0.0)
    assert [floor.try_spend(0.0) for _ in range(3)] == [True, True, False]
    assert floor.try_spend(0.5)
    assert not floor.try_spend(0.5)


@pytest.mark.parametrize(("header", "expected"), [
    (None, 1.0), ("", 1.0), ("3", 3.0), ("soon", 1.0),
    ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
], ids=["absent", "empty", "seconds", "garbled", "http-date"])
def test_retry_after(header, expected):
    now = 1445412480.0  # 07:28:00 that day
    assert retry_after_seconds(header, now) == pytest.approx(expected)


def test_key_secrets_stay_out_of_reprs():
    settings = PoolSettings(endpoints=["http://a:1"], keys=[ApiKey.model_validate(
        {"name": "k1", "secret": "s3cr3t", "ratePerSecond": 5, "burst": 2})])
    assert "s3cr3t" not in repr(settings)
    assert settings.keys[0].secret.get_secret_value() == "s3cr3t"


@pytest.mark.parametrize("keys", [[], [{"name": "k", "secret": "s", "ratePerSecond": 0}]], ids=["no-keys", "zero-rate"])
def test_unusable_settings_are_refused(keys):
    with pytest.raises(ValidationError):
        PoolSettings.model_validate({"endpoints": ["http://a:1"], "keys": keys})
