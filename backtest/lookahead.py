"""The no-look-ahead check: a run on the data up to a cut must decide, fill and mark exactly as the run on
all the data did before that cut. A strategy that uses anything from after an event's time (the next bar's
close, a later quote) decides differently once the later data is removed, and the check names where."""

from __future__ import annotations

from backtest.runner import EngineFactory, RunResult, RunSpec, live_engine, run
from trading_runtime.feeds.events import MarketEvents


def divergence(full: RunResult, prefix: RunResult) -> list[str]:
    """Where `prefix` (a run on a prefix of `full`'s data) differs from `full` before the prefix's last event."""
    end = prefix.data.end
    found = []
    fills = [f for f in full.ledger if f.filled_at < end]
    prefix_fills = [f for f in prefix.ledger if f.filled_at < end]
    for mine, theirs in zip(fills, prefix_fills, strict=False):
        if mine != theirs:
            found.append(f"fill {mine.order_id}: {mine} with all the data, {theirs} without the later data")
            break
    if len(fills) != len(prefix_fills):
        found.append(f"{len(fills)} fills before the cut with all the data, {len(prefix_fills)} without the later data")
    marks = [e for e in full.equity if e[0] < end]
    prefix_marks = [e for e in prefix.equity if e[0] < end]
    if marks != prefix_marks:
        at = next((i for i, (a, b) in enumerate(zip(marks, prefix_marks, strict=False)) if a != b),
                  min(len(marks), len(prefix_marks)))
        found.append(f"equity differs before the cut from sample {at} on")
    return found


def check(events: MarketEvents, spec: RunSpec, cuts: list[float],
          engine_factory: EngineFactory = live_engine) -> list[str]:
    """`divergence` for a run cut at each of `cuts` (exchange times) against the run on all of `events`."""
    full = run(events, spec, engine_factory)
    return [f"cut at {cut:.0f}: {problem}" for cut in cuts
            for problem in divergence(full, run(events.between(events.start, cut), spec, engine_factory))]
