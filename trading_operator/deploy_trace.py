"""The trace of a deploy — pure. A revision's rollout, its analysis runs, its promotion or rollback and every
decision its runtimes make share one W3C trace context derived from the revision's identity (namespace and
ControllerRevision name), so it needs no storage, survives an operator restart, and is the same wherever it
is computed: in the builders (the pod's `TRADEOPS_REVISION_TRACEPARENT`, the revision's annotation) and in
the operator's spans (`trading_operator.tracing.deploy_span`).

"Which deploy made SPY slow" is then one query: the slow ticks link to the trace id of their revision's
deploy."""

from __future__ import annotations

import hashlib

from trading_operator.identity import GROUP

TRACEPARENT_ANNOTATION = f"{GROUP}/traceparent"
"""On a ControllerRevision: the W3C traceparent of its deploy."""
TRACEPARENT_ENV = "TRADEOPS_REVISION_TRACEPARENT"
"""In a runtime pod: the traceparent its kept decisions link to (trading_runtime/telemetry.py)."""


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def deploy_ids(namespace: str, revision_name: str) -> tuple[int, int]:
    """(trace id, span id) of a revision's deploy: 128 and 64 bits, never zero (W3C forbids all-zero ids)."""
    digest = _digest("tradeops-deploy", namespace, revision_name)
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


def traceparent(namespace: str, revision_name: str) -> str:
    """The deploy's context as a W3C `traceparent` (version 00, sampled)."""
    trace_id, span_id = deploy_ids(namespace, revision_name)
    return f"00-{trace_id:032x}-{span_id:016x}-01"
