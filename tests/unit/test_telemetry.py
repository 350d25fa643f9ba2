"""Runtime tracing: which ticks are kept (ratio on the trace id, every failed, slow or warning tick), the
shape of a decision's trace, the link to the revision's deploy, the flush span's links, a span queue that
drops and counts instead of blocking, and settings read from the environment."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import subprocess
import sys
import threading
import time

import pytest
from opentelemetry import trace as api
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, StatusCode, TraceFlags

from trading_runtime.config import RenderedConfig, RuntimeConfig
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.storage.writer import Batch
from trading_runtime.telemetry import (
    KEEP,
    DecisionTracer,
    FlushTracer,
    SpanQueue,
    TelemetryError,
    Tracing,
    TracingSettings,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


NEVER_SLOW = 3_600_000.0
"""A slow threshold no tick reaches, even on a loaded machine: only the ratio (or failure) keeps ticks."""


def tracing(ratio: float, slow_ms: float = NEVER_SLOW, traceparent: str | None = TRACEPARENT) \
        -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    settings = TracingSettings(endpoint="unused", sample_ratio=ratio, slow_ms=slow_ms,
                               revision_traceparent=traceparent)
    return Tracing(settings, exporter, {"tradeops.symbol": "SPY"}), exporter


def engine(decisions: DecisionTracer, **faults: float) -> SymbolEngine:
    runtime = RuntimeConfig.model_validate({"strategy": {"entryScore": 0.3, "exitScore": 0.1},
                                            "faultInjection": faults})
    config = RenderedConfig(symbol="SPY", market="equity-options", revision=4, runtime=runtime)
    return SymbolEngine(config, True, RuntimeMetrics("SPY"), lambda table, row: None, seed=0, tracer=decisions)


def frames(count: int) -> list[str]:
    simulator = MarketSimulator(["SPY"], seed=0, option_quotes_per_tick=2, trade_probability=0.4)
    out = [json.dumps({**simulator.snapshot("SPY"), "seq": 0})]
    while len(out) < count:
        out += [json.dumps({**m, "seq": len(out) + i}) for i, m in enumerate(simulator.tick("SPY", 0.2))]
    return out[:count]


FRAMES = frames(3000)


def run(target: SymbolEngine, count: int = len(FRAMES)) -> None:
    async def feed() -> None:
        for frame in FRAMES[:count]:
            await settle(target.on_message(parse_message(frame)))
    asyncio.run(feed())


def finished(trace: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert trace.queue.force_flush(5000)
    return list(exporter.get_finished_spans())


def test_a_decision_is_one_trace_from_frame_to_fill_linked_to_the_deploy():
    trace, exporter = tracing(ratio=1.0)
    frame_times = (0, 0)
    decisions = DecisionTracer(trace, "SPY", 4, frame_times=lambda: frame_times)
    target = engine(decisions)

    async def feed() -> None:
        nonlocal frame_times
        for frame in FRAMES:
            received = time.perf_counter_ns()
            message = parse_message(frame)
            frame_times = (received, time.perf_counter_ns())
            await settle(target.on_message(message))
    asyncio.run(feed())
    spans = finished(trace, exporter)
    order = next(s for s in spans if s.name == "order")
    family = {s.name: s for s in spans if s.context.trace_id == order.context.trace_id}
    root = family["tick"]
    assert root.parent is None
    assert [n for n in ("feed.parse", "indicators", "signal", "risk", "order", "fill", "drawdown") if n in family] == \
        ["feed.parse", "indicators", "signal", "risk", "order", "fill", "drawdown"]
    for name in ("feed.parse", "indicators", "signal", "risk", "order", "drawdown"):
        assert family[name].parent.span_id == root.context.span_id, name
    assert family["fill"].parent.span_id == family["order"].context.span_id
    # Stages follow one another inside the tick.
    stages = [family[n] for n in ("feed.parse", "indicators", "signal", "risk", "order", "drawdown")]
    assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(stages))
    assert root.start_time <= stages[0].start_time
    assert stages[-1].end_time <= root.end_time
    assert root.attributes["tradeops.symbol"] == "SPY"
    assert root.attributes["tradeops.revision"] == 4
    assert root.attributes["tradeops.signal.direction"] in (-1, 1)
    assert family["order"].attributes["tradeops.instrument"].startswith("SPY-")
    assert [format(link.context.trace_id, "032x") for link in root.links] == [TRACEPARENT.split("-")[1]]
    assert root.resource.attributes["service.name"] == "trading-runtime"


def test_ratio_sampling_keeps_the_share_the_sdk_sampler_agrees_with():
    trace, exporter = tracing(ratio=0.25)
    decisions = DecisionTracer(trace, "SPY", 4)
    run(engine(decisions))
    ticks = len(FRAMES) - 1  # the snapshot is a tick too; heartbeats are not sent here
    kept = decisions.kept["ratio"]
    # Binomial(n, 0.25): 4 standard deviations either side.
    margin = 4 * math.sqrt(ticks * 0.25 * 0.75)
    assert abs(kept - 0.25 * (ticks + 1)) < margin
    roots = [s for s in finished(trace, exporter) if s.name == "tick"]
    assert len(roots) == kept, "the SDK's sampler dropped ticks the runtime meant to keep"
    assert all(KEEP not in s.attributes for s in roots)


def test_nothing_is_kept_at_ratio_zero_but_failed_and_slow_ticks_are():
    trace, exporter = tracing(ratio=0.0)
    decisions = DecisionTracer(trace, "SPY", 4)
    run(engine(decisions), 500)
    assert sum(decisions.kept.values()) == 0
    assert finished(trace, exporter) == []

    failing = DecisionTracer(trace, "SPY", 4)
    run(engine(failing, errorRate=1.0), 50)
    assert failing.kept == {"failed": 50}
    roots = [s for s in finished(trace, exporter) if s.name == "tick"]
    assert len(roots) == 50
    assert {s.status.status_code for s in roots} == {StatusCode.ERROR}
    assert roots[0].events[0].name == "exception"
    assert roots[0].attributes[KEEP] == "failed"

    exporter.clear()
    slow_trace, slow_exporter = tracing(ratio=0.0, slow_ms=5.0)
    slow = DecisionTracer(slow_trace, "SPY", 4)
    run(engine(slow, extraLatencyMs=6.0), 30)
    assert slow.kept == {"slow": 30}
    roots = [s for s in finished(slow_trace, slow_exporter) if s.name == "tick"]
    assert min(s.end_time - s.start_time for s in roots) >= 5_000_000


def test_a_tick_that_logs_is_kept_under_the_ids_its_log_line_carried():
    trace, exporter = tracing(ratio=0.0)
    decisions = DecisionTracer(trace, "SPY", 4)
    decisions.begin(parse_message(FRAMES[1]))
    assert not decisions.finish(None), "a quiet tick at ratio 0 is not kept"
    decisions.begin(parse_message(FRAMES[1]))
    trace_id, span_id = decisions.log_ids()
    assert decisions.log_ids() == (trace_id, span_id), "stable within the tick"
    assert decisions.finish(None)
    (root,) = finished(trace, exporter)
    assert (root.context.trace_id, root.context.span_id) == (trace_id, span_id)
    assert root.attributes[KEEP] == "logged"
    assert decisions.log_ids() is None, "no tick in hand after finish"


def test_without_tracing_every_hook_is_a_no_op():
    decisions = DecisionTracer(None, "SPY", 4)
    run(engine(decisions), 300)
    assert not decisions.finish(RuntimeError("x"))
    assert decisions.log_ids() is None
    assert sum(decisions.kept.values()) == 0


def test_kept_decisions_that_queued_rows_ride_with_them_and_the_flush_links_to_them():
    trace, exporter = tracing(ratio=1.0)
    rows, carried = 0, []

    def sink(table, row):
        nonlocal rows
        rows += 1

    decisions = DecisionTracer(trace, "SPY", 4, rows=lambda: rows, carry=carried.append)
    target = engine(decisions)
    target.sink = sink
    run(target, 400)
    roots = {s.context.span_id for s in finished(trace, exporter) if s.name == "tick"}
    assert carried
    assert {c.span_id for c in carried} <= roots
    assert len(carried) < len(roots), "ticks that queued no row (option quotes) are not carried"

    exporter.clear()
    flush = FlushTracer(trace)
    flush(Batch(1_000, 2_000, 0, ()))  # nothing kept, nothing failed: no span
    flush(Batch(1_000, 5_000, 120, tuple(carried[:3])))
    flush(Batch(6_000, 9_000, 40, (), ConnectionError("database down")))
    spans = finished(trace, exporter)
    assert [s.name for s in spans] == ["db.flush", "db.flush"]
    carrying, failed = spans
    assert [link.context.span_id for link in carrying.links] == [c.span_id for c in carried[:3]]
    assert carrying.attributes["tradeops.rows"] == 120
    assert carrying.parent is None
    assert carrying.end_time - carrying.start_time == 4_000
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[KEEP] == "failed"


class BlockingExporter(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans):
        self.release.wait(10)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_span_queue_drops_and_counts_instead_of_blocking():
    trace, _ = tracing(ratio=1.0)
    exporter = BlockingExporter()
    queue = SpanQueue(exporter, max_queue=100, batch=10, delay=0.01)
    spans = []
    for i in range(20):
        span = trace.tracer.start_span(f"s{i}")
        span.end()
        spans.append(span)
    queue.on_end(spans[0])
    deadline = threading.Event()
    while queue.queue and not deadline.wait(0.01):  # the exporter thread takes the first batch and blocks
        pass
    for _ in range(150):
        queue.on_end(spans[1])
    assert len(queue.queue) == 100
    assert queue.dropped == 50
    exporter.release.set()
    assert queue.force_flush(5000)
    assert exporter.exported == 101
    queue.shutdown()


def test_recorded_but_unsampled_spans_never_enter_the_queue():
    queue = SpanQueue(InMemorySpanExporter(), max_queue=1)
    queue.on_end(ReadableSpan("record-only", SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0))))
    assert not queue.queue
    assert queue.dropped == 0
    queue.on_end(ReadableSpan("sampled", SpanContext(1, 3, is_remote=False, trace_flags=TraceFlags(1))))
    assert len(queue.queue) == 1
    queue.shutdown()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, TracingSettings(endpoint=None)),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, TracingSettings(endpoint="http://c:4318/v1/traces")),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/v1/traces",
      "OTEL_TRACES_SAMPLER_ARG": "0.1", "TRADEOPS_TRACE_SLOW_MS": "20", "OTEL_BSP_MAX_QUEUE_SIZE": "64",
      "OTEL_SERVICE_NAME": "rt", "TRADEOPS_REVISION_TRACEPARENT": TRACEPARENT},
     TracingSettings(endpoint="http://t/v1/traces", sample_ratio=0.1, slow_ms=20.0, queue_size=64, service_name="rt",
                     revision_traceparent=TRACEPARENT)),
], ids=["off", "base-endpoint", "everything"])
def test_settings_come_from_the_standard_variables(env, expected):
    assert TracingSettings.from_env(env) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "outside"),
    ({"OTEL_TRACES_SAMPLER_ARG": "lots"}, "not a number"),
    ({"TRADEOPS_TRACE_SLOW_MS": "-1"}, "outside"),
], ids=["ratio-above-one", "ratio-not-a-number", "negative-slow"])
def test_unusable_settings_are_refused_with_the_variable_named(env, message):
    with pytest.raises(TelemetryError, match=f"{next(iter(env))}.*{message}"):
        TracingSettings.from_env(env)


def test_a_malformed_revision_traceparent_is_logged_and_not_linked(caplog):
    trace, _ = tracing(ratio=1.0, traceparent="00-not-a-traceparent")
    assert trace.link is None
    assert "not a W3C traceparent" in caplog.text


def test_a_remote_parent_decides_for_its_children():
    trace, exporter = tracing(ratio=0.0)
    sampled = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    span = trace.tracer.start_span("child", api.set_span_in_context(api.NonRecordingSpan(sampled)))
    span.end()
    assert [s.name for s in finished(trace, exporter)] == ["child"]


def test_importing_the_runtime_starts_no_tracing_thread():
    code = ("import threading, trading_runtime.main, trading_runtime.telemetry; "
            "print(sorted(t.name for t in threading.enumerate()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['MainThread']"


def test_the_runtime_refuses_to_start_on_an_unusable_tracing_setting(tmp_path):
    (tmp_path / "runtime.yaml").write_text("symbol: SPY\nmarket: equity-options\nrevision: 1\nruntime: {}\n")
    (tmp_path / "switches.yaml").write_text("tradingEnabled: true\n")
    result = subprocess.run([sys.executable, "-m", "trading_runtime", "--config", str(tmp_path / "runtime.yaml"),
                             "--switches", str(tmp_path / "switches.yaml")], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "OTEL_TRACES_SAMPLER_ARG": "2"}, timeout=60)
    assert result.returncode == 2
    (line,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert line["log.level"] == "error"
    assert "OTEL_TRACES_SAMPLER_ARG='2' is outside [0, 1]" in line["message"]
