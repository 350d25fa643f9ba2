"""The event loop of the latency-bound processes (the runtime, the synthetic feed server): uvloop.

uvloop (libuv) waits, wakes and dispatches in C where asyncio's selector loop runs Python for every wake-up
and every callback, and its transports write and read in C; docs/scaling.md has the measurements."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
