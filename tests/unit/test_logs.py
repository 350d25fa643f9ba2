"""ECS JSON logs: service, symbol and revision on every line; trace.id/span.id from the current span, or
from the runtime's tick in hand; a line outside any span carries no trace ids."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from trading_runtime.logs import LogContext, configure, flush


@pytest.fixture
def lines() -> Iterator[tuple[io.StringIO, LogContext]]:
    stream = io.StringIO()
    context = configure("trading-runtime", LogContext(symbol="SPY", revision=3), stream=stream)
    try:
        yield stream, context
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def records(stream: io.StringIO) -> list[dict]:
    flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_ecs_json_with_service_symbol_and_revision(lines):
    stream, context = lines
    logging.getLogger("trading_runtime.x").info("started", extra={"messages": 5})
    context.revision = 4  # a hot-reloaded config
    logging.getLogger("trading_runtime.x").error("database unreachable")
    first, second = records(stream)
    assert first["ecs.version"].startswith("1.")
    assert first["log.level"] == "info"
    assert first["message"] == "started"
    assert first["service"]["name"] == "trading-runtime"
    assert first["labels"] == {"symbol": "SPY", "revision": "3"}
    assert first["messages"] == 5
    assert "@timestamp" in first
    assert "trace" not in first, "no span, no trace id"
    assert second["labels"]["revision"] == "4"
    assert second["log.level"] == "error"


def test_a_line_inside_a_span_carries_its_ids(lines):
    stream, _ = lines
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("flush") as span:
        logging.getLogger("trading_runtime.storage").warning("batch refused")
    (line,) = records(stream)
    assert line["trace"]["id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span"]["id"] == format(span.get_span_context().span_id, "016x")


def test_on_the_tick_path_a_line_carries_the_tick_in_hand(lines):
    stream, context = lines
    def tick_ids() -> tuple[int, int] | None:
        return (0xABC, 0xDEF)

    context.tick_ids = tick_ids
    logging.getLogger("trading_runtime.engine").error("black swan")
    (line,) = records(stream)
    assert line["trace"]["id"] == format(0xABC, "032x")
    assert line["span"]["id"] == format(0xDEF, "016x")


def test_lines_are_formatted_and_written_off_the_callers_thread():
    """An order logged on the tick path costs the event loop a queued record, not formatting and a write."""
    writers: list[int] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writers.append(threading.get_ident())
            return super().write(text)

    stream = Stream()
    try:
        configure("trading-runtime", LogContext(symbol="SPY"), stream=stream)
        logging.getLogger("trading_runtime.engine").info("order %s", "abc")
        flush()
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    assert records(stream)[0]["message"] == "order abc"
    assert writers
    assert threading.get_ident() not in writers
