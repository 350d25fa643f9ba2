"""Batched PostgreSQL writes (COPY) behind a bounded write-behind queue that loses nothing.

`put()` never blocks the hot path. A flusher copies batches per table in one transaction. When the
database is down the batch is kept and retried with backoff while new rows queue up; past the queue's
capacity rows spill to a local file (JSON lines), which is replayed once the database is back. Only when
the spill file is full too does `put()` raise `WriteBehindFullError`: a clear error the runtime must act
on (it halts trading) — rows are never dropped silently.

Fencing (storage/epochs.py): each row carries the leadership epoch it was put under (`set_epoch`); a batch
holds rows of one epoch, and its transaction commits only if the symbol's stored epoch is not above it. A
refused batch is a deposed leader's: it is dropped, logged at error level and counted (`stats.fenced`)."""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import datetime
import json
import logging
import pathlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trading_runtime.storage import epochs

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]

    def copy_sql(self) -> str:
        target = _stage(self.name) if self.name in IDEMPOTENT else self.name
        return f"COPY {target} ({', '.join(self.columns)}) FROM STDIN"

    def stage_sql(self) -> tuple[str, str]:
        """An idempotent table's batch goes through a session-local staging table (COPY has no ON CONFLICT):
        the statement creating it, and the insert that keeps the first row of each id."""
        columns = ", ".join(self.columns)
        return (f"CREATE TEMP TABLE IF NOT EXISTS {_stage(self.name)} (LIKE {self.name} INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS",
                f"INSERT INTO {self.name} ({columns}) SELECT {columns} FROM {_stage(self.name)} "
                "ON CONFLICT (id) DO NOTHING")


IDEMPOTENT = ("signals", "orders", "fills")
"""Tables whose rows carry deterministic ids (trading_runtime/execution/ids.py): a row written again — a
retried batch whose commit was not acknowledged, a new leader re-deciding — is kept once."""


def _stage(name: str) -> str:
    return f"stage_{name}"


TABLES = {t.name: t for t in (
    Table("ticks", ("ts", "symbol", "instrument", "kind", "bid", "ask", "bid_size", "ask_size", "price", "size",
                    "seq")),
    Table("bars", ("ts", "symbol", "timeframe_s", "open", "high", "low", "close", "volume")),
    Table("signals", ("id", "ts", "symbol", "revision", "direction", "score", "confidence", "features")),
    Table("orders", ("id", "ts", "symbol", "instrument", "side", "quantity", "limit_price", "signal_id", "status")),
    Table("fills", ("id", "ts", "order_id", "quantity", "price", "fee")),
    Table("positions", ("ts", "symbol", "instrument", "quantity", "average_price", "realized_pnl")),
    Table("risk_events", ("ts", "symbol", "kind", "severity", "detail")),
    Table("order_rejections", ("id", "ts", "symbol", "instrument", "side", "quantity", "price", "reason", "detail")),
)}

# Parents before children, so a batch never copies a fill before its order.
FLUSH_ORDER = ("ticks", "bars", "signals", "orders", "fills", "positions", "risk_events", "order_rejections")
PARENTS = {"orders": ("signals",), "fills": ("orders",)}
"""Foreign keys between the tables: a child row is written only once every parent row queued before it is."""
CARRIED_LIMIT = 10_000
"""Decisions remembered for the next batch's report; beyond it they are counted in `carried_dropped`."""


@dataclass(frozen=True)
class Batch:
    """What a flush reports to its observer (tracing): timing, rows, the decisions carried, the error."""

    started_ns: int
    ended_ns: int
    rows: int
    carried: tuple[Any, ...]
    error: BaseException | None = None


class FencedError(Exception):
    """The symbol's stored epoch is above the batch's: its transaction was rolled back."""

    def __init__(self, epoch: int, stored: int) -> None:
        super().__init__(f"epoch {epoch} fenced out by stored epoch {stored}")
        self.epoch, self.stored = epoch, stored


class WriteBehindFullError(RuntimeError):
    """The queue and the spill file are both full: the row was not accepted."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


@dataclass
class WriterStats:
    accepted: int = 0
    written: int = 0
    retried_batches: int = 0
    spilled: int = 0
    replayed: int = 0
    rejected: int = 0
    outages: int = 0
    dead_lettered: int = 0
    carried_dropped: int = 0
    duplicates: int = 0
    fenced: dict[str, int] = field(default_factory=dict)
    """Rows refused per table: a deposed leader's (storage/epochs.py)."""


class WriteBehind:
    def __init__(self, conninfo: str, spill_path: pathlib.Path, capacity: int = 100_000, batch_size: int = 500,
                 flush_interval: float = 0.25, spill_capacity: int = 1_000_000, backoff_cap: float = 5.0,
                 on_batch: Callable[[Batch], None] | None = None, symbol: str | None = None,
                 on_fenced: Callable[[str, int], None] | None = None) -> None:
        self.conninfo, self.symbol, self.on_fenced = conninfo, symbol, on_fenced
        self.spill_path = spill_path
        self.capacity, self.batch_size, self.flush_interval = capacity, batch_size, flush_interval
        self.spill_capacity, self.backoff_cap = spill_capacity, backoff_cap
        # Each row carries its place in the order rows were put, which keeps children behind their parents.
        self.pending: dict[str, collections.deque[tuple[int, Row]]] = {name: collections.deque() for name in TABLES}
        self._seq = 0
        self._replaying = False
        self.stats = WriterStats()
        self.spill_rows = self._count_spill()
        self._wake = asyncio.Event()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._rng = random.Random()
        self.healthy = False
        self.on_batch = on_batch
        self._carried: list[Any] = []
        # Where each epoch's rows start: (first seq, epoch), ascending; rows before the first have none.
        self._epochs: list[tuple[int, int | None]] = []

    def set_epoch(self, epoch: int | None) -> None:
        """The epoch of the rows put from now on (a new leadership term); those queued keep theirs."""
        if self._epoch_of(self._seq + 1) != epoch:
            self._epochs.append((self._seq + 1, epoch))

    def _epoch_of(self, seq: int) -> int | None:
        at = bisect.bisect_right(self._epochs, seq, key=lambda b: b[0])
        return self._epochs[at - 1][1] if at else None

    def _next_epoch_start(self, seq: int) -> int:
        """The first seq of the epoch after the one `seq` is in (beyond every row put when none)."""
        at = bisect.bisect_right(self._epochs, seq, key=lambda b: b[0])
        return self._epochs[at][0] if at < len(self._epochs) else self._seq + 1

    @property
    def depth(self) -> int:
        return sum(len(q) for q in self.pending.values())

    def put(self, table: str, row: Row) -> None:
        """Queue a row; spill it when the queue is full; raise only when the spill is full too."""
        if len(row) != len(TABLES[table].columns):
            raise ValueError(f"{table} rows have {len(TABLES[table].columns)} columns, got {len(row)}")
        # While rows are spilled, a child row is spilled too: its parent may be in the spill file, which is
        # written back after the queue (rows put while it is being written back queue behind it as usual).
        follow_spill = table in PARENTS and self.spill_rows > 0 and not self._replaying
        if self.depth < self.capacity and not follow_spill:
            self.stats.accepted += 1
            self._seq += 1
            self.pending[table].append((self._seq, row))
            if self.depth >= self.batch_size:
                self._wake.set()
            return
        if self.spill_rows >= self.spill_capacity:
            self.stats.rejected += 1
            raise WriteBehindFullError(
                f"write-behind queue ({self.capacity} rows) and spill file {self.spill_path} "
                f"({self.spill_capacity} rows) are full: the database has been unreachable too long")
        with self.spill_path.open("a") as spill:
            spill.write(json.dumps([table, [_plain(v) for v in row], self._epoch_of(self._seq + 1)]) + "\n")
        self.spill_rows += 1
        self.stats.accepted += 1
        self.stats.spilled += 1

    def wake(self) -> None:
        """Flush now (with `stop` set: the shutdown need not wait out the flush interval)."""
        self._wake.set()

    def reconfigure(self, batch_size: int, flush_interval: float, capacity: int) -> None:
        """A hot-reloaded config: the batch size and queue bound apply from the next batch taken, the flush
        interval now (the wait in progress is cut short)."""
        self.batch_size, self.flush_interval, self.capacity = batch_size, flush_interval, capacity
        self.wake()

    def carry(self, decision: Any) -> None:
        """Note a decision whose rows were just queued: the next batch taken reports it as carried."""
        if len(self._carried) >= CARRIED_LIMIT:
            self.stats.carried_dropped += 1
            return
        self._carried.append(decision)

    def _count_spill(self) -> int:
        if not self.spill_path.exists():
            return 0
        with self.spill_path.open() as spill:
            return sum(1 for _ in spill)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush until `stop`, then what is left. Shutting down without a database, the queue goes to the
        spill file, which the next start replays."""
        try:
            await self._loop(stop)
        finally:
            await self._disconnect()

    async def _loop(self, stop: asyncio.Event) -> None:
        import psycopg  # loaded on first use: a runtime without a database never pays its ~9 MB

        attempt = 0
        while True:
            try:
                await self._flush_all()
                if self.spill_rows and self.depth < self.capacity // 2:
                    await self._replay_spill()
                attempt = 0
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if self.healthy or attempt == 0:
                    self.stats.outages += 1
                    log.error("database unreachable, keeping %d rows queued: %s", self.depth, exc)
                self.healthy = False
                await self._disconnect()
                if stop.is_set():
                    self._spill_pending()
                    return
                await asyncio.sleep(self._rng.uniform(0, min(self.backoff_cap, 0.1 * 2 ** attempt)))
                attempt += 1
                continue
            if stop.is_set():
                if not self.depth:
                    return
                continue  # stopping: no waiting between the last batches
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)

    def _spill_pending(self) -> None:
        """Move every queued row to the spill file (at shutdown, beyond its capacity: keeping data wins)."""
        with self.spill_path.open("a") as spill:
            for name in FLUSH_ORDER:
                queue = self.pending[name]
                while queue:
                    seq, row = queue.popleft()
                    spill.write(json.dumps([name, [_plain(v) for v in row], self._epoch_of(seq)]) + "\n")
                    self.spill_rows += 1
                    self.stats.spilled += 1

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.conninfo, connect_timeout=3)
        return self._conn

    async def _disconnect(self) -> None:
        import psycopg

        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None

    async def _flush_all(self) -> None:
        while self.depth:
            epoch, taken = self._next_batch()
            batches = {name: [row for _, row in items] for name, items in taken.items()}
            carried, self._carried = self._carried, []
            started = time.perf_counter_ns()
            try:
                await self._copy(batches, epoch)
            except BaseException as error:
                for name, items in taken.items():  # keep them, in order, for the retry
                    self.pending[name].extendleft(reversed(items))
                self._carried = carried + self._carried
                self.stats.retried_batches += 1
                self._report(started, batches, (), error)
                raise
            self._report(started, batches, tuple(carried), None)

    def _next_batch(self) -> tuple[int | None, dict[str, list[tuple[int, Row]]]]:
        """The next batch to write: rows of the oldest epoch queued, and that epoch."""
        first = min(queue[0][0] for queue in self.pending.values() if queue)
        return self._epoch_of(first), self._take(self._next_epoch_start(first))

    def _take(self, end: int) -> dict[str, list[tuple[int, Row]]]:
        """Up to `batch_size` rows of each table put before `end` (the next epoch's first), parents first; a
        child row stays queued while a parent row put before it does (the next batch takes both: a parent table
        always gives up at least one row)."""
        taken: dict[str, list[tuple[int, Row]]] = {}
        for name in FLUSH_ORDER:
            queue = self.pending[name]
            waiting = [self.pending[parent][0][0] for parent in PARENTS.get(name, ()) if self.pending[parent]]
            before = min([*waiting, end])
            items: list[tuple[int, Row]] = []
            while queue and len(items) < self.batch_size and queue[0][0] < before:
                items.append(queue.popleft())
            if items:
                taken[name] = items
        return taken

    def _report(self, started: int, batches: dict[str, list[Row]], carried: tuple[Any, ...],
                error: BaseException | None) -> None:
        if self.on_batch is not None:
            rows = sum(len(b) for b in batches.values())
            self.on_batch(Batch(started, time.perf_counter_ns(), rows, carried, error))

    async def _copy(self, batches: dict[str, list[Row]], epoch: int | None) -> None:
        """Write a batch of one epoch; a fenced batch is dropped (logged, counted), not retried."""
        import psycopg

        try:
            try:
                await self._copy_once(batches, epoch)
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                log.error("database refused a batch (%s); writing it row by row", exc)
                await self._copy_rows(batches, epoch)
        except FencedError as fenced:
            self._refused(batches, fenced)

    def _refused(self, batches: dict[str, list[Row]], fenced: FencedError) -> None:
        """A deposed leader's rows: dropped, logged with their counts, counted."""
        self.healthy = True  # the database answered
        counts = {name: len(rows) for name, rows in batches.items() if rows}
        log.error("batch of a deposed leader of %s refused, rows dropped %s: %s", self.symbol,
                  json.dumps(counts), fenced, extra={"symbol": self.symbol, "fenced": counts})
        for name, count in counts.items():
            self.stats.fenced[name] = self.stats.fenced.get(name, 0) + count
            if self.on_fenced is not None:
                self.on_fenced(name, count)

    async def _copy_rows(self, batches: dict[str, list[Row]], epoch: int | None) -> None:
        """Isolate refused rows: every row alone; those still refused go to the dead-letter file."""
        import psycopg

        for name in FLUSH_ORDER:
            for row in batches.get(name, []):
                try:
                    await self._copy_once({name: [row]}, epoch)
                except FencedError as fenced:  # deposed meanwhile: the rows written alone before stay
                    self._refused({name: [row]}, fenced)
                except (psycopg.DataError, psycopg.IntegrityError) as exc:
                    with self.dead_letter_path.open("a") as dead:
                        dead.write(json.dumps({"table": name, "row": [_plain(v) for v in row],
                                               "error": str(exc).splitlines()[0]}) + "\n")
                    self.stats.dead_lettered += 1

    @property
    def dead_letter_path(self) -> pathlib.Path:
        return self.spill_path.with_suffix(".rejected.jsonl")

    async def _copy_once(self, batches: dict[str, list[Row]], epoch: int | None) -> None:
        conn = await self._connection()
        duplicates = 0
        async with conn.transaction(), conn.cursor() as cursor:
            if epoch is not None and self.symbol is not None:  # held until the commit: no load in between
                await cursor.execute(epochs.READ_SHARED, (self.symbol,))
                stored_row = await cursor.fetchone()
                stored = int(stored_row[0]) if stored_row else None
                if not epochs.admits(stored, epoch):
                    assert stored is not None
                    raise FencedError(epoch, stored)
            for name in FLUSH_ORDER:
                rows = batches.get(name)
                if not rows:
                    continue
                table = TABLES[name]
                if name in IDEMPOTENT:
                    await cursor.execute(table.stage_sql()[0])
                async with cursor.copy(table.copy_sql()) as copy:
                    for row in rows:
                        await copy.write_row([_plain(v) for v in row])
                if name in IDEMPOTENT:
                    await cursor.execute(table.stage_sql()[1])
                    duplicates += len(rows) - max(cursor.rowcount, 0)
        self.healthy = True
        self.stats.written += sum(len(rows) for rows in batches.values()) - duplicates
        self.stats.duplicates += duplicates

    async def _replay_spill(self) -> None:
        """Write the spilled rows back, one batch per epoch (a line without one: none), then truncate the spill
        file (all or nothing per call)."""
        by_epoch: dict[int | None, dict[str, list[Row]]] = {}
        with self.spill_path.open() as spill:
            for line in spill:
                table, row, *epoch = json.loads(line)
                batch = by_epoch.setdefault(epoch[0] if epoch else None, collections.defaultdict(list))
                batch[table].append(tuple(row))
        self._replaying = True
        try:
            for epoch_of_rows, batches in by_epoch.items():
                await self._copy(batches, epoch_of_rows)
        finally:
            self._replaying = False
        self.stats.replayed += self.spill_rows
        self.spill_path.unlink()
        self.spill_rows = 0

