"""Tracing with OpenTelemetry: one trace per market message (feed frame received → parse → indicators →
signal → risk → order → fill), flush spans of the write-behind queue linked to the decisions they carry,
and a link from every decision to the deploy that made the revision (`TRADEOPS_REVISION_TRACEPARENT`).

The tick path must not pay for tracing it does not keep. A tick records its stage boundaries as a few
integers (`perf_counter_ns`); only when it is kept are spans created, after the fact, with those times.
Kept are: every failed tick, every slow one (`TRADEOPS_TRACE_SLOW_MS`), every one that logged a line, and a
ratio of the rest (`OTEL_TRACES_SAMPLER_ARG`) chosen on the trace id exactly as the SDK's
`TraceIdRatioBased` does; spans with a sampled parent are kept with it (`ParentBased`). Kept spans go into a
bounded queue exported by a thread of its own: a full queue drops the span and counts it, never blocks.

The SDK is started by `Tracing.start()`, called from the process's `main()` (never at import): its export
thread would not survive a fork, so any fork happens before. Settings are the standard OpenTelemetry
variables (`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `..._HEADERS`, `OTEL_SERVICE_NAME`,
`OTEL_BSP_MAX_QUEUE_SIZE`) plus the two `TRADEOPS_` ones; no endpoint, no tracing."""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from trading_runtime.storage.writer import Batch

log = logging.getLogger(__name__)

KEEP = "tradeops.sampled_because"
"""Attribute of a root span kept by the runtime's own rule (failed, slow, logged, carries); the sampler
samples such roots whatever the ratio says."""
TRACEPARENT_ENV = "TRADEOPS_REVISION_TRACEPARENT"
SLOW_ENV = "TRADEOPS_TRACE_SLOW_MS"
MASK64 = (1 << 64) - 1


class TelemetryError(ValueError):
    """A tracing setting that cannot be used."""


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TelemetryError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise TelemetryError(f"{name}={raw!r} is outside [{low:g}, {high:g}]")
    return value


@dataclass(frozen=True)
class TracingSettings:
    endpoint: str | None
    """OTLP/HTTP traces URL; None switches tracing off."""
    sample_ratio: float = 0.01
    """Share of ordinary ticks kept (failed, slow and logging ones are always kept)."""
    slow_ms: float = 50.0
    """A tick at least this slow (frame received → done) is kept: the tick-to-signal SLO's threshold."""
    queue_size: int = 2048
    """Spans waiting for export; beyond it new spans are dropped and counted."""
    service_name: str = "trading-runtime"
    revision_traceparent: str | None = None
    """W3C traceparent of the deploy that made the running revision (the operator sets it)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, service_name: str = "trading-runtime") -> TracingSettings:
        env = os.environ if env is None else env
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or None
        if endpoint is None and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
        return cls(
            endpoint=endpoint,
            sample_ratio=_number(env, "OTEL_TRACES_SAMPLER_ARG", 0.01, 0.0, 1.0),
            slow_ms=_number(env, SLOW_ENV, 50.0, 0.0, 3_600_000.0),
            queue_size=int(_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 10_000_000)),
            service_name=env.get("OTEL_SERVICE_NAME") or service_name,
            revision_traceparent=env.get(TRACEPARENT_ENV) or None,
        )


def revision_link(traceparent: str | None) -> Link | None:
    """The link to the deploy's span, or None (a malformed value is logged, never fatal)."""
    if not traceparent:
        return None
    context = trace.get_current_span(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    span_context = context.get_span_context()
    if not span_context.is_valid:
        log.warning("ignoring %s=%r: not a W3C traceparent", TRACEPARENT_ENV, traceparent)
        return None
    return Link(span_context, {"tradeops.link": "revision"})


class KeepMarked(Sampler):
    """Samples roots the runtime marked to keep (`KEEP`), otherwise asks `delegate`."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: Any = None) -> SamplingResult:
        if attributes and attributes.get(KEEP):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"KeepMarked{{{self.delegate.get_description()}}}"


class PresetIds(RandomIdGenerator):
    """Random ids, except the next trace and span id when preset: a tick's ids exist before its spans do
    (its log lines carry them, and the ratio decision is made on them)."""

    def __init__(self) -> None:
        self._trace_id = 0
        self._span_id = 0

    def preset(self, trace_id: int, span_id: int) -> None:
        self._trace_id, self._span_id = trace_id, span_id

    def generate_trace_id(self) -> int:
        preset, self._trace_id = self._trace_id, 0
        return preset or super().generate_trace_id()

    def generate_span_id(self) -> int:
        preset, self._span_id = self._span_id, 0
        return preset or super().generate_span_id()


class SpanQueue(SpanProcessor):
    """Sampled spans into a bounded queue, exported in batches by a daemon thread. `on_end` never blocks:
    a full queue drops the span (counted in `dropped`)."""

    def __init__(self, exporter: SpanExporter, max_queue: int = 2048, batch: int = 512, delay: float = 1.0) -> None:
        self.exporter, self.max_queue, self.batch, self.delay = exporter, max_queue, batch, delay
        self.queue: collections.deque[ReadableSpan] = collections.deque()
        self.dropped = self.exported = self.failed = 0
        self._wake = threading.Event()
        self._stopping = False
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="tradeops-span-export", daemon=True)
        self._thread.start()

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        if len(self.queue) >= self.max_queue:
            self.dropped += 1
            return
        self.queue.append(span)
        if len(self.queue) >= self.batch:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.delay)
            self._wake.clear()
            self._export_all()
        self._export_all()

    def _export_all(self) -> None:
        while self.queue:
            spans = [self.queue.popleft() for _ in range(min(self.batch, len(self.queue)))]
            self._in_flight = len(spans)
            try:
                result = self.exporter.export(spans)
            except Exception as exc:  # an exporter must not kill the thread; the spans are lost, and counted
                log.warning("span export failed: %s", exc)
                result = SpanExportResult.FAILURE
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
            self._in_flight = 0

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        self._wake.set()
        while (self.queue or self._in_flight) and time.monotonic() < deadline:
            time.sleep(0.01)
        return not (self.queue or self._in_flight)

    def shutdown(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(10)
        self.exporter.shutdown()


class Tracing:
    """The process's tracer provider, sampler, id generator and span queue."""

    def __init__(self, settings: TracingSettings, exporter: SpanExporter, resource: Mapping[str, str | int]) -> None:
        self.settings = settings
        self.ids = PresetIds()
        self.ratio = TraceIdRatioBased(settings.sample_ratio)
        self.queue = SpanQueue(exporter, settings.queue_size)
        self.provider = TracerProvider(
            sampler=KeepMarked(ParentBased(self.ratio)), id_generator=self.ids,
            resource=Resource.create({"service.name": settings.service_name, **resource}))
        self.provider.add_span_processor(self.queue)
        self.tracer = self.provider.get_tracer("trading_runtime")
        self.link = revision_link(settings.revision_traceparent)

    @classmethod
    def start(cls, settings: TracingSettings, resource: Mapping[str, str | int]) -> Tracing | None:
        """Tracing to the OTLP/HTTP endpoint of `settings`, or None when none is set."""
        if settings.endpoint is None:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(settings, OTLPSpanExporter(endpoint=settings.endpoint, timeout=5), resource)

    def ratio_keeps(self, trace_id: int) -> bool:
        """What `TraceIdRatioBased` decides for a root with this trace id."""
        return trace_id & MASK64 < self.ratio.bound

    def shutdown(self) -> None:
        """Export what is queued, then stop."""
        self.provider.shutdown()


def _epoch_offset() -> int:
    return time.time_ns() - time.perf_counter_ns()


Stage = tuple[str, int, int, tuple[Any, ...] | None]
FrameTimes = Callable[[], tuple[int, int]]
"""(received, parsed) perf_counter_ns of the frame being handled, from the feed client."""


class DecisionTracer:
    """The tracing hooks of one engine's tick path (`begin`, `mark`, `order`, `finish`). Without a `Tracing`
    every hook returns at once."""

    def __init__(self, tracing: Tracing | None, symbol: str, revision: int, frame_times: FrameTimes | None = None,
                 rows: Callable[[], int] | None = None, carry: Callable[[SpanContext], None] | None = None) -> None:
        self.tracing = tracing
        self.symbol, self.revision = symbol, revision
        self.frame_times, self.rows, self.carry = frame_times, rows, carry
        self.slow_ns = int(tracing.settings.slow_ms * 1e6) if tracing else 0
        self.kept: collections.Counter[str] = collections.Counter()
        self._offset = _epoch_offset()
        self._rng = random.Random()
        self._stages: list[Stage] = []
        self._message: Any = None
        self._start = self._last = self._rows_before = 0
        self._ids: tuple[int, int] | None = None
        self._logged = False

    # The tick path ----------------------------------------------------------------------------------

    def begin(self, message: Any) -> None:
        if self.tracing is None:
            return
        self._start = self._last = time.perf_counter_ns()
        self._stages.clear()
        self._message, self._ids, self._logged = message, None, False
        self._rows_before = self.rows() if self.rows else 0

    def mark(self, stage: str) -> None:
        """The stage that began at the previous mark ends now."""
        if self.tracing is None:
            return
        now = time.perf_counter_ns()
        self._stages.append((stage, self._last, now, None))
        self._last = now

    def order(self, started: int, filled: int, instrument: str, quantity: float, price: float) -> None:
        """An order submitted at `started` (perf_counter_ns), filled at `filled`, booked by now."""
        if self.tracing is None:
            return
        now = time.perf_counter_ns()
        self._stages.append(("order", started, now, (instrument, quantity, price, filled)))
        self._last = now

    def log_ids(self) -> tuple[int, int] | None:
        """(trace id, span id) of the tick being handled, for a log line of it; the tick is then kept, so that
        the line's trace id leads to its spans."""
        if self.tracing is None or not self._start:
            return None
        self._logged = True
        return self._tick_ids()

    def finish(self, error: BaseException | None, direction: int | None = None) -> bool:
        """Decide whether the tick is kept; if it is, create its spans. True when kept."""
        if self.tracing is None:
            return False
        end = time.perf_counter_ns()
        start = self._start
        received, parsed = self.frame_times() if self.frame_times else (start, start)
        received = min(received or start, start)
        reason = "failed" if error is not None else "slow" if end - received >= self.slow_ns else \
            "logged" if self._logged else None
        trace_id, span_id = self._tick_ids()
        self._start = 0
        if reason is None and not self.tracing.ratio_keeps(trace_id):
            return False
        self.kept[reason or "ratio"] += 1
        self._spans(trace_id, span_id, reason, received, parsed, end, error, direction)
        return True

    def now(self) -> int:
        return time.perf_counter_ns()

    # Spans of a kept tick -----------------------------------------------------------------------------

    def _tick_ids(self) -> tuple[int, int]:
        if self._ids is None:
            self._ids = (self._rng.getrandbits(128) or 1, self._rng.getrandbits(64) or 1)
        return self._ids

    def _spans(self, trace_id: int, span_id: int, reason: str | None, received: int, parsed: int, end: int,
               error: BaseException | None, direction: int | None) -> None:
        assert self.tracing is not None
        tracer, at = self.tracing.tracer, self._offset
        message = self._message
        attributes: dict[str, Any] = {"tradeops.symbol": self.symbol, "tradeops.revision": self.revision,
                                      "tradeops.message.type": getattr(message, "type", "unknown")}
        for name in ("seq", "instrument"):
            if getattr(message, name, None) is not None:
                attributes[f"tradeops.message.{name}"] = getattr(message, name)
        if direction is not None:
            attributes["tradeops.signal.direction"] = direction
        if reason is not None:
            attributes[KEEP] = reason
        links = [self.tracing.link] if self.tracing.link else None
        self.tracing.ids.preset(trace_id, span_id)
        root = tracer.start_span("tick", kind=SpanKind.CONSUMER, attributes=attributes, links=links,
                                 start_time=received + at)
        context = trace.set_span_in_context(root)
        if parsed > received:
            tracer.start_span("feed.parse", context, start_time=received + at).end(parsed + at)
        for name, begun, ended, extra in self._stages:
            span = tracer.start_span(name, context, start_time=begun + at)
            if extra is not None:
                instrument, quantity, price, filled = extra
                span.set_attributes({"tradeops.instrument": instrument, "tradeops.order.quantity": quantity})
                fill = tracer.start_span("fill", trace.set_span_in_context(span), start_time=begun + at,
                                         attributes={"tradeops.fill.price": price})
                fill.end(filled + at)
            span.end(ended + at)
        if error is not None:
            root.record_exception(error)
            root.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        root.end(end + at)
        if self.carry is not None and self.rows is not None and self.rows() > self._rows_before:
            self.carry(root.get_span_context())


class FlushTracer:
    """A `db.flush` span for every batch that carried kept decisions (linked to each) or failed."""

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing
        self._offset = _epoch_offset()

    def __call__(self, report: Batch) -> None:
        if not report.carried and report.error is None:
            return
        attributes: dict[str, Any] = {"db.system": "postgresql", "db.operation.name": "COPY",
                                      "tradeops.rows": report.rows, KEEP: "carries" if report.carried else "failed"}
        span = self.tracing.tracer.start_span(
            "db.flush", kind=SpanKind.CLIENT, attributes=attributes, context=Context(),
            links=[Link(c, {"tradeops.link": "decision"}) for c in report.carried],
            start_time=report.started_ns + self._offset)
        if report.error is not None:
            span.record_exception(report.error)
            span.set_status(Status(StatusCode.ERROR, f"{type(report.error).__name__}: {report.error}"))
        span.end(report.ended_ns + self._offset)
