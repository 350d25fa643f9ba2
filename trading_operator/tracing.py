"""The operator's traces (OpenTelemetry): one trace per reconcile — `reconcile` with `observe`, `plan` and
`apply` under it — so a slow or failing reconcile shows where its time went; and the steps of a revision's
deploy (`deploy_span`: analysis, promotion, rollback) in the deploy's own trace, whose context
(`trading_operator.deploy_trace`) the runtime links every kept decision to (`TRADEOPS_REVISION_TRACEPARENT`,
see trading_runtime/telemetry.py).

Call sites use `span()` (a context manager; a no-op span when tracing is off, so nothing else changes), and
`traceparent()` for the current span's context in W3C form. The SDK is started at the operator's startup
(`configure`, from kopf's startup), never at import. Settings are the standard OpenTelemetry variables:
`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` (none: no tracing), `..._HEADERS`, `OTEL_SERVICE_NAME`
(`tradeops-operator`); reconciles are rare next to ticks, so every one is kept. Export is batched by the
SDK's processor on a thread of its own; a full queue drops spans (never blocks a reconcile)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import kopf
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from trading_operator import deploy_trace

log = logging.getLogger(__name__)

SERVICE = "tradeops-operator"
TRACER = "trading_operator"
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def endpoint_from(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL the standard variables name, or None."""
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else None


def install(exporter: SpanExporter, service: str = SERVICE) -> TracerProvider:
    """Make `exporter` receive the operator's spans (batched); returns the provider (tests shut it down)."""
    global _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    return provider


def tracer() -> trace.Tracer:
    """The operator's tracer: the installed provider's, else the global (no-op unless someone set one)."""
    return (_provider or trace.get_tracer_provider()).get_tracer(TRACER)


def configure(env: Mapping[str, str] | None = None) -> bool:
    """Start exporting when an endpoint is configured; True if tracing is on."""
    values = os.environ if env is None else env
    endpoint = endpoint_from(values)
    if endpoint is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    install(OTLPSpanExporter(endpoint=endpoint), values.get("OTEL_SERVICE_NAME") or SERVICE)
    log.info("tracing: exporting the operator's spans to %s", endpoint)
    return True


def shutdown() -> None:
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


@contextlib.contextmanager
def span(span_name: str, parent: Context | None = None, start_time: int | None = None,
         **attributes: str | int | float | bool) -> Iterator[Span]:
    """A span around a step, child of the current one (or of `parent`), begun now or at `start_time` (ns since
    the epoch: a step that began before it was seen to end); an exception marks it failed and goes on."""
    with tracer().start_as_current_span(
            span_name, context=parent, start_time=start_time,
            attributes={f"tradeops.{key}": value for key, value in attributes.items()},
            record_exception=True, set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as error:
            current.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise


def deploy_context(namespace: str, revision_name: str) -> Context:
    """The deploy of a revision as a (remote, sampled) parent: its analysis, promotion or rollback spans go
    into the deploy's trace, the one its runtimes' decisions link to."""
    trace_id, span_id = deploy_trace.deploy_ids(namespace, revision_name)
    parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def deploy_span(step: str, namespace: str, revision_name: str, start_time: int | None = None,
                **attributes: str | int | float | bool) -> contextlib.AbstractContextManager[Span]:
    """A step of a revision's deploy (`analysis`, `promotion`, `rollback`), in the deploy's trace."""
    return span(step, deploy_context(namespace, revision_name), start_time, namespace=namespace,
                revision=revision_name, **attributes)


def traceparent() -> str | None:
    """The current span's context as a W3C `traceparent`, or None when nothing is traced."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


@kopf.on.startup()
async def start_tracing(**_: Any) -> None:
    configure()


@kopf.on.cleanup()
async def stop_tracing(**_: Any) -> None:
    shutdown()
