"""What the client pool is given: endpoints, API keys with their providers' rate limits, and the knobs of
its breakers, retries and timeouts. Key values are secrets (`SecretStr`: never in a repr or a log); whoever
builds the pool reads them from a Secret, never from a config file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from trading_runtime.config import BrokerApi, api_key_env


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


class MissingKeyError(LookupError):
    """An API key of the config has no value in the environment (its Secret is missing or lacks the key)."""


def pool_settings(api: BrokerApi, environ: Mapping[str, str]) -> PoolSettings:
    """The pool for a runtime config's broker API, each key's value read from `TRADEOPS_API_KEY_<NAME>` (the
    operator sets it from the key's Secret)."""
    missing = [f"{key.name} ({api_key_env(key.name)} from Secret {key.secret_key_ref.name}, key "
               f"{key.secret_key_ref.key})" for key in api.keys if not environ.get(api_key_env(key.name))]
    if missing:
        raise MissingKeyError(f"no value for API key(s): {', '.join(missing)}")
    keys = [ApiKey(name=k.name, secret=SecretStr(environ[api_key_env(k.name)]), rate_per_second=k.rate_per_second,
                   burst=k.burst) for k in api.keys]
    return PoolSettings(endpoints=list(api.endpoints), keys=keys, timeout_seconds=api.timeout_seconds,
                        deadline_seconds=api.deadline_seconds, max_attempts=api.max_attempts,
                        failure_threshold=api.failure_threshold, open_seconds=api.open_seconds,
                        retry_ratio=api.retry_ratio, retry_min_per_second=api.retry_min_per_second)
