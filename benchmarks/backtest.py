"""Backtest throughput, walk-forward on Dask and what it finds, on the seeded synthetic market.

    python benchmarks/backtest.py [--days 5] [--seed 1000] [--tick-seconds 1] [--json]

Figures (--json prints exactly these keys; the rest goes to stderr):
- days, ticks: sessions of synthetic data (whole 6.5 h NYSE sessions) and the market events in them;
- ticks_per_s: events per second of one backtest run of all the days in one worker process, from the first
  event handed to the engine to the computed result (the run's own clock); excludes generating the data,
  Dask scheduling and transfer;
- speedup_2_workers: wall time of the whole walk-forward (first task submitted → last result gathered) on a
  one-worker embedded cluster over the same on two workers; cluster start-up is excluded;
- folds, sharpe, max_drawdown, hit_rate, hit_rate_ci, baseline_hit_rate: the walk-forward's out-of-sample
  figures (3 train sessions, 1 test session, a 4-candidate grid chosen by Sharpe; baseline = persistence
  on the same called points);
- deterministic: the one-worker and two-worker walk-forwards gave byte-identical results.
Per-task overhead (stderr): an empty task's round trip, sequentially (latency) and 200 at once (throughput);
also the load average, since the speed-up is a ratio of wall times and suffers from other load.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

# Run as a script, this file would shadow the backtest package it measures: import the installed one.
sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

from backtest import jobs  # noqa: E402
from backtest.data import SyntheticSource, load  # noqa: E402
from backtest.distributed import Executor, executor  # noqa: E402
from backtest.params import parse_grid  # noqa: E402
from backtest.runner import RunSpec  # noqa: E402

GRID = ["strategy.entryScore=0.5,0.6", "strategy.minConfidence=0.55,0.65"]


def _nothing(x: int) -> int:
    return x


def overhead(pool: Executor) -> tuple[float, float]:
    """(median seconds of one empty task's round trip, seconds per task with 200 in flight)."""
    latencies = []
    for i in range(20):
        started = time.perf_counter()
        pool.map(_nothing, [(i,)])
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    pool.map(_nothing, [(i,) for i in range(200)])
    return statistics.median(latencies), (time.perf_counter() - started) / 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--tick-seconds", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    events = load(SyntheticSource(days=args.days, seed=args.seed, tick_seconds=args.tick_seconds),
                  "equity-options").events
    generated = time.perf_counter() - started
    spec, grid = RunSpec(), parse_grid(GRID)
    walls, results = {}, {}
    for workers in (1, 2):
        started = time.perf_counter()
        with executor(workers) as pool:
            cluster_start = time.perf_counter() - started
            if workers == 1:
                (single,) = jobs.run_all(pool, [events], spec)
            else:
                latency, per_task = overhead(pool)
            started = time.perf_counter()
            results[workers] = jobs.walk_forward(pool, events, spec, grid, train=3, test=1)
            walls[workers] = time.perf_counter() - started
    oos = results[2].out_of_sample
    figures = {
        "days": args.days,
        "ticks": len(events),
        "ticks_per_s": round(len(events) / single.wall_s),
        "speedup_2_workers": round(walls[1] / walls[2], 2),
        "folds": len(results[2].folds),
        "sharpe": None if oos.sharpe is None else round(oos.sharpe, 3),
        "max_drawdown": round(oos.max_drawdown, 6),
        "hit_rate": None if oos.hit_rate is None else round(oos.hit_rate, 4),
        "hit_rate_ci": None if oos.hit_rate_ci is None else [round(x, 4) for x in oos.hit_rate_ci],
        "baseline_hit_rate": None if oos.baseline_hit_rate is None else round(oos.baseline_hit_rate, 4),
        "deterministic": results[1].model_dump_json() == results[2].model_dump_json(),
    }
    notes = (f"data generation {generated:.1f} s; cluster start {cluster_start:.2f} s; walk-forward "
             f"{walls[1]:.1f} s on 1 worker, {walls[2]:.1f} s on 2; empty task round trip {latency * 1e3:.1f} ms, "
             f"{per_task * 1e3:.2f} ms per task with 200 in flight; out of sample: {oos.calls} calls, "
             f"verdict {oos.verdict} ({oos.reason}); Sharpe CI {oos.sharpe_ci}; load average at the end "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.json:
        print(json.dumps(figures))
        print(notes, file=sys.stderr)
        return 0
    for key, value in figures.items():
        print(f"{key:>18}: {value}")
    print(notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
