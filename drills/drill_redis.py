"""The redis-loss drill: Redis loses everything; the newest snapshot puts back what the runtimes cannot
rebuild (streams and their consumer groups, return histories — merged in front of what the runtimes wrote
since), and the runtimes rebuild the rest (the shared position book) on their next share tick. RTO: until
every symbol that was in the book is back. RPO: what the snapshot did not have (its age at the loss)."""

from __future__ import annotations

import datetime
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

# The runtime's key names (trading_runtime.messaging; not imported: drills stay independent of the runtime).
POSITIONS_KEY = "tradeops:positions"
STREAMS = ("tradeops:signals", "tradeops:risk-events")


def _state(conn: redis.Redis) -> dict[str, Any]:
    book = {k.decode() if isinstance(k, bytes) else str(k) for k in conn.hkeys(POSITIONS_KEY)}
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
                raise DrillsError(Exit.USAGE, "the position book in Redis is empty: no runtime writes to this Redis, "
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
            after = _state(conn)
            while not before["book"] <= after["book"]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
                after = _state(conn)
            rto = time.monotonic() - clock
            groups = {name: len(conn.xinfo_groups(name)) if conn.exists(name) else 0 for name in STREAMS}
    except RedisError as error:
        raise DrillsError(Exit.UNREACHABLE, f"Redis unreachable: {error}") from None
    missing_book = sorted(before["book"] - after["book"])
    checks = [
        Check(name="snapshot verified (size, SHA-256)", ok=True,
              detail=f"{snapshot.id}: {restored.restored} keys put back, {restored.merged} streams/lists "
                     f"merged with what the runtimes wrote since, {restored.kept} rewritten keys kept"),
        Check(name="position book rebuilt by the runtimes", ok=not missing_book,
              detail=f"missing {missing_book}" if missing_book else f"{len(before['book'])} symbols back"),
    ]
    facts = {"symbols": sorted(before["book"]), "streams_before": before["streams"],
             "streams_after": after["streams"], "consumer_groups_after": groups,
             "snapshot_time": snapshot.source.time.isoformat(),
             "lost": "stream entries and returns pushed after the snapshot (signals and risk events are also in "
                     "PostgreSQL; the runtime does not re-publish them)"}
    if rto > timeout:
        facts["timed_out_after_seconds"] = timeout
    rpo = max(0.0, (disaster - snapshot.source.time).total_seconds())
    return Outcome(rto_seconds=rto, rpo_seconds=rpo, backup_id=snapshot.id, checks=checks, facts=facts)


