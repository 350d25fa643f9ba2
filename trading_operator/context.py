"""What the handlers and the analysis loop share, and the one reconcile they all call."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trading_operator import deploy_steps, metrics, tracing
from trading_operator.api import ModelRef
from trading_operator.drain import PositionsProbe
from trading_operator.executor import Executor
from trading_operator.findings import FindingStore
from trading_operator.kube import is_conflict
from trading_operator.model_registry import ModelRegistry
from trading_operator.planner import parse_status, plan
from trading_operator.prometheus import MetricsSource

MAX_CONCURRENT_RECONCILES = int(os.environ.get("TRADEOPS_MAX_CONCURRENT_RECONCILES", "8"))
MAX_CONFLICTS = 5
"""Re-reads and re-plans after a 409 before the conflict goes to the caller (kopf retries with backoff)."""

log = logging.getLogger(__name__)


@dataclass
class OperatorContext:
    """What the handlers share, kept in kopf's memo."""

    executor: Executor
    probe: PositionsProbe
    metrics: MetricsSource
    findings: FindingStore = field(default_factory=FindingStore)
    """What the analysis loop measured, until the planner has folded it into a committed status."""
    locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # Bounded and first-come-first-served: a burst of new symbols is worked through in order instead of
    # all sharing the client's threads and all finishing last.
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_RECONCILES))
    model_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    """When each symbol's model serving was last measured (model_health.py)."""
    regime_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    """When each symbol's regime detectors were last measured (regime_watch.py)."""
    background_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    """When each symbol's stable revision was last measured in the background (`analysis_work.next_work`)."""
    models: ModelRegistry = field(default_factory=lambda: ModelRegistry(os.environ.get("MLFLOW_TRACKING_URI")))
    """The MLflow model registry `spec.model` is resolved against."""
    reconciled_at: dict[tuple[str, str], float] = field(default_factory=dict)
    """When each TradingSymbol was last reconciled (time.monotonic): a resync is due only after a quiet spell."""
    latest: Callable[[tuple[str, str]], Mapping[str, Any] | None] | None = None
    """The TradingSymbol's body from the latest watch event (the scheduler's), if any: a reconcile whose plan
    only writes the status saves reading it from the API."""
    written: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    """The TradingSymbol as the operator's last status write left it, until the watch shows that version: the
    next reconcile plans from it, not from the older body the watch still holds (whose write would lose)."""

    def seen(self, body: Mapping[str, Any]) -> None:
        """A watch event of a TradingSymbol: once it shows the operator's last write, the watch is current."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        written = self.written.get(key)
        if written is not None and _version(written) == _version(body):
            del self.written[key]

    def known(self, key: tuple[str, str]) -> Mapping[str, Any] | None:
        """The newest body of a TradingSymbol the operator holds without asking the API."""
        written = self.written.get(key)
        return written if written is not None else (self.latest(key) if self.latest is not None else None)


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _shows(latest: Callable[[tuple[str, str]], Mapping[str, Any] | None] | None, key: tuple[str, str],
           written: Mapping[str, Any]) -> bool:
    """The watch already delivered this version (its event came before the write's answer)."""
    body = latest(key) if latest is not None else None
    return body is not None and _version(body) == _version(written)


def model_ref(spec: dict[str, Any]) -> ModelRef | None:
    """The spec's model reference (None: none, or an invalid one the planner rejects with the spec)."""
    try:
        return ModelRef.model_validate(spec["model"]) if spec.get("model") else None
    except ValidationError:
        return None


async def reconcile(context: OperatorContext, namespace: str, name: str) -> str | None:
    """Read, plan, act — one TradingSymbol at a time. Returns why it must run again soon (kopf's handlers
    retry with backoff), or None."""
    async with context.locks[(namespace, name)], context.slots:
        return await reconcile_locked(context, namespace, name)


async def reconcile_locked(context: OperatorContext, namespace: str, name: str) -> str | None:
    """`reconcile` for a caller that already holds the TradingSymbol's lock. A status or child write that loses
    to a concurrent change (409: kopf's own annotations, a user's request, a second operator, a controller, or
    a child the informer had not caught up with) re-reads from the API and re-plans: no decision is ever
    written over state it did not see."""
    key = (namespace, name)
    metrics.RECONCILES.inc()
    watched = context.latest is not None
    fresh_children = False
    with tracing.span("reconcile", namespace=namespace, tradingsymbol=name) as current:
        for attempt in range(1, MAX_CONFLICTS + 1):
            # The TradingSymbol as the operator last wrote it or the watch last showed it serves a plan that only
            # writes its status (locked on that version); a plan with any other action, or with none, is
            # confirmed by the API's answer (the same version) or made again from it.
            body = context.known(key) if watched else None
            if body is not None and not body.get("status"):
                body = None  # a new one: its first plan creates the children (and kopf is adding its finalizer)
            ts = dict(body) if body is not None else await context.executor.get_trading_symbol(namespace, name)
            if ts is None:
                context.written.pop(key, None)
                context.findings.forget(key)
                context.model_checks.pop(key, None)
                context.regime_checks.pop(key, None)
                context.background_checks.pop(key, None)
                metrics.forget_symbol(namespace, name)
                context.reconciled_at.pop(key, None)
                return None
            with tracing.span("observe"):
                # The informer's store first; after a conflict the API itself (the store may lag behind).
                observed = await context.executor.observe(ts, fresh=fresh_children)
                ref = model_ref(observed.spec)
                observed = dataclasses.replace(
                    observed, findings=context.findings.pending(key),
                    model=await context.models.resolve(ref, observed.now) if ref is not None else None,
                    tracking_uri=context.models.url)
            with tracing.span("plan"):
                result = plan(observed)
            current.set_attribute("tradeops.actions", len(result.actions))
            current.set_attribute("tradeops.attempts", attempt)
            if body is not None and (result.actions or result.status is None):
                # Any other action, or none at all (a stale body could hide a change), waits for the API's word.
                watched = False
                fresh = await context.executor.get_trading_symbol(namespace, name)
                if fresh is None or _version(fresh) != _version(ts):
                    context.written.pop(key, None)
                    continue  # planned from a TradingSymbol that has changed since: plan again
                ts = fresh
            with tracing.span("apply", actions=len(result.actions)):
                try:
                    await context.executor.apply_children(ts, result, observed)
                except Exception as exc:
                    if not is_conflict(exc) or attempt == MAX_CONFLICTS:
                        raise
                    log.info("a child of %s/%s changed while planning (attempt %d); re-planning", namespace, name,
                             attempt)
                    watched, fresh_children = False, True
                    continue
                try:
                    written = await context.executor.commit(ts, result)
                except Exception as exc:
                    context.written.pop(key, None)
                    if not is_conflict(exc) or attempt == MAX_CONFLICTS:
                        raise
                    log.info("%s/%s changed while planning (attempt %d); re-planning", namespace, name, attempt)
                    watched = False  # the TradingSymbol is read again; the children were current
                    continue
                if written is not None and not _shows(context.latest, key, written):
                    context.written[key] = written
            context.findings.consume(key, observed.findings)
            deploy_steps.record(namespace, observed.revisions, parse_status(observed.status), result)
            await context.executor.announce(ts, result)
            context.reconciled_at[key] = time.monotonic()
            return result.retry
    return None
