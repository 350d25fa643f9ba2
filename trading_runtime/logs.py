"""Logs in the Elastic Common Schema: one JSON object per line (`ecs-logging`), with `service.name`,
`labels.symbol` and `labels.revision`, and `trace.id`/`span.id` of the span the line belongs to, so a log
line and its trace join on one id.

The ids come from the current OpenTelemetry span; on a runtime's tick path, where spans are created only
after a tick is kept (trading_runtime/telemetry.py), from the tick being handled (`LogContext.tick_ids`),
which the line then keeps. ecs-logging itself copies only Elastic APM's ids, hence the filter.

Any tradeops process calls `configure(service)` once at start; nothing here is runtime-specific."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


def configure(service: str, context: LogContext | None = None, level: int = logging.INFO,
              stream: IO[str] | None = None) -> LogContext:
    """ECS JSON lines on `stream` (stdout) for every logger of the process; returns the context to update."""
    context = context or LogContext()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(ecs_logging.StdlibFormatter(extra={"service.name": service}))
    handler.addFilter(_Correlate(context))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return context
