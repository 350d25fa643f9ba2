"""How the paired comparison of a shadow run (`signal-calls-vs-stable`) judges candidates that are wrong on a
fraction of their calls, offline: the unchanged engine for stable and for each candidate, fed the same ticks of
the synthetic market with its seeded order-flow edge, their `/decisions` paired and judged as the operator does
(`pairing.pair`, `analysis.judge_paired` with the shipped metric and the default confidence) after every
simulated minute.

A candidate with `accuracyDegradation` f flips a share f of its calls; where stable is right on a share p of
them, it is worse by about f·(2p − 1): with p ≈ 0.87 here, 0.03 → ~2 points (within the 5-point margin: must
never fail), 0.1 → ~7 (just past it), 0.3 → ~22, 1.0 → all of them. Start: the first tick; each row is the
verdict on everything scored up to that minute of market time (10 ticks a second, as the devstack's feed).

    python benchmarks/paired_calls.py [--minutes 20] [--seed 21] [--flips 0.03,0.1,0.3] [--horizon 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from policies.loader import default_policies
from trading_operator.analysis import PairedRequest, Query, Scope, judge_paired
from trading_operator.pairing import pair, parse_calls
from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics

METRIC = "signal-calls-vs-stable"
TICK_SECONDS = 0.1


def engine(horizon: int, flip: float, seed: int) -> SymbolEngine:
    runtime = RuntimeConfig.model_validate({"strategy": {"horizonSeconds": horizon},
                                            "faultInjection": {"accuracyDegradation": flip}})
    config = RenderedConfig(symbol="SPY", market="equity-options", revision=1, runtime=runtime)
    return SymbolEngine(config, True, RuntimeMetrics("SPY"), lambda table, row: None, seed=seed)


async def run(minutes: int, seed: int, flips: list[float], horizon: int, edge: float) -> list[dict[str, Any]]:
    slo = next(s for s in default_policies().slo["default"].slos if s.name == METRIC)
    query = Query(METRIC, "", slo.analysis, paired=PairedRequest(Scope("b", "SPY", 2), Scope("b", "SPY", 1), ""))
    confidence = default_policies().analysis["default"].confidence
    market = MarketSimulator(["SPY"], seed=seed, edge=edge)
    stable, candidates = engine(horizon, 0.0, 0), [engine(horizon, f, 1 + i) for i, f in enumerate(flips)]
    seq = 0
    snapshot = parse_message(json.dumps({**market.snapshot("SPY"), "seq": seq}))
    for e in (stable, *candidates):
        await settle(e.on_message(snapshot))
    rows = []
    for minute in range(1, minutes + 1):
        for _ in range(round(60 / TICK_SECONDS)):
            for raw in market.tick("SPY", TICK_SECONDS):
                seq += 1
                message = parse_message(json.dumps({**raw, "seq": seq}))
                for e in (stable, *candidates):
                    await settle(e.on_message(message))
        calls = parse_calls(stable.decisions_report())
        for flip, candidate in zip(flips, candidates, strict=True):
            counts = pair(parse_calls(candidate.decisions_report()), calls)
            measured = judge_paired(query, counts, confidence, f"minute {minute}")
            rows.append({"minute": minute, "flip": flip, "phase": measured.phase.value, "pairs": counts.pairs,
                         "discordant": counts.discordant, "worse_by": measured.value, "low": measured.low,
                         "high": measured.high})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--flips", default="0.03,0.1,0.3", help="accuracyDegradation of each candidate")
    parser.add_argument("--horizon", type=int, default=3, help="strategy.horizonSeconds")
    parser.add_argument("--edge", type=float, default=1.0, help="the market's seeded order-flow edge")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the engines' order rejections and halts are not what is measured
    flips = [float(f) for f in args.flips.split(",")]
    rows = asyncio.run(run(args.minutes, args.seed, flips, args.horizon, args.edge))
    if args.json:
        print(json.dumps({"seed": args.seed, "horizon_s": args.horizon, "edge": args.edge, "rows": rows}))
        return 0
    for row in rows:
        interval = f"[{row['low']:.3f}, {row['high']:.3f}]" if row["low"] is not None else ""
        print(f"min {row['minute']:3d}  flip {row['flip']:<5}  {row['phase']:<12}  {row['discordant']:3d} of "
              f"{row['pairs']:4d} discordant  {interval}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
