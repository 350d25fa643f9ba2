"""kopf handlers: thin. Each one reads, asks the planner, lets the executor act.

Every change of a TradingSymbol, and every change of a child the operator did not make itself,
triggers the same level-based `reconcile`. One shared scheduler (`symbol_scheduler.py`) runs every symbol's
analysis looks and the resync safety net; kopf's per-object daemon only says which symbols take part.
Deletion drains."""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import pathlib
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from policies.loader import default_policies, load_layered
from trading_operator import api, claims, naming
from trading_operator.analysis_loop import analysis_tick
from trading_operator.builders import render_switches
from trading_operator.conditions import Reason
from trading_operator.context import OperatorContext, reconcile
from trading_operator.drain import DrainStep, PositionsProbe, drain_decision
from trading_operator.executor import Executor
from trading_operator.kube import api_error_message, load_api_client
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.planner import NORMAL, WARNING
from trading_operator.progress import problem_of
from trading_operator.prometheus import MetricsSource
from trading_operator.restarts import recently_restarted
from trading_operator.symbol_scheduler import SymbolScheduler
from trading_operator.timestamps import now_rfc3339

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
"""A symbol nothing has reconciled for this long is reconciled (a safety net: events drive reconciles)."""
DRAIN_POLL_SECONDS = float(os.environ.get("TRADEOPS_DRAIN_POLL_SECONDS", "2"))
RESTART_RECENT_SECONDS = 60.0
"""A pod whose container ended this recently is reconciled on its updates (it restarted: counted)."""


def _context(memo: Any) -> OperatorContext:
    context: OperatorContext = memo["tradeops"]
    return context


def _backoff(retry: int) -> float:
    return float(min(2 ** retry, 30))


@kopf.index(*TS)
def symbol_claims(*, body: kopf.Body, namespace: str | None, **_: Any) -> dict[str, claims.Claim] | None:
    """Which TradingSymbol names which symbol, per namespace, kept from the watch: the planner decides who owns
    a symbol without listing the namespace at every reconcile."""
    claim = claims.claim_of(dict(body))
    return {namespace or "default": claim} if claim is not None else None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
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
    policies_dir = os.environ.get("TRADEOPS_POLICIES_DIR")
    policy_set = load_layered(pathlib.Path(policies_dir)) if policies_dir else default_policies()
    index: kopf.Index[str, claims.Claim] = kwargs["symbol_claims"]  # live: kopf keeps it from the watch
    executor = Executor(kube, instance=os.environ.get("POD_NAME", os.uname().nodename), policies=policy_set,
                        claim_source=lambda namespace: list(index.get(namespace, ())))
    probe = PositionsProbe(os.environ.get("TRADEOPS_POSITIONS_URL", PositionsProbe().url_template))
    metrics = MetricsSource(os.environ.get("TRADEOPS_PROMETHEUS_URL"))
    context = OperatorContext(executor=executor, probe=probe, metrics=metrics)
    memo["tradeops"] = context

    async def look(namespace: str, name: str, body: Any) -> float:
        return await analysis_tick(context, namespace, name, body)

    async def resync(namespace: str, name: str) -> None:
        await reconcile(context, namespace, name)

    scheduler = SymbolScheduler(look, resync, RESYNC_SECONDS, context.reconciled_at)
    memo["tradeops_scheduler"] = scheduler
    memo["tradeops_scheduler_task"] = asyncio.create_task(scheduler.run(), name="tradeops-scheduler")


@kopf.on.cleanup()
async def close_client(memo: kopf.Memo, **_: Any) -> None:
    context = _context(memo)
    task: asyncio.Task[None] = memo["tradeops_scheduler_task"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await memo["tradeops_scheduler"].stop()
    await context.executor.kube.close()
    context.metrics.close()
    context.models.close()


async def _reconcile_or_retry(memo: Any, namespace: str, name: str, retry: int) -> None:
    try:
        again = await reconcile(_context(memo), namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {api_error_message(exc)}", delay=_backoff(retry)) from exc
    if again is not None:
        raise kopf.TemporaryError(again, delay=_backoff(retry))


async def _hand_over(memo: Any, namespace: str, symbol: str, released_by: str) -> None:
    """A symbol was released (its owner is gone): its waiting claimants are reconciled
    now, so the next owner starts at once, not at the next resync."""
    context = _context(memo)
    for waiting in claims.waiting(await context.executor.claims(namespace), symbol, released_by):
        try:
            await reconcile(context, namespace, waiting)
        except ApiException as exc:  # the resync timer retries
            log.warning("hand-over of %s to %s/%s failed: %s", symbol, namespace, waiting, api_error_message(exc))


@kopf.on.resume(*TS)
@kopf.on.create(*TS)
@kopf.on.update(*TS)
async def on_trading_symbol(*, namespace: str | None, name: str, memo: Any, retry: int, **_: Any) -> None:
    # No hand-over on update: spec.symbol is immutable (the CRD's rule; the planner refuses one that got
    # through and keeps its claim), so a symbol is released only when its TradingSymbol is deleted.
    await _reconcile_or_retry(memo, namespace or "default", name, retry)


@kopf.on.event(*TS, id="released", when=lambda type, **_: type == "DELETED")
async def on_deleted(*, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """The owner of a symbol is gone (drained, finalizer removed): the next claimant takes over."""
    claim = claims.claim_of(dict(body))
    if claim is not None:
        await _hand_over(memo, namespace or "default", claim.symbol, name)


async def on_request(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """kopf does not count annotation changes as updates; a request (rollback, promote, abort, retry) is
    acted on at once."""
    try:
        await reconcile(_context(memo), namespace or "default", name)
    except ApiException as exc:  # the scheduler's resync retries
        log.warning("request on %s/%s failed: %s", namespace, name, api_error_message(exc))


for _annotation in naming.REQUEST_ANNOTATIONS:
    kopf.on.event(*TS, id=f"request:{_annotation}", annotations={_annotation: kopf.PRESENT})(on_request)


@kopf.daemon(*TS, cancellation_timeout=5.0)
async def take_part(*, stopped: kopf.DaemonStopped, namespace: str | None, name: str, body: kopf.Body, memo: Any,
                    **_: Any) -> None:
    """The symbol takes part in the shared scheduler while kopf runs this daemon: kopf stops it when the
    operator pauses (peering) or the symbol is being deleted, and starts it again on resumption. It sleeps:
    the scheduler does the work."""
    scheduler: SymbolScheduler = memo["tradeops_scheduler"]
    scheduler.attach(dict(body))
    try:
        await stopped.wait()
    finally:
        scheduler.detach((namespace or "default", name))


@kopf.on.event(*TS)
async def schedule(*, type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    """Every event of a TradingSymbol reaches the shared scheduler: it keeps the latest body and looks at it."""
    scheduler: SymbolScheduler = memo["tradeops_scheduler"]
    scheduler.observe(type, dict(body))


def _not_own_write(*, type: str | None, body: kopf.Body, memo: Any, **_: Any) -> bool:
    """kopf's filter: a child event that is not the echo of the operator's own write (filtered before the
    handler is invoked: kopf then neither calls nor logs it)."""
    return type == "DELETED" or not _context(memo).executor.written.is_own(dict(body))


def _pod_in_trouble(*, type: str | None, body: kopf.Body, **_: Any) -> bool:
    """A pod with a problem, or one whose container just restarted (counted towards a crash loop)."""
    pod = dict(body)
    return type != "DELETED" and (problem_of(pod) is not None
                                  or recently_restarted(pod, now_rfc3339(), RESTART_RECENT_SECONDS))


async def on_child_event(*, type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A child changed, and not by the operator's own write: reconcile its owner."""
    owner = body.metadata.labels.get(naming.OWNER_NAME_LABEL)
    namespace = body.metadata.namespace
    if owner is None or namespace is None or type is None:
        return
    try:
        await reconcile(_context(memo), namespace, owner)
    except ApiException as exc:  # the scheduler's resync retries
        log.warning("reconcile of %s/%s after a %s event failed: %s", namespace, owner, type,
                    api_error_message(exc))


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.on.event(_group, _version, _plural, labels=MANAGED, when=_not_own_write)(on_child_event)


@kopf.on.event("", "v1", "pods", labels=MANAGED, when=_pod_in_trouble)
async def on_pod_event(*, type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A crash loop or an image that cannot be pulled shows on a Pod first (its Deployment may not change):
    reconcile then, and after a container restart (the planner counts them: a crash loop between ready flaps).
    Pods changing for any other reason (probes) are left to the Deployment's own events, so a busy fleet does
    not cost a reconcile per pod status update (`_pod_in_trouble` filters them before the handler runs)."""
    await on_child_event(type=type, body=body, memo=memo)


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
            await reconcile(context, namespace, name)  # the planner writes phase Terminating and drainStarted
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
