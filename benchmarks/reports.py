"""Reports benchmark: 30 days of history for 12 symbols backfilled into a real Prometheus (promtool) and a
real PostgreSQL, then the three reports made as `opsctl report … --out DIR` makes them, and the audit chain
verified, then tampered with and verified again.

    python benchmarks/reports.py [--days 30] [--symbols 12] [--json]

Each report's time runs from the call to the last file written (queries, arithmetic, charts, Markdown,
HTML, JSON); it excludes generating and backfilling the history and starting the servers (printed
separately). `max_cost_per_symbol_usd` is the highest cost per symbol per month (the window scaled to
730 hours) at the default CostPolicy's AWS prices; S3 is not priced (no bucket given). One run, no warm-up:
read the figures as an order of magnitude on this 2-core machine."""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the tests' throwaway servers

import psycopg

from audit.store import count, verify_log
from policies.loader import default_policies
from reports import building
from reports.document import Document, write
from reports.window import Window
from tests.history import History, World, backfilled_prometheus
from tests.servers import ThrowawayPostgres

TICKERS = ("SPY", "QQQ", "IWM", "DIA", "ES", "NQ", "GLD", "TLT", "XLF", "XLE", "EEM", "VXX", "AAPL", "MSFT", "NVDA")


def timed(make: Callable[[], Document], directory: pathlib.Path) -> tuple[Document, float]:
    started = time.perf_counter()
    doc = make()
    write(doc, directory)
    return doc, time.perf_counter() - started


def run(days: int, symbols: int) -> dict[str, Any]:
    world = World(symbols=TICKERS[:symbols], days=days)
    window = Window(world.start, world.end)
    started = time.perf_counter()
    history = History(world).build()
    prometheus = backfilled_prometheus(history)
    backfill_s = time.perf_counter() - started
    postgres = ThrowawayPostgres().init().start()
    try:
        history.populate(postgres.dsn)
        policies = default_policies()
        with tempfile.TemporaryDirectory(prefix="tradeops-reports-") as out:
            directory = pathlib.Path(out)
            _, performance_s = timed(lambda: building.performance_report(
                prometheus.url, postgres.dsn, policies.slo["default"], window), directory)
            compliance_doc: list[Document] = []

            def compliance() -> Document:
                doc, _ = building.compliance_report(prometheus.url, postgres.dsn, window, [])
                compliance_doc.append(doc)
                return doc

            _, compliance_s = timed(compliance, directory)
            cost_doc, cost_s = timed(lambda: building.cost_report(prometheus.url, policies.cost["default"], window),
                                     directory)
        entries = count(postgres.dsn)
        verified = verify_log(postgres.dsn).ok
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = %s", (entries // 2,))
        tamper_detected = not verify_log(postgres.dsn).ok
    finally:
        postgres.destroy()
        prometheus.destroy()
    return {
        "days": days, "symbols": symbols,
        "performance_report_s": round(performance_s, 2),
        "compliance_report_s": round(compliance_s, 2),
        "cost_report_s": round(cost_s, 2),
        "max_cost_per_symbol_usd": round(float(cost_doc.data["maxMonthlyPerSymbol"]), 2),
        "audit_entries": entries,
        "audit_verified": verified,
        "tamper_detected": tamper_detected,
        "_backfill_s": round(backfill_s, 1),
        "_generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=12, choices=range(1, len(TICKERS) + 1))
    parser.add_argument("--json", action="store_true", help="print exactly the issue's keys as JSON")
    args = parser.parse_args()
    result = run(args.days, args.symbols)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2))
        return 0
    for key, value in result.items():
        print(f"{key.lstrip('_'):26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
