"""A committed plan's deploy steps — an analysis verdict, a promotion, a rollback — are spans in the deploy
trace of the revision concerned (the trace its runtimes link to), with the verdict and the reason, and an
analysis span starts when its run started. The SDK's in-memory exporter receives them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trading_operator import api, deploy_steps, deploy_trace, tracing
from trading_operator.conditions import Reason
from trading_operator.plans import Plan
from trading_operator.revisions import Revision, template_of
from trading_operator.timestamps import parse_time

SPEC = api.TradingSymbolSpec.model_validate({"symbol": "SPY", "market": "equity-options",
                                             "image": "ghcr.io/x/runtime:1"})
REVISIONS = [Revision(n, f"spy-{n:010d}", f"{n:010d}", template_of(SPEC)) for n in (2, 3)]
STARTED = "2026-12-06T07:00:00Z"
RUNNING = api.AnalysisRun(revision=3, kind=api.AnalysisKind.ROLLOUT, started_at=STARTED)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = tracing.install(exporter)
    try:
        yield exporter
    finally:
        provider.force_flush()
        tracing.shutdown()


def status(**fields: object) -> api.TradingSymbolStatus:
    return api.TradingSymbolStatus.model_validate(fields)


def committed(before: api.TradingSymbolStatus, after: api.TradingSymbolStatus, *events: tuple[Reason, str],
              exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    plan = Plan(status=after.model_dump(by_alias=True, mode="json", exclude_none=True))
    for reason, message in events:
        plan.event("Normal", reason, message)
    deploy_steps.record("trading", REVISIONS, before, plan)
    assert tracing._provider is not None
    tracing._provider.force_flush()
    return list(exporter.get_finished_spans())


def in_deploy_of(span: ReadableSpan, revision_name: str) -> None:
    trace_id, span_id = deploy_trace.deploy_ids("trading", revision_name)
    assert span.context is not None
    assert span.parent is not None
    assert (span.context.trace_id, span.parent.span_id) == (trace_id, span_id)


def test_a_passed_run_and_its_promotion_are_spans_of_the_new_revisions_deploy(exporter):
    ended = RUNNING.model_copy(update={"phase": api.AnalysisPhase.SUCCESSFUL, "message": "error ratio 0.1 % ok",
                                       "finished_at": "2026-12-06T07:10:00Z"})
    spans = committed(status(stableRevision=2, currentRevision=3, analysis=RUNNING),
                      status(stableRevision=3, currentRevision=3, analysis=ended),
                      (Reason.PROMOTED, "Revision 3 promoted to stable (analysis passed)"), exporter=exporter)
    analysis, promotion = spans
    assert (analysis.name, promotion.name) == ("analysis", "promotion")
    for span in spans:
        in_deploy_of(span, "spy-0000000003")
    assert analysis.attributes is not None
    assert promotion.attributes is not None
    assert analysis.attributes["tradeops.verdict"] == "Successful"
    assert analysis.attributes["tradeops.reason"] == "error ratio 0.1 % ok"
    assert analysis.attributes["tradeops.kind"] == "Rollout"
    assert analysis.start_time == int(parse_time(STARTED).timestamp() * 1e9)
    assert dict(promotion.attributes) == {
        "tradeops.namespace": "trading", "tradeops.revision": "spy-0000000003", "tradeops.revision_number": 3,
        "tradeops.verdict": "Promoted", "tradeops.reason": "Revision 3 promoted to stable (analysis passed)",
        "tradeops.previous_stable_revision": 2}


def test_a_failed_run_and_its_rollback_are_spans_of_the_rolled_back_revisions_deploy(exporter):
    failed = RUNNING.model_copy(update={"phase": api.AnalysisPhase.FAILED, "message": "error ratio 4 % > 1 %"})
    rollback = api.RollbackRecord(from_revision=3, to_revision=2, reason="AnalysisFailed", time=STARTED)
    spans = committed(status(stableRevision=2, currentRevision=3, analysis=RUNNING),
                      status(stableRevision=2, currentRevision=2, analysis=failed, lastRollback=rollback,
                             abortedRevision=3),
                      (Reason.ROLLED_BACK, "Rolled back 3 -> 2: error ratio 4 % > 1 %"), exporter=exporter)
    assert [s.name for s in spans] == ["analysis", "rollback"]
    for span in spans:
        in_deploy_of(span, "spy-0000000003")
    attributes = spans[1].attributes
    assert attributes is not None
    assert (attributes["tradeops.verdict"], attributes["tradeops.to_revision"]) == ("RolledBack", 2)
    assert attributes["tradeops.reason"] == "Rolled back 3 -> 2: error ratio 4 % > 1 %"
    assert spans[0].attributes is not None
    assert spans[0].attributes["tradeops.verdict"] == "Failed"


def test_a_verdict_already_committed_or_a_pruned_revision_adds_no_span(exporter):
    ended = RUNNING.model_copy(update={"phase": api.AnalysisPhase.SUCCESSFUL})
    assert committed(status(analysis=ended), status(analysis=ended), exporter=exporter) == []
    pruned = RUNNING.model_copy(update={"revision": 1, "phase": api.AnalysisPhase.FAILED})
    assert committed(status(analysis=RUNNING.model_copy(update={"revision": 1})), status(analysis=pruned),
                     exporter=exporter) == []
    assert committed(status(), status(), exporter=exporter) == []
