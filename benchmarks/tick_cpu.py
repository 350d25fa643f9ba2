"""CPU time of the tick path per frame, the option chain analysed in line against on its own thread
(trading_runtime/chain_analysis.py), on the same frames through one engine.

Start: a frame (JSON, as it arrives from the WebSocket) handed to the parser. End: the engine done with it.
Measured as the event loop thread's CPU time (`time.thread_time_ns`), not wall time, so the figures hold on a
loaded machine; what the figure cannot show is the wait for the GIL while the analysis thread holds it (at most
`SWITCH_INTERVAL_S`, 0.5 ms, per switch). The first 2 000 frames warm the indicators up and are not counted.

Frames are handed over back to back by default: the caches hold the tick path's code and data from the frame
before. `--gap-ms G` sleeps G ms before each tick's first frame (the underlying's quote), as the fleet's feed
paces a symbol (a tick every 20 ms at 50 ticks/s): what the same frames cost on a process that was idle in
between. `decided_*` are the frames a runtime decides on (the underlying's quotes and trades).

    python benchmarks/tick_cpu.py [--ticks 6000] [--runs 2] [--gap-ms 0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import numpy as np

from trading_runtime.chain_analysis import BackgroundAnalysis, ChainAnalysis, InlineAnalysis
from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import Quote, parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics

WARMUP_FRAMES = 2000


def frames(ticks: int) -> list[str]:
    """The synthetic feed's frames for one symbol: a quote, a trade 30 % of the time, two option quotes a tick."""
    simulator = MarketSimulator(["SPY"], seed=0, option_quotes_per_tick=2, trade_probability=0.3)
    out, seq = [json.dumps({**simulator.snapshot("SPY"), "seq": 0})], 0
    for _ in range(ticks):
        for message in simulator.tick("SPY", 0.2):
            seq += 1
            out.append(json.dumps({**message, "seq": seq}))
    return out


async def run(stream: list[str], analysis: ChainAnalysis, gap_s: float = 0.0) -> dict[str, Any]:
    config = RenderedConfig(symbol="SPY", market="equity-options", revision=1, runtime=RuntimeConfig())
    engine = SymbolEngine(config, True, RuntimeMetrics("SPY"), lambda table, row: None, seed=0, analysis=analysis)
    cpu, decided = [], []
    messages = [parse_message(frame) for frame in stream]  # classified before: the timed parse stays as cold
    for i, frame in enumerate(stream):
        underlying = getattr(messages[i], "instrument", None) == "SPY"
        if gap_s and underlying and isinstance(messages[i], Quote):
            await asyncio.sleep(gap_s)  # a tick's first frame: the process was idle since the tick before
        started = time.thread_time_ns()
        await settle(engine.on_message(parse_message(frame)))
        cpu.append(time.thread_time_ns() - started)
        if underlying and i >= WARMUP_FRAMES:
            decided.append(cpu[-1])
        await asyncio.sleep(0)  # as between two frames on the live loop: the analysis thread may take the GIL
    if isinstance(analysis, BackgroundAnalysis):
        analysis.idle()
    analysis.close()
    us, decided_us = np.array(cpu[WARMUP_FRAMES:]) / 1000, np.array(decided) / 1000
    return {"frames": int(us.size), "mean_us": round(float(us.mean()), 1),
            **{f"p{q}_us".replace(".", ""): round(float(np.percentile(us, q)), 1) for q in (50, 95, 99, 99.9)},
            "max_us": round(float(us.max()), 1), "frames_over_1ms": int((us > 1000).sum()),
            "decided_frames": int(decided_us.size),
            **{f"decided_p{q}_us": round(float(np.percentile(decided_us, q)), 1) for q in (50, 95, 99)},
            "analyses": analysis.stats.completed, "analyses_superseded": analysis.stats.superseded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=2, help="alternating in-line and background runs")
    parser.add_argument("--gap-ms", type=float, default=0.0,
                        help="idle time before each tick's first frame (0: back to back)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stream = frames(args.ticks)
    results = []
    for i in range(args.runs):
        for mode, analysis in (("inline", InlineAnalysis()), ("background", BackgroundAnalysis())):
            result = {"mode": mode, "run": i, "gap_ms": args.gap_ms,
                      **asyncio.run(run(stream, analysis, args.gap_ms / 1000)),
                      "load_avg_1m": round(os.getloadavg()[0], 1)}
            results.append(result)
            if not args.json:
                print(result)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
