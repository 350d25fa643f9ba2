"""Signal accuracy as it is: the directional hit rate of the engine's signals over the configured horizon,
on moves larger than the spread, with its 95 % Wilson interval and coverage, next to the persistence and
majority baselines scored on exactly the same (called) points. Thresholds are the config defaults —
nothing here is tuned to the data it is scored on.

Synthetic data: held-out seeds (1000+), never used while developing the indicators. A recorded file
(CSV/Parquet ticks or bars, docs/recorded-data.md) can be scored with --file; its load report goes to
stderr, and the exit status is 1 when nothing could be scored.

    python benchmarks/signal_accuracy.py [--symbols SPY,QQQ,ES] [--hours 2] [--file PATH --symbol SPY] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys

from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.recorded import LoadOptions, RecordedDataError, load_recorded
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics

HELD_OUT_SEED = 1000


def engine_for(symbol: str) -> SymbolEngine:
    def discard(table: str, row: tuple[object, ...]) -> None:
        return None

    config = RenderedConfig(symbol=symbol, market="equity-options", revision=1, runtime=RuntimeConfig())
    return SymbolEngine(config, True, RuntimeMetrics(symbol), discard, seed=0)


def summary(symbol: str, engine: SymbolEngine) -> dict[str, object]:
    r = engine.accuracy.report
    low, high = r.hit_rate_ci
    return {"symbol": symbol, "scored_points": r.scored, "signal_calls": r.calls,
            "hit_rate": round(r.hit_rate, 4), "hit_rate_ci": [round(low, 4), round(high, 4)],
            "coverage": round(r.coverage, 4), "unscored_breaks": r.unscored_breaks,
            "persistence_hit_rate": round(r.persistence_hit_rate, 4),
            "majority_hit_rate": round(r.majority_hit_rate, 4)}


async def synthetic(symbols: list[str], hours: float, dt: float = 0.25) -> list[dict[str, object]]:
    results = []
    for offset, symbol in enumerate(symbols):
        simulator = MarketSimulator([symbol], seed=HELD_OUT_SEED + offset)
        engine = engine_for(symbol)
        await settle(engine.on_message(parse_message(json.dumps({**simulator.snapshot(symbol), "seq": 0}))))
        seq = 0
        for _ in range(int(hours * 3600 / dt)):
            for message in simulator.tick(symbol, dt):
                seq += 1
                await settle(engine.on_message(parse_message(json.dumps({**message, "seq": seq}))))
        results.append(summary(symbol, engine))
    return results


async def recorded(path: pathlib.Path, symbol: str) -> list[dict[str, object]]:
    loaded = load_recorded(path, LoadOptions(symbol=symbol))
    print(loaded.report.summary(), file=sys.stderr)
    engine = engine_for(loaded.events.symbol)
    for message in loaded.events.messages():
        await settle(engine.on_message(message))
    return [{**summary(loaded.events.symbol, engine), "dropped_rows": loaded.report.dropped}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", default="SPY,QQQ,ES")
    parser.add_argument("--hours", type=float, default=2.0, help="market hours of synthetic data per symbol")
    parser.add_argument("--file", type=pathlib.Path, help="a recorded tick or bar file")
    parser.add_argument("--symbol", default="SPY", help="the symbol to score in --file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        results = asyncio.run(recorded(args.file, args.symbol)) if args.file else \
            asyncio.run(synthetic(args.symbols.split(","), args.hours))
    except RecordedDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scored = all(r["scored_points"] for r in results)
    if args.json:
        print(json.dumps(results))
        return 0 if scored else 1
    print(f"{'symbol':8} {'scored':>7} {'calls':>6} {'hit rate':>9} {'95 % CI':>17} {'coverage':>9} "
          f"{'persistence':>12} {'majority':>9}")
    for r in results:
        print(f"{r['symbol']:8} {r['scored_points']:>7} {r['signal_calls']:>6} {r['hit_rate']:>9} "
              f"{r['hit_rate_ci']!s:>17} {r['coverage']:>9} {r['persistence_hit_rate']:>12} "
              f"{r['majority_hit_rate']:>9}")
    if not scored:
        print("error: nothing was scored", file=sys.stderr)
    return 0 if scored else 1


if __name__ == "__main__":
    sys.exit(main())
