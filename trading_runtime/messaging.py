"""Redis for the runtime: Redis Streams with consumer groups (the system's message queue): signals and risk
events, and the position and fill events the portfolio risk service consumes (trading_runtime/portfolio/)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SIGNALS_STREAM = "tradeops:signals"
RISK_STREAM = "tradeops:risk-events"


@dataclass(frozen=True)
class StreamMessage:
    stream: str
    id: str
    fields: dict[str, Any]


class RedisBus:
    def __init__(self, url: str, stream_maxlen: int = 100_000, timeout: float = 1.0) -> None:
        import redis.asyncio as aioredis  # ~8 MB: loaded by the processes that talk to Redis, not by every runtime

        self.redis = aioredis.from_url(url, decode_responses=True, socket_timeout=timeout,
                                       socket_connect_timeout=timeout, health_check_interval=10)
        self.stream_maxlen = stream_maxlen

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # Streams ----------------------------------------------------------------------------------------

    async def publish(self, stream: str, fields: dict[str, Any]) -> str:
        """Append to a stream (trimmed to about `stream_maxlen` entries); returns the entry id."""
        payload: dict[Any, Any] = {"data": json.dumps(fields)}
        return str(await self.redis.xadd(stream, payload, maxlen=self.stream_maxlen, approximate=True))

    async def ensure_group(self, stream: str, group: str) -> None:
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def consume(self, stream: str, group: str, consumer: str, count: int = 100, block_ms: int = 1000,
                      pending: bool = False) -> list[StreamMessage]:
        """Read new entries for this consumer (or, with `pending`, its delivered but unacknowledged ones,
        which a restarted consumer must process first)."""
        start = "0" if pending else ">"
        reply: Any = await self.redis.xreadgroup(group, consumer, {stream: start}, count=count,
                                                 block=None if pending else block_ms)
        return [StreamMessage(str(name), str(entry_id), json.loads(fields["data"]))
                for name, entries in reply or [] for entry_id, fields in entries if fields]

    async def ack(self, stream: str, group: str, *ids: str) -> int:
        return int(await self.redis.xack(stream, group, *ids))
