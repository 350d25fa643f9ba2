"""The portfolio book in Redis, written only through idempotent scripts: a position event applies only when
its version is newer than the symbol's, a fill only when its id is new. Redelivered entries (a consumer that
died before acknowledging, an entry reclaimed by another) therefore change nothing the second time, whichever
consumer of the group sees them."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from trading_runtime.portfolio.events import FillEvent, PositionEvent

PREFIX = "tradeops:portfolio"
EXPOSURES = f"{PREFIX}:exposures"
VERSIONS = f"{PREFIX}:versions"
MIDS = f"{PREFIX}:mids"
FILLS = f"{PREFIX}:fills"
RETURNS_KEEP = 600
SEEN_TTL_S = 3 * 86400

_APPLY_POSITION = """
local version = tonumber(ARGV[2])
local known = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if version <= known then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local mid = tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if last > 0 and mid > 0 then
  redis.call('RPUSH', KEYS[4], tostring(math.log(mid / last)))
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[5]), -1)
end
if mid > 0 then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
return 1
"""

_APPLY_FILL = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
redis.call('HINCRBY', KEYS[2], ARGV[2] .. ':fills', 1)
redis.call('HINCRBYFLOAT', KEYS[2], ARGV[2] .. ':quantity', ARGV[3])
local traded = math.abs(tonumber(ARGV[3]) * tonumber(ARGV[4]) * tonumber(ARGV[7]))
redis.call('HINCRBYFLOAT', KEYS[2], ARGV[2] .. ':traded', tostring(traded))
redis.call('HINCRBYFLOAT', KEYS[2], ARGV[2] .. ':fees', ARGV[5])
return 1
"""


def returns_key(symbol: str) -> str:
    return f"{PREFIX}:returns:{symbol}"


@dataclass(frozen=True)
class FillTotals:
    fills: int
    quantity: float
    traded: float
    fees: float


class PortfolioBook:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._position = redis.register_script(_APPLY_POSITION)
        self._fill = redis.register_script(_APPLY_FILL)

    async def apply_position(self, event: PositionEvent) -> bool:
        """True when the event was new (False: a redelivery, or older than what the book holds)."""
        exposure = json.dumps({"notional": event.notional, "delta": event.delta, "gamma": event.gamma,
                               "vega": event.vega, "correlationThreshold": event.correlation_threshold,
                               "correlatedExposureCap": event.correlated_exposure_cap})
        applied: Any = await self._position(keys=[EXPOSURES, VERSIONS, MIDS, returns_key(event.symbol)],
                                            args=[event.symbol, event.version, exposure, repr(event.mid),
                                                  RETURNS_KEEP])
        return bool(applied)

    async def apply_fill(self, event: FillEvent) -> bool:
        day = datetime.datetime.fromtimestamp(event.ts, datetime.UTC).strftime("%Y%m%d")
        applied: Any = await self._fill(keys=[f"{PREFIX}:fills-seen:{day}", FILLS],
                                        args=[event.fill_id, event.symbol, repr(event.quantity), repr(event.price),
                                              repr(event.fee), SEEN_TTL_S, repr(event.multiplier)])
        return bool(applied)

    async def exposures(self) -> dict[str, dict[str, float]]:
        raw: dict[Any, Any] = await self.redis.hgetall(EXPOSURES)
        return {str(symbol): dict(json.loads(value)) for symbol, value in raw.items()}

    async def returns(self, symbols: list[str]) -> dict[str, list[float]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for symbol in symbols:
                pipe.lrange(returns_key(symbol), 0, -1)
            replies = await pipe.execute()
        return {s: [float(v) for v in values] for s, values in zip(symbols, replies, strict=True)}

    async def fill_totals(self, symbol: str) -> FillTotals:
        raw: dict[Any, Any] = await self.redis.hgetall(FILLS)
        return FillTotals(int(raw.get(f"{symbol}:fills", 0)), float(raw.get(f"{symbol}:quantity", 0.0)),
                          float(raw.get(f"{symbol}:traded", 0.0)), float(raw.get(f"{symbol}:fees", 0.0)))
