"""kopf handlers: thin. Each one reads, asks the planner, lets the executor act.

One shared scheduler (`symbol_scheduler.py`) runs every symbol's reconciles, analysis looks and the resync
safety net: a TradingSymbol is reconciled when first seen, when its generation, labels or annotations
change, and when somebody else changes one of its children. The children are watched by the operator's own
informer (`informer.py`), whose store serves the reconciles' reads; kopf watches the TradingSymbols only, and
its per-object daemon only says which symbols take part. Deletion drains."""

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
from trading_operator.child_store import Change
from trading_operator.conditions import Reason
from trading_operator.context import OperatorContext, reconcile
from trading_operator.drain import DrainStep, PositionsProbe, drain_decision
from trading_operator.executor import OBSERVED_KINDS, Executor
from trading_operator.informer import Informer
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
WATCHED_NAMESPACES: list[str] = []
"""The namespaces the operator serves (`--namespace`; empty: the whole cluster), for the informer's watches."""
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
async def symbol_claims(*, body: kopf.Body, namespace: str | None, **_: Any) -> dict[str, claims.Claim] | None:
    """Which TradingSymbol names which symbol, per namespace, kept from the watch: the planner decides who owns
    a symbol without listing the namespace at every reconcile."""
    claim = claims.claim_of(dict(body))
    return {namespace or "default": claim} if claim is not None else None


class SymbolsNotDiffed(kopf.AnnotationsDiffBaseStorage):
    """kopf deep-copies every event's body into a diff base to find on.update causes; TradingSymbols have no
    on.create/on.update handlers (the scheduler compares generation, labels and annotations), so theirs is
    empty, built and fetched alike (never different: kopf never writes one): a third of kopf's work per
    TradingSymbol event. FleetRollouts keep kopf's diffing."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if body.get("kind") == api.KIND:
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if body.get("kind") == api.KIND:
            return kopf.BodyEssence()
        return super().fetch(body=body)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """Annotations (not status) hold kopf's bookkeeping: the status schema is the API's own."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = SymbolsNotDiffed(prefix=api.GROUP, key="last-handled-configuration")
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
    informer = Informer(kube, OBSERVED_KINDS, _plain_namespaces(WATCHED_NAMESPACES),
                        on_change=lambda change: _child_changed(memo, change))
    executor = Executor(kube, instance=os.environ.get("POD_NAME", os.uname().nodename), policies=policy_set,
                        claim_source=lambda namespace: list(index.get(namespace, ())), store=informer.store)
    probe = PositionsProbe(os.environ.get("TRADEOPS_POSITIONS_URL", PositionsProbe().url_template))
    metrics = MetricsSource(os.environ.get("TRADEOPS_PROMETHEUS_URL"))
    context = OperatorContext(executor=executor, probe=probe, metrics=metrics)
    memo["tradeops"] = context

    async def look(namespace: str, name: str, body: Any) -> float:
        return await analysis_tick(context, namespace, name, body)

    async def reconcile_one(namespace: str, name: str) -> str | None:
        return await reconcile(context, namespace, name)

    scheduler = SymbolScheduler(look, reconcile_one, RESYNC_SECONDS, context.reconciled_at)
    context.latest = scheduler.body
    memo["tradeops_scheduler"] = scheduler
    memo["tradeops_scheduler_task"] = asyncio.create_task(scheduler.run(), name="tradeops-scheduler")
    memo["tradeops_informer"] = informer
    informer.start()


def _plain_namespaces(namespaces: list[str]) -> list[str]:
    """The namespaces to watch one by one; none (the whole cluster) when any is a kopf pattern (a glob, a list,
    an exclusion)."""
    return [] if any(set(ns) & set("*?[!,") or ns.startswith("-") for ns in namespaces) else namespaces


def _child_changed(memo: Any, change: Change) -> None:
    """Somebody else changed a child (not the echo of the operator's own write): reconcile its owner. Pods
    only count with a problem, or when their container just restarted (counted towards a crash loop): pods
    changing for any other reason (probes) are left to their Deployment's own changes, so a busy fleet does not
    cost a reconcile per pod status update."""
    if change.own:
        return
    if change.kind == "Pod" and not _pod_in_trouble(change.event_type, change.obj):
        return
    meta = change.obj.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(naming.OWNER_NAME_LABEL)
    if owner and meta.get("namespace"):
        scheduler: SymbolScheduler = memo["tradeops_scheduler"]
        scheduler.poke((str(meta["namespace"]), str(owner)))


@kopf.on.cleanup()
async def close_client(memo: kopf.Memo, **_: Any) -> None:
    context = _context(memo)
    task: asyncio.Task[None] = memo["tradeops_scheduler_task"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await memo["tradeops_scheduler"].stop()
    await memo["tradeops_informer"].stop()
    await context.executor.kube.close()
    context.metrics.close()
    context.models.close()


def _hand_over(memo: Any, namespace: str, symbol: str, released_by: str) -> None:
    """A symbol was released (its owner is gone): its waiting claimants are reconciled
    now, so the next owner starts at once, not at the next resync."""
    context = _context(memo)
    scheduler: SymbolScheduler = memo["tradeops_scheduler"]
    index = context.executor.claim_source(namespace) if context.executor.claim_source is not None else ()
    for waiting in claims.waiting(tuple(index), symbol, released_by):
        scheduler.poke((namespace, waiting))


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
    """Every event of a TradingSymbol reaches the shared scheduler: it keeps the latest body, looks at it, and
    reconciles it when its spec, labels or annotations (a request) changed. One that is gone (drained, finalizer
    removed) releases its symbol: the next claimant takes over. No hand-over on update: spec.symbol is immutable
    (the CRD's rule; the planner refuses one that got through and keeps its claim)."""
    scheduler: SymbolScheduler = memo["tradeops_scheduler"]
    new = dict(body)
    _context(memo).seen(new)
    meta = new.get("metadata") or {}
    key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
    scheduler.observe(type, new)
    if type == "DELETED" and (claim := claims.claim_of(new)) is not None:
        _hand_over(memo, key[0], claim.symbol, key[1])


def _pod_in_trouble(event_type: str, pod: dict[str, Any]) -> bool:
    """A pod with a problem, or one whose container just restarted (counted towards a crash loop)."""
    return event_type != "DELETED" and (problem_of(pod) is not None
                                        or recently_restarted(pod, now_rfc3339(), RESTART_RECENT_SECONDS))


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
