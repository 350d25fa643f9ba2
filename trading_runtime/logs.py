"""Logs in the Elastic Common Schema: one JSON object per line (`ecs-logging`), with `service.name`,
`labels.symbol` and `labels.revision`, and `trace.id`/`span.id` of the span the line belongs to, so a log
line and its trace join on one id.

The ids come from the current OpenTelemetry span; on a runtime's tick path, where spans are created only
after a tick is kept (trading_runtime/telemetry.py), from the tick being handled (`LogContext.tick_ids`),
which the line then keeps. ecs-logging itself copies only Elastic APM's ids, hence the filter.

Lines are formatted and written on a thread of their own (`QueueListener`): a line logged on the tick path (an
order) costs its caller a record on a queue, not the JSON formatting (~60 µs) and a write. What it carries (its
message, labels and ids) is taken when it is logged. `flush()` waits for every line logged so far; at exit the
queued lines are written.

Any tradeops process calls `configure(service)` once at start; nothing here is runtime-specific."""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from collections.abc import Callable
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener
from typing import IO

import ecs_logging
from opentelemetry import trace

TickIds = Callable[[], tuple[int, int] | None]
"""(trace id, span id) of the work in hand, or None."""


@dataclass
class LogContext:
    """What every line of the process carries; the runtime updates the revision on a config reload."""

    symbol: str | None = None
    revision: int | None = None
    tick_ids: TickIds | None = None


class _Correlate(logging.Filter):
    def __init__(self, context: LogContext) -> None:
        super().__init__()
        self.context = context

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        ids = (span.trace_id, span.span_id) if span.is_valid else \
            self.context.tick_ids() if self.context.tick_ids else None
        if ids is not None:
            setattr(record, "trace.id", format(ids[0], "032x"))
            setattr(record, "span.id", format(ids[1], "016x"))
        labels = {k: str(v) for k, v in (("symbol", self.context.symbol), ("revision", self.context.revision))
                  if v is not None}
        if labels:
            record.labels = labels
        return True


class _Deferred(QueueHandler):
    """Queues the record itself for the writer thread (QueueHandler's own `prepare` would format it here)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg, record.args = record.getMessage(), None  # its arguments may change once this returns
        return record


_listener: QueueListener | None = None


def flush() -> None:
    """Wait until every line logged so far is written."""
    if _listener is not None:
        _listener.stop()
        _listener.start()


def _close() -> None:
    """At exit: the lines still queued are written, and no thread is started any more."""
    if _listener is not None:
        _listener.stop()


def configure(service: str, context: LogContext | None = None, level: int = logging.INFO,
              stream: IO[str] | None = None) -> LogContext:
    """ECS JSON lines on `stream` (stdout) for every logger of the process; returns the context to update."""
    global _listener
    context = context or LogContext()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(ecs_logging.StdlibFormatter(extra={"service.name": service}))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    deferred = _Deferred(records)
    deferred.addFilter(_Correlate(context))  # runs on the caller's thread: the span or tick in hand
    if _listener is not None:
        _listener.stop()
    else:
        atexit.register(_close)
    _listener = QueueListener(records, handler)
    _listener.start()
    logging.basicConfig(level=level, handlers=[deferred], force=True)
    return context
