"""kopf handlers: thin. Each one reads, asks the planner, lets the executor act.

Every change of a TradingSymbol, and every change of a child the operator did not make itself,
triggers the same level-based `reconcile`; a timer resyncs as a safety net. Deletion drains."""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from trading_operator import api, naming
from trading_operator.builders import render_switches
from trading_operator.conditions import Reason
from trading_operator.drain import DrainStep, PositionsProbe, drain_decision
from trading_operator.executor import Executor
from trading_operator.kube import api_error_message, load_api_client
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.planner import NORMAL, WARNING, plan

log = logging.getLogger(__name__)

TS = (api.GROUP, api.VERSION, api.PLURAL)
CHILD_RESOURCES = (
    ("", "v1", "configmaps"),
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)
MANAGED = {"app.kubernetes.io/managed-by": naming.MANAGER}
RESYNC_SECONDS = float(os.environ.get("TRADEOPS_RESYNC_SECONDS", "60"))
DRAIN_POLL_SECONDS = float(os.environ.get("TRADEOPS_DRAIN_POLL_SECONDS", "2"))
MAX_CONCURRENT_RECONCILES = int(os.environ.get("TRADEOPS_MAX_CONCURRENT_RECONCILES", "8"))


@dataclass
class OperatorContext:
    """What the handlers share, kept in kopf's memo."""

    executor: Executor
    probe: PositionsProbe
    locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # Bounded and first-come-first-served: a burst of new symbols is worked through in order instead of
    # all sharing the client's threads and all finishing last.
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_RECONCILES))


def _context(memo: Any) -> OperatorContext:
    context: OperatorContext = memo["tradeops"]
    return context


def _backoff(retry: int) -> float:
    return float(min(2 ** retry, 30))


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Annotations (not status) hold kopf's bookkeeping: the status schema is the API's own."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{api.GROUP}/drain"
    settings.posting.level = logging.WARNING
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # A crashed leader is replaced within this time (kopf's default is 60 s).
    settings.peering.lifetime = int(os.environ.get("TRADEOPS_PEERING_LIFETIME", "15"))
    kube = AsyncKubeApi(load_api_client(os.environ.get("KUBECONFIG")))
    executor = Executor(kube, instance=os.environ.get("POD_NAME", os.uname().nodename))
    probe = PositionsProbe(os.environ.get("TRADEOPS_POSITIONS_URL", PositionsProbe().url_template))
    memo["tradeops"] = OperatorContext(executor=executor, probe=probe)


@kopf.on.cleanup()
async def close_client(memo: kopf.Memo, **_: Any) -> None:
    await _context(memo).executor.kube.close()


async def reconcile(context: OperatorContext, namespace: str, name: str) -> None:
    """Read, plan, act — one TradingSymbol at a time."""
    async with context.locks[(namespace, name)], context.slots:
        ts = await context.executor.get_trading_symbol(namespace, name)
        if ts is None:
            return
        observed = await context.executor.observe(ts)
        await context.executor.execute(ts, plan(observed))


async def _reconcile_or_retry(memo: Any, namespace: str, name: str, retry: int) -> None:
    try:
        await reconcile(_context(memo), namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {api_error_message(exc)}", delay=_backoff(retry)) from exc


@kopf.on.resume(*TS)
@kopf.on.create(*TS)
@kopf.on.update(*TS)
async def on_trading_symbol(*, namespace: str | None, name: str, memo: Any, retry: int, **_: Any) -> None:
    await _reconcile_or_retry(memo, namespace or "default", name, retry)


@kopf.on.event(*TS, annotations={naming.ROLLBACK_ANNOTATION: kopf.PRESENT})
async def on_rollback_request(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """kopf does not count annotation changes as updates; a rollback request is acted on at once."""
    try:
        await reconcile(_context(memo), namespace or "default", name)
    except ApiException as exc:  # the resync timer retries
        log.warning("rollback of %s/%s failed: %s", namespace, name, api_error_message(exc))


@kopf.timer(*TS, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await _reconcile_or_retry(memo, namespace or "default", name, 0)


async def on_child_event(*, type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A child changed: reconcile its owner unless the change is the operator's own write."""
    owner = body.metadata.labels.get(naming.OWNER_NAME_LABEL)
    namespace = body.metadata.namespace
    if owner is None or namespace is None or type is None:
        return
    context = _context(memo)
    if type != "DELETED" and context.executor.written.is_own(dict(body)):
        return
    try:
        await reconcile(context, namespace, owner)
    except ApiException as exc:  # the resync timer retries
        log.warning("reconcile of %s/%s after a %s event failed: %s", namespace, owner, type,
                    api_error_message(exc))


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.on.event(_group, _version, _plural, labels=MANAGED)(on_child_event)


@kopf.on.delete(*TS)
async def drain(*, namespace: str | None, name: str, body: kopf.Body, started: datetime.datetime, retry: int,
                memo: Any, **_: Any) -> None:
    """Switch trading off, wait (bounded) for no open positions, then let the children go."""
    context = _context(memo)
    ts = dict(body)
    namespace = namespace or "default"
    try:
        spec = api.TradingSymbolSpec.model_validate(body.spec)
        timeout_s, replicas = spec.drain.timeout_seconds, spec.replicas
    except ValueError:
        timeout_s, replicas = api.DrainSettings().timeout_seconds, 1
    try:
        switched = await context.executor.set_trading_switch(namespace, name, render_switches(False))
        has_pods = switched and replicas > 0
        if retry == 0:
            await context.executor.emit_event(ts, NORMAL, Reason.DRAINING,
                                              f"Trading switched off; draining (timeout {timeout_s}s)")
            status = {**(body.status or {}), "phase": api.Phase.TERMINATING.value,
                      "drainStarted": started.strftime("%Y-%m-%dT%H:%M:%SZ")}
            await context.executor.write_status(ts, status)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {api_error_message(exc)}", delay=_backoff(retry)) from exc
    positions = await context.probe.open_positions(namespace, name) if has_pods else 0
    elapsed = (datetime.datetime.now(datetime.UTC) - started.replace(tzinfo=datetime.UTC)).total_seconds()
    decision = drain_decision(positions, elapsed, timeout_s)
    if decision.step is DrainStep.WAIT:
        raise kopf.TemporaryError(decision.message, delay=DRAIN_POLL_SECONDS)
    reason, kind = (Reason.DRAINED, NORMAL) if decision.step is DrainStep.DONE \
        else (Reason.DRAIN_TIMED_OUT, WARNING)
    await context.executor.emit_event(ts, kind, reason, decision.message)
