"""The redis-loss drill: Redis loses everything; the newest snapshot puts back what the runtimes cannot
rebuild (streams and their consumer groups, the portfolio service's book — merged in front of what was
written since), and the runtimes resume the rest (their position events) on their next share tick. RTO:
until every symbol that was publishing positions publishes again. RPO: what the snapshot did not have (its
age at the loss)."""

from __future__ import annotations

import datetime
import json
import pathlib
import tempfile
import time
from typing import Any

import redis
from redis.exceptions import RedisError

from drills import backups, redis_snapshot
from drills.context import DrillContext, Outcome
from drills.errors import DrillsError, Exit
from drills.report import Check

# The runtime's key names (trading_runtime.messaging, trading_runtime.portfolio.events; not imported: drills
# stay independent of the runtime).
POSITION_EVENTS = "tradeops:position-events"
STREAMS = ("tradeops:signals", "tradeops:risk-events")


def _publishing(conn: redis.Redis, since_ms: int | None) -> set[str]:
    """Symbols with position events: among the newest 2000, or (with `since_ms`) written since then."""
    if not conn.exists(POSITION_EVENTS):
        return set()
    entries: Any = conn.xrevrange(POSITION_EVENTS, count=2000) if since_ms is None else \
        conn.xrange(POSITION_EVENTS, min=f"{since_ms}-0", count=2000)
    return {str(json.loads(fields[b"data"])["symbol"]) for _, fields in entries if b"data" in fields}


def _state(conn: redis.Redis, since_ms: int | None = None) -> dict[str, Any]:
    book = _publishing(conn, since_ms)
    streams = {name: int(conn.xlen(name)) if conn.exists(name) else 0 for name in STREAMS}
    return {"book": book, "streams": streams}


def redis_loss(ctx: DrillContext) -> Outcome:
    url = ctx.settings.need_redis()
    timeout = float(ctx.params.get("timeoutSeconds", 60))
    snapshot = backups.find(ctx.store, "latest-redis")
    try:
        with redis_snapshot.client(url) as conn:
            before = _state(conn)
            if not before["book"]:
                raise DrillsError(Exit.USAGE, "no position events in Redis: no runtime writes to this Redis, "
                                  "so there is nothing to prove it rebuilds")
            disaster, clock = datetime.datetime.now(datetime.UTC), time.monotonic()
            conn.flushall()
            with tempfile.TemporaryDirectory(dir=ctx.settings.workdir) as scratch:
                rdb = pathlib.Path(scratch) / backups.RDB_NAME
                backups.download_verified(ctx.store, snapshot.objects[0], rdb, ctx.progress)
                server = redis_snapshot.start_from(rdb)
                try:
                    restored = redis_snapshot.restore_keys(server.url, url)
                finally:
                    server.stop()
            deadline = clock + timeout
            since_ms = int(disaster.timestamp() * 1000)
            after = _state(conn, since_ms)
            while not before["book"] <= after["book"]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
                after = _state(conn, since_ms)
            rto = time.monotonic() - clock
            groups = {name: len(conn.xinfo_groups(name)) if conn.exists(name) else 0 for name in STREAMS}
    except RedisError as error:
        raise DrillsError(Exit.UNREACHABLE, f"Redis unreachable: {error}") from None
    missing_book = sorted(before["book"] - after["book"])
    checks = [
        Check(name="snapshot verified (size, SHA-256)", ok=True,
              detail=f"{snapshot.id}: {restored.restored} keys put back, {restored.merged} streams/lists "
                     f"merged with what the runtimes wrote since, {restored.kept} rewritten keys kept"),
        Check(name="position events resumed by the runtimes", ok=not missing_book,
              detail=f"missing {missing_book}" if missing_book else f"{len(before['book'])} symbols back"),
    ]
    facts = {"symbols": sorted(before["book"]), "streams_before": before["streams"],
             "streams_after": after["streams"], "consumer_groups_after": groups,
             "snapshot_time": snapshot.source.time.isoformat(),
             "lost": "stream entries written after the snapshot (signals, risk events and fills are also in "
                     "PostgreSQL; the runtime does not re-publish them)"}
    if rto > timeout:
        facts["timed_out_after_seconds"] = timeout
    rpo = max(0.0, (disaster - snapshot.source.time).total_seconds())
    return Outcome(rto_seconds=rto, rpo_seconds=rpo, backup_id=snapshot.id, checks=checks, facts=facts)


