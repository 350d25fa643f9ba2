"""The operator's reconcile as one trace (reconcile → observe, plan, apply), against the emulated API in the
test's event loop with the SDK's in-memory exporter; a reconcile that fails is a failed span with the error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from devstack.processes import install_crd
from tests.integration import emulator_fixtures
from tests.integration.operator_harness import create_ts, new_namespace
from tests.servers import free_port
from trading_operator import deploy_trace, tracing
from trading_operator.context import OperatorContext, reconcile
from trading_operator.drain import PositionsProbe
from trading_operator.executor import Executor
from trading_operator.kube import KubeApi
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.prometheus import MetricsSource
from trading_runtime.telemetry import revision_link

pytestmark = pytest.mark.integration
emulator = emulator_fixtures.emulator


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install(exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


@pytest.fixture
async def context_for(emulator) -> AsyncIterator[tuple[OperatorContext, KubeApi]]:
    api_client = emulator_fixtures.api_client_for(emulator.url)
    kube = KubeApi(api_client)
    await asyncio.to_thread(install_crd, kube)
    context = OperatorContext(executor=Executor(AsyncKubeApi(api_client)), probe=PositionsProbe(),
                              metrics=MetricsSource(None))
    try:
        yield context, kube
    finally:
        await context.executor.kube.close()
        context.metrics.close()
        api_client.close()


def finished(exporter: InMemorySpanExporter) -> dict[str, object]:
    assert tracing._provider is not None
    tracing._provider.force_flush()
    return {span.name: span for span in exporter.get_finished_spans()}


async def test_a_reconcile_is_one_trace_with_its_steps(context_for, spans):
    context, kube = context_for
    namespace = await asyncio.to_thread(new_namespace, kube)
    await asyncio.to_thread(create_ts, kube, namespace, "spy")
    await reconcile(context, namespace, "spy")
    found = finished(spans)
    assert {"reconcile", "observe", "plan", "apply"} <= set(found)
    root = found["reconcile"]
    assert root.parent is None
    assert root.attributes["tradeops.namespace"] == namespace
    assert root.attributes["tradeops.tradingsymbol"] == "spy"
    assert root.attributes["tradeops.actions"] > 0, "a new TradingSymbol gets its children"
    for step in ("observe", "plan", "apply"):
        assert found[step].parent.span_id == root.context.span_id
        assert found[step].context.trace_id == root.context.trace_id
    assert found["apply"].attributes["tradeops.actions"] == root.attributes["tradeops.actions"]
    assert root.resource.attributes["service.name"] == "tradeops-operator"


async def test_a_reconcile_that_fails_is_a_failed_span_with_the_error(spans):
    api_client = emulator_fixtures.api_client_for(f"http://127.0.0.1:{free_port()}")  # nothing listens
    context = OperatorContext(executor=Executor(AsyncKubeApi(api_client, timeout=5)), probe=PositionsProbe(),
                              metrics=MetricsSource(None))
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 (the client's connection error, whatever its class)
            await reconcile(context, "trading", "spy")
    finally:
        await context.executor.kube.close()
        context.metrics.close()
        api_client.close()
    root = finished(spans)["reconcile"]
    assert root.status.status_code is StatusCode.ERROR
    assert [event.name for event in root.events] == ["exception"]


def test_no_endpoint_means_no_tracing_and_the_current_context_is_a_traceparent():
    assert tracing.configure({}) is False
    assert tracing.endpoint_from({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == "http://c:4318/v1/traces"
    exporter = InMemorySpanExporter()
    tracing.install(exporter)
    try:
        with tracing.span("rollout") as current:
            parent = tracing.traceparent()
            context = current.get_span_context()
        assert parent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        assert context.trace_flags.sampled
    finally:
        tracing.shutdown()
    assert tracing.traceparent() is None


def test_a_deploys_steps_and_its_runtimes_decisions_share_the_deploys_trace():
    parent = deploy_trace.traceparent("trading", "spy-5f2a9c0e1b")
    assert parent == deploy_trace.traceparent("trading", "spy-5f2a9c0e1b"), "the same wherever it is computed"
    assert parent != deploy_trace.traceparent("trading", "spy-0000000000")
    assert parent != deploy_trace.traceparent("staging", "spy-5f2a9c0e1b")
    trace_id, span_id = deploy_trace.deploy_ids("trading", "spy-5f2a9c0e1b")
    link = revision_link(parent)  # what the runtime makes of TRADEOPS_REVISION_TRACEPARENT
    assert link is not None
    assert (link.context.trace_id, link.context.span_id) == (trace_id, span_id)
    exporter = InMemorySpanExporter()
    tracing.install(exporter)
    try:
        with tracing.deploy_span("analysis", "trading", "spy-5f2a9c0e1b", verdict="Successful"):
            pass
        (analysis,) = finished(exporter).values()
    finally:
        tracing.shutdown()
    assert analysis.context.trace_id == trace_id
    assert analysis.parent.span_id == span_id
    assert analysis.attributes["tradeops.revision"] == "spy-5f2a9c0e1b"
