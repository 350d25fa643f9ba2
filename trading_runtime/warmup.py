"""Warm-up from recent market-data history before going live, as trading systems do at start (Alpaca's or
Polygon's REST history: quotes and trades since T): fetch the symbol's last `warmup.historySeconds` of market
time from the history API (`trading_runtime/feeds/history.py`), replay it through the engine (`engine.warm`:
the same code that scores calls live, nothing traded or recorded), then hand over to the live feed, dropping
the live messages the history already held (`LiveGate`).

History that cannot be had (the API down, an answer that is not one) is retried with backoff, then the runtime
starts cold, as without a warm-up, with the reason logged and counted: the pod never fails for it. A replay
that takes longer than `maxReplaySeconds` is cut short (the rest is skipped, said so) so readiness is bounded."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from trading_runtime.config import Warmup
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import Message, backoff_delay
from trading_runtime.feeds.history import HISTORY_PATH, History, overlaps, parse_history
from trading_runtime.feeds.protocol import Heartbeat

log = logging.getLogger(__name__)

YIELD_EVERY = 200
"""Events replayed between two yields to the event loop: `/healthz` keeps answering during a long replay."""


@dataclass
class WarmupStats:
    replayed: int = 0
    """History events run through the engine."""
    malformed: int = 0
    """History rows that were not a quote or trade of the symbol in order (dropped)."""
    failed: int = 0
    """History events the engine raised on (skipped)."""
    skipped: int = 0
    """History events left out because the replay ran past `maxReplaySeconds`."""
    overlap_dropped: int = 0
    """Live messages the history had already replayed."""
    unavailable: int = 0
    """Warm-ups that started cold: no usable history."""
    fetch_failures: int = 0
    """History requests that failed (each attempt)."""
    seconds: float = float("nan")
    """Wall seconds the warm-up took (fetch and replay)."""


def history_url(warmup: Warmup, feed_url: str, symbol: str) -> str:
    """Where the history of `symbol` is asked: `warmup.url`, else the feed's host over HTTP."""
    base = warmup.url
    if base is None:
        feed = urllib.parse.urlsplit(feed_url)
        scheme = {"ws": "http", "wss": "https"}.get(feed.scheme, feed.scheme)
        base = urllib.parse.urlunsplit((scheme, feed.netloc, feed.path, "", ""))
    query = urllib.parse.urlencode({"seconds": f"{warmup.history_seconds:g}"})
    return f"{base.rstrip('/')}{HISTORY_PATH}{urllib.parse.quote(symbol)}?{query}"


Fetch = Callable[[str, float], Awaitable[Any]]


async def fetch_json(url: str, timeout_s: float) -> Any:
    """GET `url` and its JSON body; raises on anything but a 200 with JSON."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session, \
            session.get(url) as response:
        if response.status != 200:
            raise RuntimeError(f"answered {response.status}: {(await response.text())[:200]}")
        return await response.json(content_type=None)


async def fetch_history(url: str, symbol: str, warmup: Warmup, stats: WarmupStats, fetch: Fetch = fetch_json,
                        rng: random.Random | None = None) -> History | str:
    """The parsed history, or why there is none after `warmup.attempts` tries (full-jitter backoff between)."""
    rng = rng or random.Random()
    reason = "no attempt"
    for attempt in range(warmup.attempts):
        if attempt:
            await asyncio.sleep(backoff_delay(attempt, rng, base=0.2, cap=2.0))
        try:
            return parse_history(await fetch(url, warmup.timeout_seconds), symbol)
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError, ValueError) as exc:
            stats.fetch_failures += 1
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("history of %s not fetched from %s (attempt %d of %d): %s", symbol, url, attempt + 1,
                        warmup.attempts, reason)
    return reason


async def replay(engine: SymbolEngine, history: History, max_seconds: float, stats: WarmupStats,
                 clock: Callable[[], float] = time.monotonic) -> bool:
    """Run the history through the engine; False when it was cut short at `max_seconds`."""
    started = clock()
    engine.start_warmup()
    try:
        for index, event in enumerate(history.events):
            if index % YIELD_EVERY == 0 and index:
                if clock() - started > max_seconds:
                    stats.skipped += len(history.events) - index
                    return False
                await asyncio.sleep(0)
            try:
                engine.warm(event)
                stats.replayed += 1
            except Exception as exc:  # one bad event is not the whole warm-up's end
                stats.failed += 1
                log.debug("history event %s failed: %s", event.seq, exc)
        return True
    finally:
        engine.go_live()


async def warm_up(engine: SymbolEngine, warmup: Warmup, feed_url: str, stats: WarmupStats,
                  fetch: Fetch = fetch_json) -> LiveGate | None:
    """Fetch and replay the history; the gate that keeps the overlap out of the live feed, or None (cold)."""
    if warmup.history_seconds <= 0:
        return None
    started = time.monotonic()
    url = history_url(warmup, feed_url, engine.symbol)
    history = await fetch_history(url, engine.symbol, warmup, stats, fetch)
    stats.seconds = time.monotonic() - started
    if isinstance(history, str):
        stats.unavailable += 1
        log.error("no history of %s from %s: starting cold (%s)", engine.symbol, url, history)
        return None
    stats.malformed += history.malformed
    if history.malformed:
        log.warning("history of %s: %d malformed rows dropped", engine.symbol, history.malformed)
    if not history.events:
        stats.unavailable += 1
        log.error("history of %s from %s holds no events: starting cold", engine.symbol, url)
        return None
    whole = await replay(engine, history, warmup.max_replay_seconds, stats)
    stats.seconds = time.monotonic() - started
    last = history.events[stats.replayed + stats.failed - 1]
    summary = {"events": stats.replayed, "failed": stats.failed, "skipped": stats.skipped,
               "malformed": history.malformed, "seconds": round(stats.seconds, 3),
               "marketSeconds": round(last.ts - history.events[0].ts, 3),
               "retrospectiveBefore": engine.accuracy.retrospective_before}
    if whole:
        log.warning("warmed %s up from history: %s", engine.symbol, summary, extra={"warmup": summary})
    else:
        log.error("warm-up of %s cut short after %.1fs (maxReplaySeconds): %d history events skipped",
                  engine.symbol, warmup.max_replay_seconds, stats.skipped, extra={"warmup": summary})
    return LiveGate(last.seq, last.ts, stats)


@dataclass
class LiveGate:
    """In front of the engine on the live feed until the first message the history did not hold: drops the
    overlap (`overlaps`), then steps aside (`passed`)."""

    last_seq: int
    last_ts: float
    stats: WarmupStats
    passed: bool = False

    def admit(self, message: Message) -> bool:
        if self.passed or isinstance(message, Heartbeat):
            return True
        if overlaps(message.seq, message.ts, self.last_seq, self.last_ts):
            self.stats.overlap_dropped += 1
            return False
        self.passed = True
        return True
