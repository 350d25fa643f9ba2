"""What the handlers and the analysis loop share, and the one reconcile they all call."""

from __future__ import annotations

import asyncio
import collections
import os
from dataclasses import dataclass, field

from trading_operator.drain import PositionsProbe
from trading_operator.executor import Executor
from trading_operator.planner import plan
from trading_operator.prometheus import MetricsSource

MAX_CONCURRENT_RECONCILES = int(os.environ.get("TRADEOPS_MAX_CONCURRENT_RECONCILES", "8"))


@dataclass
class OperatorContext:
    """What the handlers share, kept in kopf's memo."""

    executor: Executor
    probe: PositionsProbe
    metrics: MetricsSource
    locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # Bounded and first-come-first-served: a burst of new symbols is worked through in order instead of
    # all sharing the client's threads and all finishing last.
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_RECONCILES))


async def reconcile(context: OperatorContext, namespace: str, name: str) -> None:
    """Read, plan, act — one TradingSymbol at a time."""
    async with context.locks[(namespace, name)], context.slots:
        await reconcile_locked(context, namespace, name)


async def reconcile_locked(context: OperatorContext, namespace: str, name: str) -> None:
    """`reconcile` for a caller that already holds the TradingSymbol's lock."""
    ts = await context.executor.get_trading_symbol(namespace, name)
    if ts is None:
        return
    observed = await context.executor.observe(ts)
    await context.executor.execute(ts, plan(observed))
