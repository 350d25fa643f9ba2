"""Tick-to-signal latency of the trading runtime for 12 symbols with full option chains, on this machine.

Synthetic frames (JSON, as they arrive from the WebSocket) for 12 symbols are pre-generated, then fed to
12 engines at a fixed total message rate; each frame's latency is parse + engine (indicators, signal,
risk, paper orders, row hand-off to the write-behind queue), measured with perf_counter. The network hop
is not included. The maximum sustainable rate is the unpaced throughput of the same path on one core.

    python benchmarks/runtime_latency.py [--rate 2000] [--seconds 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import tempfile
import time

import numpy as np
import psutil

from trading_runtime.chain_analysis import BackgroundAnalysis
from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.storage.writer import WriteBehind

SYMBOLS = ["SPY", "QQQ", "ES", "IWM", "DIA", "NQ", "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META"]


def frames(count: int, seed: int = 0) -> list[tuple[str, str]]:
    simulator = MarketSimulator(SYMBOLS, seed=seed, option_quotes_per_tick=2, trade_probability=0.4)
    seq = dict.fromkeys(SYMBOLS, 0)
    out = [(s, json.dumps({**simulator.snapshot(s), "seq": 0})) for s in SYMBOLS]
    while len(out) < count:
        for symbol in SYMBOLS:
            for message in simulator.tick(symbol, 0.2):
                seq[symbol] += 1
                out.append((symbol, json.dumps({**message, "seq": seq[symbol]})))
    return out[:count]


def engines() -> dict[str, SymbolEngine]:
    # Rows go into a real write-behind queue (its flusher, which runs on its own task, is not started); the chains
    # are analysed on threads of their own, as in the live runtime.
    queue = WriteBehind("", pathlib.Path(tempfile.mkdtemp()) / "spill.jsonl", capacity=10**9)
    return {s: SymbolEngine(RenderedConfig(symbol=s, market="equity-options", revision=1, runtime=RuntimeConfig()),
                            True, RuntimeMetrics(s), queue.put, seed=0, analysis=BackgroundAnalysis())
            for s in SYMBOLS}


async def run(rate: float, seconds: float) -> dict[str, float]:
    stream = frames(int(rate * seconds) + 50_000)
    warm, paced_part = stream[:20_000], stream[20_000:]
    targets = engines()
    for symbol, frame in warm:  # warm the indicators up (and measure the unpaced throughput)
        await settle(targets[symbol].on_message(parse_message(frame)))
    started = time.perf_counter()
    for symbol, frame in paced_part[:30_000]:
        await settle(targets[symbol].on_message(parse_message(frame)))
    max_rate = 30_000 / (time.perf_counter() - started)
    process = psutil.Process()
    cpu_before, wall_before = process.cpu_times(), time.perf_counter()
    latencies = []
    begin = time.perf_counter()
    for i, (symbol, frame) in enumerate(paced_part[30_000:30_000 + int(rate * seconds)]):
        due = begin + i / rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        t0 = time.perf_counter()
        await settle(targets[symbol].on_message(parse_message(frame)))
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - wall_before
    cpu_after = process.cpu_times()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    ms = np.array(latencies) * 1000
    return {"symbols": len(SYMBOLS), "rate_msgs_per_s": rate, "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "max_rate_msgs_per_s": round(max_rate), "cpu_pct": round(100 * cpu / wall, 1),
            "rss_mb": round(process.memory_info().rss / 2**20, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000.0, help="total messages per second (all symbols)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.rate, args.seconds))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"symbols:             {result['symbols']} (12 chains of 66 options)")
        print(f"message rate:        {result['rate_msgs_per_s']:g}/s")
        print(f"tick-to-signal:      p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms")
        print(f"max sustainable:     {result['max_rate_msgs_per_s']}/s (one core)")
        print(f"CPU at that rate:    {result['cpu_pct']} %")
        print(f"RSS:                 {result['rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
