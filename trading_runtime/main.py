"""The trading runtime process: `python -m trading_runtime --config runtime.yaml --switches switches.yaml`
(`--replay FILE --speed X` takes a recorded file as the feed instead of the WebSocket, then exits).

Wires the feed client, the engine, PostgreSQL (write-behind), Redis, config hot reload and the HTTP
surface together; SIGTERM stops the feed, waits for orders still working at the broker, flushes every buffer
and exits 0. With a broker API in the config (`broker`), orders and market-data snapshots go through the
client pool (trading_runtime/gateway/); without one, orders fill on paper in the process. Logs are ECS JSON lines
(trading_runtime/logs.py); traces go to an OTLP endpoint when one is set (trading_runtime/telemetry.py).
A config that cannot be used (invalid, or valid field by field but unworkable together) exits 2 with the
reason on stderr. The fault injection of the config's `faultInjection` that acts on the process (crash,
never ready, memory ballast) is wired here; the rest is in the engine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import math
import os
import pathlib
import signal
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from trading_runtime.chain_analysis import BackgroundAnalysis
from trading_runtime.clock import EventClock
from trading_runtime.config import RenderedConfig, Switches
from trading_runtime.config_watch import ConfigError, WatchedFile, load_runtime_config, load_switches, watch
from trading_runtime.election import API_URL_ENV, LEASE_NAME_ENV, ApiAccess, LeaderElection, LeaseApi
from trading_runtime.engine import SymbolEngine
from trading_runtime.execution.fencing import fence_wait, order_expiry
from trading_runtime.execution.http_broker import HttpBroker
from trading_runtime.execution.paper import Position
from trading_runtime.execution.reconcile import Booked, Difference, Replayed, is_order_id, owns, replay
from trading_runtime.feeds.client import FeedClient, Message, settle
from trading_runtime.feeds.recorded import LoadOptions, Recorded, RecordedDataError, load_recorded
from trading_runtime.feeds.replay import ReplayFeed
from trading_runtime.gateway.market_api import MarketApi
from trading_runtime.gateway.pool import Bucket, ClientPool, local_bucket
from trading_runtime.gateway.settings import ApiKey, MissingKeyError, pool_settings
from trading_runtime.health import Check, HealthServer
from trading_runtime.leadership import LeaseTimings
from trading_runtime.logs import LogContext, configure, flush
from trading_runtime.messaging import RISK_STREAM, SIGNALS_STREAM, RedisBus
from trading_runtime.metrics import CounterSource, RuntimeMetrics
from trading_runtime.portfolio.caps import CapState, effective_cap
from trading_runtime.portfolio.events import (
    CAPS_KEY,
    FILLS_STREAM,
    POSITIONS_STREAM,
    FillEvent,
    PositionEvent,
    SymbolCap,
)
from trading_runtime.storage.book import booked_orders, load_book
from trading_runtime.storage.schema import migrate
from trading_runtime.storage.writer import WriteBehind, WriteBehindFullError
from trading_runtime.telemetry import DecisionTracer, FlushTracer, TelemetryError, Tracing, TracingSettings
from trading_runtime.warmup import LiveGate, WarmupStats, warm_up

log = logging.getLogger("trading_runtime")
T = TypeVar("T")


class Runtime:
    def __init__(self, args: argparse.Namespace, config: RenderedConfig, switches: Switches,
                 tracing: Tracing | None = None, log_context: LogContext | None = None,
                 replay: Recorded | None = None) -> None:
        self.args = args
        self.metrics = RuntimeMetrics(config.symbol)
        self.tracing = tracing
        self.log_context = log_context or LogContext()
        self.writer = WriteBehind(args.database_url, pathlib.Path(args.spill_path),
                                  capacity=config.runtime.parameters.queue_capacity,
                                  batch_size=config.runtime.parameters.batch_size,
                                  flush_interval=config.runtime.parameters.flush_interval_ms / 1000,
                                  on_batch=FlushTracer(tracing) if tracing else None, symbol=config.symbol,
                                  on_fenced=self._fenced) \
            if args.database_url else None
        self.bus = RedisBus(args.redis_url) if args.redis_url else None
        # Tracing: each tick's frame times come from the feed client; kept decisions ride with their rows.
        writer = self.writer
        tracer = DecisionTracer(tracing, config.symbol, config.revision, self._frame_times if replay is None else None,
                                (lambda: writer.stats.accepted) if writer else None, writer.carry if writer else None)
        self.log_context.tick_ids = tracer.log_ids
        self.feed: FeedClient | ReplayFeed
        self._tick_processing = self.metrics.tick_processing.labels(config.symbol)
        # Line-buffered: a reader (the fleet benchmark) follows it while the runtime runs.
        self.latency_log = open(args.latency_log, "a", buffering=1) if args.latency_log else None  # noqa: SIM115
        # The broker's API (orders, snapshots) through the client pool; its metrics are the runtime's.
        broker_api = config.runtime.broker if replay is None else None
        self.broker_api = broker_api
        self.pool = ClientPool(pool_settings(broker_api, os.environ), self.metrics.registry,
                               buckets=self._shared_buckets()) if broker_api is not None else None
        self.api = MarketApi(self.pool) if self.pool is not None else None
        self.broker = HttpBroker(api=self.api, order_timeout=broker_api.order_timeout_seconds) \
            if broker_api is not None and broker_api.orders else None
        self.snapshots = self.api if broker_api is not None and broker_api.snapshots else None
        self.snapshot_wait = broker_api.timeout_seconds if broker_api is not None else 2.0
        if replay is None:
            # The chain's analysis on a thread of its own: frames never wait behind an IV solve.
            self.engine = SymbolEngine(config, switches.trading_enabled, self.metrics, self.sink, tracer=tracer,
                                       origin=self._frame_origin, decided=self._decided,
                                       analysis=BackgroundAnalysis(), broker=self.broker)
            if self.broker is not None:
                self.broker.on_result = self.engine.order_result
            self.feed = FeedClient(args.feed_url, [config.symbol], self.engine.on_message,
                                   snapshots=self.snapshots.snapshot if self.snapshots is not None else None,
                                   snapshot_timeout=self.snapshot_wait)
        else:  # recorded events drive the engine's clock
            clock = EventClock()
            self.engine = SymbolEngine(config, switches.trading_enabled, self.metrics, self.sink, clock=clock,
                                       tracer=tracer)
            self.feed = ReplayFeed(replay.events, self.engine.on_message, clock, args.speed)
        self.files: list[Any] = [
            WatchedFile(pathlib.Path(args.config), RenderedConfig, self._apply_config, value=config,
                        problems=unworkable),
            WatchedFile(pathlib.Path(args.switches), Switches,
                        lambda s: self.engine.set_trading_enabled(s.trading_enabled), value=switches),
        ]
        for watched in self.files:
            watched.check()  # record the digests of the files as loaded
        self.ballast = ballast(config.runtime.fault_injection.memory_ballast_mb)
        self._background: set[asyncio.Task[Any]] = set()
        self._version = 0
        self._cap_state = CapState.ABSENT
        self._order_instruments: dict[str, str] = {}
        self._lease_read_timeout = 0.0
        self.election = self._election(args)
        if self.broker is not None and broker_api is not None and broker_api.order_expiry:
            self.broker.expiry = self._order_expiry
        self._leading = self.election is None  # without a Lease, this process is the symbol's only trader
        self._promotion: asyncio.Task[None] | None = None
        self._migrated = False
        self.warmup = WarmupStats()
        self._gate: LiveGate | None = None
        # Orders through a broker's API: even alone, trade only once the book agrees with the broker (`run`).
        self.engine.active = self._leading and self.broker is None
        self.metrics.leader.labels(config.symbol).set(1 if self._leading else 0)
        self._export_counters()

    def _shared_buckets(self) -> Callable[[ApiKey], Bucket]:
        """With Redis, each key's limit is held across every process that uses it (gateway/shared_limit.py);
        without it, by this process alone (a runtime started by hand: the key's rate is then its own)."""
        if self.bus is None:
            log.warning("no Redis: the broker keys' rate limits hold for this process alone")
            return local_bucket
        from trading_runtime.gateway.shared_limit import SharedBucket  # loads redis: only where the bus has

        redis = self.bus.redis

        def shared(key: ApiKey) -> Bucket:
            return SharedBucket(redis, key, lambda: self.pool.metrics.rate_store_errors.inc() if self.pool else None)

        return shared

    def _election(self, args: argparse.Namespace) -> LeaderElection | None:
        """The Lease this process competes for (`--lease-name`, set by the operator's Deployment), or None:
        no name, or no API server to hold it on (outside a cluster, without the devstack's URL)."""
        if not getattr(args, "lease_name", None):
            return None
        access = ApiAccess.from_environment()
        if access is None:
            log.warning("no Kubernetes API (no in-cluster ServiceAccount, no %s): lease %s not taken, this process "
                        "trades alone", API_URL_ENV, args.lease_name)
            return None
        timings = LeaseTimings(args.lease_duration, args.renew_deadline, args.retry_period)
        timeout = min(2.0, timings.renew_deadline / 2)
        # A standby's read is answered within the request's timeout and within its round's budget (election.py).
        self._lease_read_timeout = min(timeout, 2 * timings.retry_period)
        return LeaderElection(LeaseApi(access, timeout=timeout), args.lease_name, args.identity, timings,
                              self._on_leadership)

    def _order_expiry(self) -> float | None:
        """The expiry of an order attempt sent now (execution/fencing.py): the Lease's renew deadline, or the
        call's deadline alone for a runtime without a Lease; None once the deadline has passed."""
        assert self.broker_api is not None
        now = time.monotonic()
        deadline = math.inf if self.election is None else self.election.elector.deadline(now)
        return order_expiry(now, time.time(), deadline, self.broker_api.deadline_seconds)

    def _fenced(self, table: str, rows: int) -> None:
        self.metrics.rows_fenced.labels(self.engine.symbol, table).inc(rows)

    def _on_leadership(self, leading: bool) -> None:
        """Leadership changed. Losing it stops orders at once; gaining it loads the book first."""
        symbol = self.engine.symbol
        self._leading = leading
        self.metrics.leader_transitions.labels(symbol, "leader" if leading else "standby").inc()
        if not leading:
            if self._promotion is not None:
                self._promotion.cancel()
            self.engine.demote()
            self.metrics.leader.labels(symbol).set(0)
            log.warning("lost the lease of %s: standing by (no orders)", symbol)
            return
        log.warning("took the lease of %s: loading the book before trading", symbol)
        if self.writer is not None:  # until this term's load takes its epoch, rows are market data: unfenced
            self.writer.set_epoch(None)
        self._promotion = asyncio.ensure_future(self._promote())

    async def _promote(self) -> None:
        """Load the book (PostgreSQL); with orders going to a broker's API, reconcile it against the broker (the
        truth for what it filled: a killed leader's unflushed fills are lost to the book, not to the broker) —
        once every order the old leader may have sent has expired, book the broker's fills the book does not
        hold, then check the positions — and only then trade. Each read is retried with backoff while its server
        does not answer."""
        symbol, database = self.engine.symbol, self.args.database_url
        fenced = self.election is not None
        book = await self._until_read(lambda: load_book(database, symbol, fenced), "the book") if database else None
        if not self._leading:
            return
        if book is not None and self.writer is not None and book.epoch is not None:
            self.writer.set_epoch(book.epoch)  # this term's rows: refused once a later term loads the book
        if book is None:
            log.warning("no database: %s starts from %s", symbol,
                        "the broker's fills and positions" if self.broker is not None else "a flat book")
        positions, fees = (book.positions, book.fees) if book else ({}, 0.0)
        adopted: list[Difference] = []
        replayed: list[Booked] = []
        if self.api is not None and self.broker is not None:
            await self._fence()
            plan = await self._until_read(lambda: self._replay(positions), "the broker's fills and positions",
                                          halt="reconcile")
            if plan is None:
                return
            positions, fees, adopted, replayed = plan.positions, fees + plan.fees, plan.differences, plan.booked
        self.engine.promote(positions, fees, adopted, replayed)
        self.metrics.leader.labels(symbol).set(1)
        taken = {i: p.quantity for i, p in positions.items() if p.quantity}
        log.warning("leading %s: took over %s", symbol, json.dumps(taken), extra={"symbol": symbol, "positions": taken})

    async def _fence(self) -> None:
        """A new leader waits until every order the old one may have sent has expired at the broker (the bound
        follows from the lease timings and the clock-skew allowance: execution/fencing.py)."""
        api = self.broker_api
        if self.election is None or api is None:
            return  # alone: no other holder to fence out
        if not api.order_expiry:
            log.warning("broker.orderExpiry is off: an order the old leader of %s sent may still reach the broker "
                        "after its fills are read", self.engine.symbol)
            return
        wait = fence_wait(self.election.timings, api.max_clock_skew_seconds, self._lease_read_timeout)
        if wait > 0:
            log.info("waiting %.2fs for the old leader's orders to expire before reading the broker", wait)
            await asyncio.sleep(wait)

    async def _replay(self, book: dict[str, Position]) -> Replayed:
        """The broker's fills of this symbol over `fillLookbackSeconds` and its positions, against `book`."""
        assert self.api is not None
        assert self.broker_api is not None
        symbol, database = self.engine.symbol, self.args.database_url
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=self.broker_api.fill_lookback_seconds)
        # `owns` again: a broker may list more than the symbol asked for. Only UUIDs can be the book's order ids.
        fills = [f for f in await self.api.fills(since, symbol) if owns(symbol, f.instrument)]
        booked = await booked_orders(database, [f.order_id for f in fills if is_order_id(f.order_id)]) \
            if database else set()
        held = await self.api.positions()
        return replay(book, booked, fills, {i: p for i, p in held.items() if owns(symbol, i)},
                      dict(self.broker.multipliers) if self.broker is not None else {})

    async def _until_read(self, read: Callable[[], Awaitable[T]], what: str, halt: str | None = None) -> T | None:
        """`read()`, retried with backoff (0.2 s doubling to 2 s) while it fails and this process still leads,
        trading halted meanwhile with `halt` as the reason. None when leadership went first."""
        delay, value = 0.2, None
        while self._leading:
            try:
                value = await read()
                break
            except Exception as exc:
                log.warning("cannot read %s of %s yet (%s): not trading", what, self.engine.symbol, exc)
                if halt is not None and not self.engine.state.halted.get(halt):
                    log.error("trading on %s halted until %s can be read", self.engine.symbol, what)
                    self.engine._halt(halt, True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        if halt is not None and self.engine.state.halted.get(halt):
            self.engine._halt(halt, False)
        return value

    def _frame_times(self) -> tuple[int, int]:
        """When the feed client received and parsed the frame in hand (the live feed only)."""
        assert isinstance(self.feed, FeedClient)
        return self.feed.frame_times

    def _frame_origin(self) -> int:
        assert isinstance(self.feed, FeedClient)
        return self.feed.frame_origin

    def _decided(self, message: Message, latency: float) -> None:
        """`latency` is the whole span from the feed's schedule (the SLO histogram has it already); the runtime's
        share, from the frame's arrival, goes to `tradeops_tick_processing_seconds`. With `--latency-log`, one
        line per decision on a stamped frame, `symbol seq sent seconds share` (the fleet benchmark's record)."""
        assert isinstance(self.feed, FeedClient)
        share = max(0.0, latency - self.feed.frame_wait_ns / 1e9)
        self._tick_processing.observe(share)
        sent = getattr(message, "sent", None)
        if sent is not None and self.latency_log is not None:
            self.latency_log.write(f"{self.engine.symbol} {getattr(message, 'seq', -1)} {sent} {latency:.7f} "
                                   f"{share:.7f}\n")

    def _export_counters(self) -> None:
        feed, files, warmup = self.feed.stats, self.files, self.warmup
        counters = [
            CounterSource("feed_messages", "In-order market messages", lambda: feed.messages),
            CounterSource("feed_malformed_messages", "Malformed frames dropped", lambda: feed.malformed),
            CounterSource("feed_reconnects", "Feed reconnections", lambda: feed.reconnects),
            CounterSource("feed_gaps", "Sequence gaps detected", lambda: feed.gaps),
            CounterSource("feed_resyncs", "Snapshot resyncs", lambda: feed.resyncs),
            CounterSource("feed_api_snapshots", "Resync snapshots taken from the broker's API",
                          lambda: feed.api_snapshots),
            CounterSource("feed_api_snapshot_failures", "Resync snapshots the broker's API did not give (the feed did)",
                          lambda: feed.api_snapshot_failures),
            CounterSource("warmup_events_replayed", "History events replayed through the engine at start",
                          lambda: warmup.replayed),
            CounterSource("warmup_events_skipped", "History events left out: the replay ran past maxReplaySeconds",
                          lambda: warmup.skipped),
            CounterSource("warmup_rows_malformed", "History rows that were not a quote or trade in order (dropped)",
                          lambda: warmup.malformed),
            CounterSource("warmup_overlap_dropped", "Live messages the replayed history already held (dropped)",
                          lambda: warmup.overlap_dropped),
            CounterSource("warmup_unavailable", "Starts with warm-up on that found no usable history (cold)",
                          lambda: warmup.unavailable),
            CounterSource("warmup_fetch_failures", "History requests that failed", lambda: warmup.fetch_failures),
            CounterSource("config_reloads", "Config files applied", lambda: sum(f.reloads for f in files)),
            CounterSource("config_rejected", "Config files rejected", lambda: sum(f.rejected for f in files)),
        ]
        # The accuracy tracker's counts, so a hit rate can be judged with its interval over any window.
        accuracy = self.engine.accuracy
        counters += [
            CounterSource("signal_scored", "Horizons scored (moves larger than the spread)",
                          lambda: accuracy.report.scored),
            CounterSource("signal_calls", "Scored horizons the strategy called a direction on",
                          lambda: accuracy.report.calls),
            CounterSource("signal_hits", "Calls whose direction was right", lambda: accuracy.report.hits),
            CounterSource("signal_persistence_hits", "Called horizons the persistence baseline got right",
                          lambda: accuracy.report.persistence_hits),
            CounterSource("signal_majority_hits", "Called horizons the majority baseline got right",
                          lambda: accuracy.report.majority_hits),
        ]
        analysis = self.engine.analysis.stats
        counters += [
            CounterSource("chain_analyses", "Cross-strike analyses of the option chain finished",
                          lambda: analysis.completed),
            CounterSource("chain_analyses_superseded", "Chain samples replaced by a newer one before their analysis",
                          lambda: analysis.superseded),
            CounterSource("chain_analyses_failed", "Chain analyses that raised (the previous features stay)",
                          lambda: analysis.failed),
        ]
        gauges = [CounterSource("chain_analysis_seconds", "Duration of the latest chain analysis (NaN: none yet)",
                                lambda: analysis.last_seconds)]
        if self.writer is not None:
            stats, writer = self.writer.stats, self.writer
            counters += [
                CounterSource("db_rows_written", "Rows copied to PostgreSQL", lambda: stats.written),
                CounterSource("db_batches_retried", "Batches retried after an outage", lambda: stats.retried_batches),
                CounterSource("db_rows_spilled", "Rows spilled to disk", lambda: stats.spilled),
                CounterSource("db_rows_rejected", "Rows refused: queue and spill full", lambda: stats.rejected),
                CounterSource("db_rows_dead_lettered", "Rows the database refused, kept in the dead-letter file",
                              lambda: stats.dead_lettered),
                CounterSource("db_rows_duplicate", "Rows with an id already written (a replayed decision), kept once",
                              lambda: stats.duplicates),
            ]
            gauges.append(CounterSource("write_queue_rows", "Rows waiting to be written", lambda: writer.depth))
        if self.tracing is not None:
            queue, decisions = self.tracing.queue, self.engine.trace
            counters += [
                CounterSource("trace_ticks_kept", "Ticks whose trace was kept (ratio, slow, failed, logged)",
                              lambda: sum(decisions.kept.values())),
                CounterSource("trace_spans_exported", "Spans sent to the OTLP endpoint", lambda: queue.exported),
                CounterSource("trace_spans_dropped", "Spans dropped: the export queue was full", lambda: queue.dropped),
                CounterSource("trace_spans_failed", "Spans the OTLP endpoint did not take", lambda: queue.failed),
            ]
            if self.writer is not None:
                carried = self.writer.stats
                counters.append(CounterSource("trace_links_dropped", "Kept decisions no flush span could link to",
                                              lambda: carried.carried_dropped))
        self.metrics.export(counters, gauges)

    def _apply_config(self, config: RenderedConfig) -> None:
        """A runtime.yaml changed in place (never by the operator: its config ConfigMaps are immutable): the
        engine's settings from the next tick, the writer's batch size, flush interval and queue bound from its
        next flush."""
        self.engine.apply_config(config)
        if self.writer is not None:
            parameters = config.runtime.parameters
            self.writer.reconfigure(parameters.batch_size, parameters.flush_interval_ms / 1000,
                                    parameters.queue_capacity)
        self.log_context.revision = config.revision
        self.metrics.set_config(self.files[0].config_hash, config.revision)

    def sink(self, table: str, row: tuple[Any, ...]) -> None:
        if not self._leading:
            return  # a standby's view is warm but not recorded: the leader's rows are the record
        if self.writer is not None:
            try:
                self.writer.put(table, row)
            except WriteBehindFullError as exc:
                log.error("%s", exc)
                self.engine._halt("storage", True)  # nothing more may happen that cannot be recorded
        if self.bus is not None and table in ("orders", "fills"):
            self._publish_fill(table, row)
        if self.bus is not None and table in ("signals", "risk_events"):
            stream = SIGNALS_STREAM if table == "signals" else RISK_STREAM
            fields = {"table": table, "row": [str(v) if not isinstance(v, (int, float)) else v for v in row]}
            self._spawn(self._publish(stream, fields))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish(self, stream: str, fields: dict[str, Any]) -> None:
        assert self.bus is not None
        try:
            await self.bus.publish(stream, fields)
        except Exception as exc:  # Redis is a cache and a bus here: an outage must not stop trading
            self.metrics.errors.labels(self.engine.symbol, "redis").inc()
            log.warning("redis publish failed: %s", exc)

    async def _share(self, stop: asyncio.Event) -> None:
        """Every `--share-interval` seconds: this symbol's position onto the positions stream (the portfolio
        risk service's input) and the cap the service published for this symbol back. Redis trouble is
        counted, never fatal."""
        engine, symbol = self.engine, self.engine.symbol
        while not stop.is_set() and self.bus is not None:
            try:
                book = engine.book_greeks(engine.last_ts)
                for kind in ("delta", "gamma", "vega", "notional"):
                    self.metrics.exposure.labels(symbol, kind).set(book[kind])
                if self.engine.active:  # a standby holds nothing of its own: the book is the leader's
                    await self._publish_position(book)
                await self._read_cap(book["notional"])
            except Exception as exc:  # Redis is a cache and a bus here: an outage must not stop trading
                self.metrics.errors.labels(symbol, "redis").inc()
                log.warning("redis update failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.args.share_interval)

    async def _publish_position(self, book: dict[str, float]) -> None:
        assert self.bus is not None
        engine, limits = self.engine, self.engine.config.runtime.risk
        if not math.isfinite(engine.state.mid):
            return  # no quote yet: nothing to value the position at
        self._version = max(self._version + 1, time.time_ns())  # newer than any earlier event, across restarts
        event = PositionEvent(symbol=engine.symbol, version=self._version, mid=engine.state.mid,
                              notional=book["notional"], delta=book["delta"], gamma=book["gamma"], vega=book["vega"],
                              correlation_threshold=limits.correlation_threshold,
                              correlated_exposure_cap=limits.correlated_exposure_cap)
        await self.bus.publish(POSITIONS_STREAM, event.model_dump(by_alias=True))

    async def _read_cap(self, own_notional: float) -> None:
        """The correlation cap from the portfolio service (one read, instead of every symbol's book)."""
        assert self.bus is not None
        raw = await self.bus.redis.hget(CAPS_KEY, self.engine.symbol)
        published = SymbolCap.model_validate_json(raw) if raw else None
        cap, state = effective_cap(published, time.time(), self.args.cap_max_age, own_notional)
        if state is CapState.STALE and self._cap_state is not CapState.STALE:
            log.warning("portfolio caps are older than %.0fs: holding positions, adding none", self.args.cap_max_age)
        self._cap_state = state
        self.engine.position_cap = cap
        self.metrics.portfolio_cap.labels(self.engine.symbol).set(cap if state is not CapState.ABSENT else math.nan)

    def _publish_fill(self, table: str, row: tuple[Any, ...]) -> None:
        """Orders and fills onto the fills stream: the order row names the instrument its fill lacks."""
        if table == "orders":
            self._order_instruments[str(row[0])] = str(row[3])
            return
        fill_id, ts, order_id, quantity, price, fee = row
        instrument = self._order_instruments.pop(str(order_id), "")
        event = FillEvent(fill_id=str(fill_id), symbol=self.engine.symbol, instrument=instrument,
                          quantity=float(quantity), price=float(price), fee=float(fee),
                          multiplier=self.engine.broker.multipliers.get(instrument, 1.0), ts=ts.timestamp())
        self._spawn(self._publish(FILLS_STREAM, event.model_dump(by_alias=True)))

    async def _migrate(self, stop: asyncio.Event) -> None:
        """Migrations before the writer starts; retried while the database is not there yet."""
        delay = 0.2
        while not stop.is_set():
            try:
                await asyncio.to_thread(migrate, self.args.database_url)
                self._migrated = True
                return
            except Exception as exc:
                log.warning("migrations not applied yet (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10.0)

    async def _first_snapshot(self) -> None:
        """The symbol's snapshot from the broker's API before the feed connects: quotes and the option chain
        at once. A failure is logged; the feed's own snapshot follows its subscription anyway."""
        if self.snapshots is None:
            return
        try:
            snapshot = await asyncio.wait_for(self.snapshots.snapshot(self.engine.symbol), self.snapshot_wait)
        except Exception as exc:  # the API is down or slow: the feed still brings the market
            self.metrics.errors.labels(self.engine.symbol, "snapshot").inc()
            log.warning("no snapshot of %s from the broker's API at start: %s", self.engine.symbol, exc)
            return
        await settle(self.engine.on_message(snapshot))

    async def _warm_up(self) -> None:
        """History through the engine before the feed connects (`warmup.py`); the overlap then kept out."""
        if not isinstance(self.feed, FeedClient):
            return  # a replay of a recorded file is history already
        self._gate = await warm_up(self.engine, self.engine.config.runtime.warmup, self.args.feed_url, self.warmup)
        if self._gate is not None:
            self.feed.handler = self._live

    def _live(self, message: Message) -> Awaitable[None] | None:
        """The live feed's handler while the overlap with the history lasts; then the engine's own again."""
        assert self._gate is not None
        assert isinstance(self.feed, FeedClient)
        if not self._gate.admit(message):
            return None
        if self._gate.passed:
            self.feed.handler = self.engine.on_message
        return self.engine.on_message(message)

    async def run(self) -> None:
        stop, flush = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def feed_connected() -> bool:
            return self.feed.connected.is_set()

        async def database() -> bool:
            # A standby writes nothing: the migrations it applied at start are its proof of a database.
            return self.writer is None or self.writer.healthy or (not self._leading and self._migrated)

        checks: dict[str, Check] = {"feed": feed_connected, "database": database}
        faults = self.engine.config.runtime.fault_injection
        if faults.never_ready:
            checks["faultInjection"] = never  # faultInjection.neverReady
        health = HealthServer(self.metrics.registry, self.engine.broker.open_positions, checks,
                              host=self.args.metrics_host, port=self.args.metrics_port,
                              decisions=self.engine.decisions_report)
        await health.start()
        log.info("runtime started", extra={"symbol": self.engine.symbol, "revision": self.engine.config.revision})
        if faults.crash_after_seconds:
            loop.call_later(faults.crash_after_seconds, crash, faults.crash_after_seconds)
        writer_task = None
        if self.writer is not None:
            await self._migrate(stop)
            writer_task = asyncio.create_task(self.writer.run(flush))
        await self._warm_up()
        await self._first_snapshot()
        if self._leading and self.broker is not None:  # alone: the start is this process's takeover
            self._promotion = asyncio.ensure_future(self._promote())
        tasks = [asyncio.create_task(self.feed.run(stop)), asyncio.create_task(watch(self.files, stop)),
                 asyncio.create_task(self._share(stop))]
        if self.election is not None:
            tasks.append(asyncio.create_task(self.election.run(stop)))
        if isinstance(self.feed, ReplayFeed):  # the end of the file stops the process like SIGTERM
            finished = asyncio.ensure_future(self.feed.finished.wait())
            await asyncio.wait({finished, asyncio.ensure_future(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            stop.set()
        await stop.wait()
        if self._promotion is not None:
            self._promotion.cancel()
        await asyncio.gather(*tasks)
        if self.broker is not None:  # their results are recorded before the writer's last flush
            still = await self.broker.drain(self.args.order_drain)
            if still:
                log.error("%d order(s) still working at the broker at shutdown: their outcome is not recorded", still)
        if self.pool is not None:
            await self.pool.close()
        await asyncio.gather(*self._background, return_exceptions=True)
        flush.set()
        if self.writer is not None:
            self.writer.wake()
        if writer_task is not None:
            await writer_task
        if self.election is not None:  # after the last row is written: the next leader reads a complete book
            await self._quiet()
            await self.election.release()
        if self.bus is not None:
            await self.bus.close()
        await health.stop()
        self.engine.analysis.close()
        if self.latency_log is not None:
            self.latency_log.close()
        if self.tracing is not None:
            self.tracing.shutdown()
        summary = {"symbol": self.engine.symbol, "messages": self.feed.stats.messages}
        if self.writer is not None:
            summary |= {"rows_accepted": self.writer.stats.accepted, "rows_written": self.writer.stats.written,
                        "rows_spilled_pending": self.writer.spill_rows}
        log.info("shutdown complete %s", json.dumps(summary), extra=summary)

    async def _quiet(self) -> None:
        """Before releasing the Lease: wait until the orders sent and never answered have expired at the broker
        (they may still be on the wire), so that the next leader's read of the broker sees all of them."""
        if self.broker is None or self.broker_api is None or not self.broker_api.order_expiry:
            return
        wait = self.broker.quiet_at + self.broker_api.max_clock_skew_seconds - time.time()
        if wait > 0:
            wait = min(wait, self.broker_api.deadline_seconds + self.broker_api.max_clock_skew_seconds)
            log.warning("waiting %.2fs for unanswered orders to expire before releasing the lease", wait)
            await asyncio.sleep(wait)


async def never() -> bool:
    return False


def crash(after_seconds: float) -> None:
    """faultInjection.crashAfterSeconds: exit at once, with no cleanup, as a crash does."""
    message = f"fault injection: exiting with status 1 after {after_seconds:g}s (faultInjection.crashAfterSeconds)"
    log.error(message)
    flush()  # os._exit skips atexit: the line would die in the log queue
    print(message, file=sys.stderr, flush=True)
    os._exit(1)


def ballast(megabytes: int) -> bytearray:
    """faultInjection.memoryBallastMb: memory allocated and touched (every page resident)."""
    block = bytearray(megabytes * 1024 * 1024)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    return block


def unworkable(config: RenderedConfig) -> list[str]:
    """What the CRD schema accepts (each field within its bounds) and the runtime cannot run with."""
    parameters = config.runtime.parameters
    problems = []
    if parameters.queue_capacity < parameters.batch_size:
        problems.append(f"parameters.queueCapacity ({parameters.queue_capacity}) is smaller than "
                        f"parameters.batchSize ({parameters.batch_size}): no batch could ever be queued whole")
    return problems


def broker_warnings(config: RenderedConfig) -> list[str]:
    """What a broker section allows and is probably a mistake (logged at start, not refused)."""
    api = config.runtime.broker
    if api is None:
        return []
    warnings = []
    capacity = sum(k.rate_per_second for k in api.keys)
    if config.runtime.pre_trade.max_orders_per_second > capacity:
        warnings.append(f"preTrade.maxOrdersPerSecond ({config.runtime.pre_trade.max_orders_per_second}) is above "
                        f"the broker keys' combined rate ({capacity:g}/s): a burst of orders queues for the keys' "
                        "tokens (up to deadlineSeconds) before it is sent")
    if api.orders and not api.order_expiry:
        warnings.append("broker.orderExpiry is false: orders carry no expiry, so an order on the wire when leadership "
                        "moves can fill after the next leader read the broker (booked at a later takeover or start)")
    for endpoint in api.endpoints:
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme == "http" and url.hostname not in ("localhost", "127.0.0.1", "::1"):
            warnings.append(f"broker endpoint {endpoint} is plain HTTP: its API keys cross the network in clear text")
    return warnings


def main() -> int:
    parser = argparse.ArgumentParser(prog="trading_runtime", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--switches", required=True)
    parser.add_argument("--feed-url", default=os.environ.get("TRADEOPS_FEED_URL", "ws://127.0.0.1:8765"))
    parser.add_argument("--database-url", default=os.environ.get("TRADEOPS_DATABASE_URL"),
                        help="PostgreSQL conninfo (from the Secret); without it nothing is stored")
    parser.add_argument("--redis-url", default=os.environ.get("TRADEOPS_REDIS_URL"))
    parser.add_argument("--share-interval", type=float, default=1.0,
                        help="seconds between position/return sharing and portfolio risk updates")
    parser.add_argument("--cap-max-age", type=float, default=10.0,
                        help="seconds after which the portfolio service's cap is stale (positions held, none added)")
    parser.add_argument("--lease-name", default=os.environ.get(LEASE_NAME_ENV),
                        help="the coordination.k8s.io Lease one replica of the symbol holds to trade (the others "
                             "stand by); without it this process trades alone")
    parser.add_argument("--identity", default=os.environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}",
                        help="the Lease's holderIdentity (the pod's name)")
    parser.add_argument("--lease-duration", type=int, default=5, help="seconds a standby waits on a silent leader")
    parser.add_argument("--renew-deadline", type=float, default=4.0,
                        help="seconds the leader keeps trading without renewing (< --lease-duration)")
    parser.add_argument("--retry-period", type=float, default=1.0, help="seconds between lease reads and renewals")
    parser.add_argument("--order-drain", type=float, default=10.0,
                        help="seconds a shutdown waits for orders still working at the broker's API")
    parser.add_argument("--metrics-host", default="0.0.0.0")
    parser.add_argument("--metrics-port", type=int, default=9102)
    parser.add_argument("--spill-path", default=os.environ.get("TRADEOPS_SPILL_PATH", "/tmp/tradeops-spill.jsonl"))
    parser.add_argument("--latency-log", type=pathlib.Path, metavar="FILE",
                        help="append every signal decision's tick-to-signal latency to FILE (benchmarks)")
    parser.add_argument("--replay", type=pathlib.Path, metavar="FILE",
                        help="a recorded CSV/Parquet file as the feed (docs/recorded-data.md); exits at its end")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="replay pace: 1 recorded speed, 10 ten times faster, 0 as fast as possible")
    parser.add_argument("--timezone", help="time zone of the replay file's timestamps written without one")
    parser.add_argument("--extended-hours", action="store_true", help="replay rows outside regular sessions too")
    args = parser.parse_args()
    context = configure("trading-runtime")
    try:
        config = load_runtime_config(pathlib.Path(args.config))
        switches = load_switches(pathlib.Path(args.switches))
        settings = TracingSettings.from_env()
        problems = unworkable(config)
        if args.lease_name:
            try:
                LeaseTimings(args.lease_duration, args.renew_deadline, args.retry_period)
            except ValueError as exc:
                problems.append(str(exc))
        if config.runtime.broker is not None and args.replay is None:
            try:
                pool_settings(config.runtime.broker, os.environ)
            except MissingKeyError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError(f"{args.config}: {'; '.join(problems)}")
    except (ConfigError, TelemetryError) as exc:
        log.error("cannot start: %s", exc)
        print(f"cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    replay = None
    if args.replay is not None:
        try:
            replay = load_recorded(args.replay, LoadOptions(symbol=config.symbol, calendar=config.market,
                                                            timezone=args.timezone,
                                                            extended_hours=args.extended_hours))
        except RecordedDataError as exc:
            log.error("cannot replay: %s", exc)
            return 2
        log.info("replaying %s", replay.report.summary(), extra={"events": replay.report.events,
                                                               "dropped": replay.report.dropped})
    context.symbol, context.revision = config.symbol, config.revision
    for warning in broker_warnings(config):
        log.warning("%s", warning)
    # Started here, after any fork and before the loop: the span export thread belongs to this process.
    tracing = Tracing.start(settings, {"tradeops.symbol": config.symbol, "tradeops.revision": config.revision,
                                       "service.instance.id": os.environ.get("HOSTNAME", str(os.getpid()))})
    asyncio.run(Runtime(args, config, switches, tracing, context, replay).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
