"""What the fencing check costs a flush: one write-behind flush transaction with and without an epoch.

A flush of the default 250 ms at a busy symbol's pace is modelled as one batch of `--ticks` tick rows plus one
trade (signal, order, fill, position rows). With an epoch the transaction first reads the symbol's
`book_epochs` row `FOR SHARE` (storage/epochs.py); without one it does not (a runtime without a Lease).
Flushes alternate, epoch / none, in pairs with the order swapped every pair, on one connection to a throwaway
PostgreSQL on this host, so that a shared machine's drift falls on both. Each figure is a flush transaction's
wall time as the writer sees it (`_flush_all`: taking the batch, BEGIN, the check, the COPYs and staging
inserts, COMMIT); `extra_ms_*` is the paired difference (median and a 95 % bootstrap interval of the median).
Excludes: the network distance to a remote database, contention with other writers of the same symbol (there
is none: one leader writes a symbol), connection set-up (the writer keeps its connection).

    python benchmarks/fenced_flush.py [--pairs 300] [--ticks 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import pathlib
import tempfile
import time
import uuid
from typing import Any

import numpy as np

from tests.servers import ThrowawayPostgres
from trading_runtime.storage.book import load_book
from trading_runtime.storage.schema import migrate
from trading_runtime.storage.writer import WriteBehind

SYMBOL = "BENCH"


def queue(writer: WriteBehind, n: int, ticks: int) -> None:
    ts = datetime.datetime.now(datetime.UTC)
    for i in range(ticks):
        writer.put("ticks", (ts, SYMBOL, SYMBOL, "quote", 500.0, 500.02, 100.0, 100.0, None, None, n * ticks + i))
    signal, order, fill = (str(uuid.uuid4()) for _ in range(3))
    writer.put("signals", (signal, ts, SYMBOL, 1, 1, 0.7, 0.6, {}))
    writer.put("orders", (order, ts, SYMBOL, "BENCH C500", "buy", 1.0, None, signal, "filled"))
    writer.put("fills", (fill, ts, order, 1.0, 5.0, 0.65))
    writer.put("positions", (ts, SYMBOL, "BENCH C500", float(n), 5.0, 0.0))


async def measure(dsn: str, pairs: int, ticks: int, workdir: pathlib.Path) -> dict[str, Any]:
    book = await load_book(dsn, SYMBOL, fenced=True)  # the term's load: the row a fenced flush reads
    fenced = WriteBehind(dsn, workdir / "fenced.jsonl", symbol=SYMBOL)
    fenced.set_epoch(book.epoch)
    plain = WriteBehind(dsn, workdir / "plain.jsonl", symbol=SYMBOL)
    times: dict[str, list[float]] = {"epoch": [], "none": []}
    n = 0
    for pair in range(pairs + 10):  # the first 10 pairs warm up (connections, temp staging tables, caches)
        order = [("epoch", fenced), ("none", plain)]
        for name, writer in order if pair % 2 else reversed(order):
            n += 1
            queue(writer, n, ticks)
            started = time.perf_counter()
            await writer._flush_all()
            if pair >= 10:
                times[name].append((time.perf_counter() - started) * 1000)
    assert not fenced.stats.fenced
    await fenced._disconnect()
    await plain._disconnect()
    epoch, none = np.array(times["epoch"]), np.array(times["none"])
    extra = epoch - none
    rng = np.random.default_rng(1)
    medians = np.median(rng.choice(extra, (2000, extra.size)), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return {"pairs": pairs, "rows_per_flush": ticks + 4,
            "flush_ms_p50_epoch": round(float(np.median(epoch)), 3),
            "flush_ms_p50_none": round(float(np.median(none)), 3),
            "flush_ms_p95_epoch": round(float(np.percentile(epoch, 95)), 3),
            "flush_ms_p95_none": round(float(np.percentile(none, 95)), 3),
            "extra_ms_p50": round(float(np.median(extra)), 3),
            "extra_ms_p50_ci95": [round(float(low), 3), round(float(high), 3)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server = ThrowawayPostgres().init().start()
    try:
        migrate(server.dsn)
        with tempfile.TemporaryDirectory() as workdir:
            result = asyncio.run(measure(server.dsn, args.pairs, args.ticks, pathlib.Path(workdir)))
    finally:
        server.destroy()
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
