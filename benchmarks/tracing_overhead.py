"""What tracing costs the tick path: the same paced workload with tracing off and on, and the cost of one span.

12 engines (the symbols and pre-generated JSON frames of benchmarks/runtime_latency.py) are fed at a fixed
total rate. A frame's latency runs from its scheduled time (not from when the loop got to it: a late loop
counts against the frame) to the end of `on_message`: parse + engine (indicators, signal, risk, paper orders,
rows handed to the write-behind queue) + the tracing hooks and, for kept ticks, creating their spans. Off and
on runs alternate (`--rounds`, each round on the same frames for both, the order swapped every round) so
that drift on a shared machine falls on both.

Tracing on means the runtime's own set-up at the given sampling (`--ratio`, default the runtime's 1 %; failed,
slow and warning ticks are always kept): spans go through the span queue to the OTLP/HTTP exporter, which
sends them from its thread to a receiver in another process (a sink that answers 200), so serialisation
and sending compete with the tick path for the interpreter as they do in the runtime.

`span_us_p50`: one span started and ended into the same queue and exporter, alone (microbenchmark).
`cpu_us_per_tick_*`: process CPU time per frame (all threads), steadier than latency on a shared machine.
`hooks_us_per_tick_p50` / `kept_tick_us_p50`: one tick's tracing hooks alone, not kept / kept (its spans
made); `overhead_pct_from_costs` weighs them by the sampling ratio against the CPU time of a tick without
tracing: the overhead when a busy machine's noise (see the interval) swamps the direct comparison.
Excluded: the feed's network hop, PostgreSQL (rows stop in the queue), Redis, the receiver's own work.

    python benchmarks/tracing_overhead.py [--rate 500] [--seconds 10] [--rounds 4] [--ratio 0.01] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from runtime_latency import SYMBOLS, frames

from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.storage.writer import WriteBehind
from trading_runtime.telemetry import DecisionTracer, Tracing, TracingSettings

SINK = """
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextmanager
def receiver() -> Iterator[str]:
    """An OTLP/HTTP endpoint in another process that takes everything."""
    process = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{process.stdout.readline().strip()}/v1/traces"
    finally:
        process.terminate()
        process.wait(10)


class Fleet:
    """12 engines whose ticks are traced by `tracing` (None: off), with frame times as the feed client gives."""

    def __init__(self, tracing: Tracing | None) -> None:
        queue = WriteBehind("", pathlib.Path(tempfile.mkdtemp()) / "spill.jsonl", capacity=10**9)
        self.frame_times = (0, 0)
        self.engines = {}
        for symbol in SYMBOLS:
            config = RenderedConfig(symbol=symbol, market="equity-options", revision=1, runtime=RuntimeConfig())
            tracer = DecisionTracer(tracing, symbol, 1, lambda: self.frame_times, lambda: queue.stats.accepted,
                                    queue.carry)
            self.engines[symbol] = SymbolEngine(config, True, RuntimeMetrics(symbol), queue.put, seed=0,
                                                tracer=tracer)

    async def handle(self, symbol: str, frame: str) -> None:
        received = time.perf_counter_ns()
        message = parse_message(frame)
        self.frame_times = (received, time.perf_counter_ns())
        await settle(self.engines[symbol].on_message(message))

    def kept(self) -> int:
        return sum(sum(e.trace.kept.values()) for e in self.engines.values())


async def paced(fleet: Fleet, stream: list[tuple[str, str]], rate: float) -> tuple[list[float], float]:
    """Latency of each frame from its scheduled time (s), and the process CPU seconds spent (all threads: the
    export thread's work counts)."""
    latencies = []
    cpu = time.process_time()
    begin = time.perf_counter()
    for i, (symbol, frame) in enumerate(stream):
        due = begin + i / rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        await fleet.handle(symbol, frame)
        latencies.append(time.perf_counter() - due)
    return latencies, time.process_time() - cpu


def span_cost(tracing: Tracing, count: int = 20_000) -> float:
    """Median µs to start and end one sampled span into the queue."""
    tracer, costs = tracing.tracer, []
    for _ in range(count):
        started = time.perf_counter_ns()
        tracer.start_span("tick", attributes={"tradeops.sampled_because": "benchmark"}).end()
        costs.append(time.perf_counter_ns() - started)
        if len(tracing.queue.queue) > tracing.queue.max_queue // 2:
            tracing.queue.force_flush(10_000)  # measure the span, not drops
    return float(np.percentile(costs, 50)) / 1000


def hook_costs(tracing: Tracing, message: object, count: int = 20_000) -> tuple[float, float]:
    """Median µs of one tick's hooks (begin, four marks, an order, finish) when the tick is not kept, and when
    it is (its spans created): the cost tracing adds per tick, measured alone."""
    decisions = DecisionTracer(tracing, "SPY", 1)
    costs: dict[bool, list[int]] = {False: [], True: []}
    for i in range(count):
        keep = i % 2 == 1
        started = time.perf_counter_ns()
        decisions.begin(message)
        for stage in ("indicators", "signal", "risk"):
            decisions.mark(stage)
        now = decisions.now()
        decisions.order(now, now, "SPY-20260131-C-500", 1.0, 2.5)
        decisions.mark("drawdown")
        if keep:
            decisions.log_ids()  # keeps the tick whatever the ratio
        decisions.finish(None, 1)
        costs[keep].append(time.perf_counter_ns() - started)
        if len(tracing.queue.queue) > tracing.queue.max_queue // 2:
            tracing.queue.force_flush(10_000)
    return float(np.percentile(costs[False], 50)) / 1000, float(np.percentile(costs[True], 50)) / 1000


def bootstrap_ci(off: np.ndarray, on: np.ndarray, resamples: int = 200) -> list[float]:
    """95 % bootstrap interval of the p95 overhead (%): the sampling noise of the two percentiles (not the
    machine's load changing between rounds)."""
    rng = np.random.default_rng(0)
    ratios = [100 * (np.percentile(rng.choice(on, on.size), 95) / np.percentile(rng.choice(off, off.size), 95) - 1)
              for _ in range(resamples)]
    return [round(float(np.percentile(ratios, 2.5)), 1), round(float(np.percentile(ratios, 97.5)), 1)]


async def run(rate: float, seconds: float, rounds: int, ratio: float) -> dict[str, Any]:
    per_round = int(rate * seconds)
    stream = frames(20_000 + rounds * per_round)
    with receiver() as endpoint:
        settings = TracingSettings(endpoint=endpoint, sample_ratio=ratio)
        tracing = Tracing(settings, OTLPSpanExporter(endpoint=endpoint, timeout=5), {"service.name": "benchmark"})
        fleets = {"off": Fleet(None), "on": Fleet(tracing)}
        for fleet in fleets.values():  # warm the indicators up
            for symbol, frame in stream[:20_000]:
                await fleet.handle(symbol, frame)
        warm_kept = fleets["on"].kept()
        latencies: dict[str, list[float]] = {"off": [], "on": []}
        cpu = {"off": 0.0, "on": 0.0}
        for round_ in range(rounds):  # both fleets see the same frames: the same work but for tracing
            segment = stream[20_000 + round_ * per_round:20_000 + (round_ + 1) * per_round]
            for name in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                measured, seconds_cpu = await paced(fleets[name], segment, rate)
                latencies[name] += measured
                cpu[name] += seconds_cpu
        tracing.queue.force_flush(30_000)
        kept = fleets["on"].kept() - warm_kept
        dropped, exported = tracing.queue.dropped, tracing.queue.exported
        span_us = span_cost(tracing)
        quiet_us, kept_us = hook_costs(tracing, parse_message(stream[-1][1]))
        tracing.shutdown()
    off, on = (np.array(latencies[n]) * 1000 for n in ("off", "on"))
    p95_off, p95_on = float(np.percentile(off, 95)), float(np.percentile(on, 95))
    return {
        "rate_msgs_per_s": rate, "ticks_per_config": rounds * per_round, "sample_ratio": ratio,
        "span_us_p50": round(span_us, 2),
        "tick_p50_ms_off": round(float(np.percentile(off, 50)), 4),
        "tick_p50_ms_on": round(float(np.percentile(on, 50)), 4),
        "tick_p95_ms_off": round(p95_off, 4), "tick_p95_ms_on": round(p95_on, 4),
        "tick_mean_ms_off": round(float(off.mean()), 4), "tick_mean_ms_on": round(float(on.mean()), 4),
        "overhead_pct": round(100 * (p95_on - p95_off) / p95_off, 1),
        "overhead_pct_ci95": bootstrap_ci(off, on),
        "cpu_us_per_tick_off": round(1e6 * cpu["off"] / (rounds * per_round), 1),
        "cpu_us_per_tick_on": round(1e6 * cpu["on"] / (rounds * per_round), 1),
        "hooks_us_per_tick_p50": round(quiet_us, 2), "kept_tick_us_p50": round(kept_us, 2),
        # What tracing adds per tick, from the costs measured alone, against the tick's own CPU time.
        "overhead_pct_from_costs": round(100 * (quiet_us + ratio * (kept_us - quiet_us))
                                         / (1e6 * cpu["off"] / (rounds * per_round)), 2),
        "ticks_kept_pct": round(100 * kept / (rounds * per_round), 2),
        "spans_exported": exported, "spans_dropped": dropped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0, help="total messages per second (all symbols)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per configuration and round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating off/on rounds")
    parser.add_argument("--ratio", type=float, default=TracingSettings(endpoint=None).sample_ratio,
                        help="sampling ratio of ordinary ticks (default: the runtime's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.rate, args.seconds, args.rounds, args.ratio))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"rate {result['rate_msgs_per_s']:g}/s, {result['ticks_per_config']} ticks per configuration, "
          f"sampling {result['sample_ratio']:g} ({result['ticks_kept_pct']} % of ticks kept)")
    print(f"frame latency off:  p50 {result['tick_p50_ms_off']} ms, p95 {result['tick_p95_ms_off']} ms, "
          f"mean {result['tick_mean_ms_off']} ms")
    print(f"frame latency on:   p50 {result['tick_p50_ms_on']} ms, p95 {result['tick_p95_ms_on']} ms, "
          f"mean {result['tick_mean_ms_on']} ms")
    low, high = result["overhead_pct_ci95"]
    print(f"p95 overhead:       {result['overhead_pct']} % (95 % bootstrap interval {low} … {high} %)")
    print(f"CPU per tick:       off {result['cpu_us_per_tick_off']} µs, on {result['cpu_us_per_tick_on']} µs")
    print(f"one span:           {result['span_us_p50']} µs (p50)")
    print(f"hooks per tick:     {result['hooks_us_per_tick_p50']} µs not kept, {result['kept_tick_us_p50']} µs kept "
          f"(p50) → {result['overhead_pct_from_costs']} % of a tick's CPU at this sampling")
    print(f"spans of the traced ticks: exported {result['spans_exported']}, dropped {result['spans_dropped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
