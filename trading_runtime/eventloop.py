"""How the latency-bound processes (the runtime, the synthetic feed server) run: on uvloop, with the garbage
collector kept off the tick path.

uvloop (libuv) wakes and dispatches in C where asyncio's selector loop runs Python for every wake-up and every
callback; `call_soon_threadsafe` (the feed's clock thread) is an eventfd write instead of a self-pipe one.

The collector: once start-up is over, everything alive (modules, numpy/scipy/pydantic internals, the engine's
state) is moved out of the collector's reach (`gc.freeze`), so an old-generation pass only walks what was made
since, and the youngest generation is collected every `GEN0_THRESHOLD` net allocations instead of every 700 —
docs/scaling.md has the pause times before and after."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

GEN0_THRESHOLD = 20_000
"""Net container allocations between young-generation passes (CPython's default: 700)."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def settle_gc() -> None:
    """Call once start-up is done: collect what start-up left, freeze the survivors, collect young objects
    less often. Objects frozen here that later become garbage are never reclaimed: call it once, before the
    steady state, not in a loop."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
