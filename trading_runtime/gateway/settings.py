"""What the client pool is given: endpoints, API keys with their providers' rate limits, and the knobs of
its breakers, retries and timeouts. Key values are secrets (`SecretStr`: never in a repr or a log); whoever
builds the pool reads them from a Secret, never from a config file."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ApiKey(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: Annotated[str, Field(min_length=1, max_length=40)]
    """Shown in metrics and logs (the secret never is)."""
    secret: SecretStr
    rate_per_second: Annotated[float, Field(gt=0, alias="ratePerSecond")]
    """The provider's sustained limit for this key."""
    burst: Annotated[int, Field(ge=1)] = 1
    """Requests the provider lets through at once (its bucket's size)."""


class PoolSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoints: Annotated[list[str], Field(min_length=1)]
    keys: Annotated[list[ApiKey], Field(min_length=1)]
    timeout_seconds: Annotated[float, Field(gt=0)] = 2.0
    """Per attempt; a call's whole deadline is `deadline_seconds`."""
    deadline_seconds: Annotated[float, Field(gt=0)] = 10.0
    max_attempts: Annotated[int, Field(ge=1)] = 3
    failure_threshold: Annotated[int, Field(ge=1)] = 5
    open_seconds: Annotated[float, Field(gt=0)] = 1.0
    retry_ratio: Annotated[float, Field(ge=0)] = 0.2
    retry_min_per_second: Annotated[float, Field(ge=0)] = 5.0
    max_retry_after_seconds: Annotated[float, Field(gt=0)] = 60.0
    """A Retry-After longer than this is clamped (a provider's mistake must not park a key for a day)."""
