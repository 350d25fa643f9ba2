"""kopf handlers and the I/O edge of FleetRollouts: read the rollout and the TradingSymbols of its namespace,
ask `fleet_planner`, put the change on (or take it off) symbols, reconcile each symbol touched at once, write
the rollout's status (here only) and its Events.

A timer re-reads every `TRADEOPS_FLEET_INTERVAL_SECONDS` (5 s): a wave waits on its symbols' analyses,
which take tens of seconds, so polling their status is cheap and simpler than mapping every symbol's
status change back to the rollouts that select it."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from trading_operator.context import OperatorContext, reconcile
from trading_operator.executor import TRADING_SYMBOLS, merge_patch
from trading_operator.fleet_api import (
    FLEET_ABORT_ANNOTATION,
    FLEET_API_VERSION,
    FLEET_KIND,
    FLEET_PLURAL,
    FLEET_RETRY_ANNOTATION,
)
from trading_operator.fleet_override import FLEET_CHANGE_ANNOTATION, FleetOverride, read_override
from trading_operator.fleet_planner import (
    ClearChange,
    ConsumeAbort,
    ConsumeRetry,
    FleetObserved,
    ObservedSymbol,
    SetChange,
    plan_waves,
)
from trading_operator.identity import GROUP, VERSION
from trading_operator.kube import EVENTS, Obj, Resource, api_error_message
from trading_operator.planner import EmitEvent, parse_status
from trading_operator.timestamps import now_rfc3339

log = logging.getLogger(__name__)

FLEETS = (GROUP, VERSION, FLEET_PLURAL)
FLEET_ROLLOUTS = Resource(FLEET_API_VERSION, FLEET_PLURAL)
INTERVAL_SECONDS = float(os.environ.get("TRADEOPS_FLEET_INTERVAL_SECONDS", "5"))
_locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = collections.defaultdict(asyncio.Lock)


def _foreign(raw: str) -> FleetOverride:
    """An annotation that does not parse belongs to nobody this rollout knows: it is left alone (the symbol
    itself reports it as Invalid)."""
    return FleetOverride(rollout=f"(unreadable: {raw[:40]})", change="")


def _observed_symbol(ts: Obj) -> ObservedSymbol:
    meta = ts["metadata"]
    annotations = meta.get("annotations") or {}
    try:
        override = read_override(annotations)
    except ValueError:
        override = _foreign(annotations.get(FLEET_CHANGE_ANNOTATION, ""))
    return ObservedSymbol(meta["name"], dict(meta.get("labels") or {}), dict(ts.get("spec") or {}), override,
                          parse_status(ts.get("status") or {}))


async def reconcile_fleet(context: OperatorContext, namespace: str, name: str) -> None:
    """Read, plan, act for one FleetRollout."""
    kube = context.executor.kube
    async with _locks[(namespace, name)]:
        rollout = await kube.get_or_none(FLEET_ROLLOUTS, namespace, name)
        if rollout is None:
            return
        meta = rollout["metadata"]
        annotations = meta.get("annotations") or {}
        symbols = await kube.list_objects(TRADING_SYMBOLS, namespace)
        observed = FleetObserved(
            name=name, generation=int(meta.get("generation") or 0), spec=dict(rollout.get("spec") or {}),
            status=dict(rollout.get("status") or {}),
            symbols=[_observed_symbol(ts) for ts in symbols if not ts["metadata"].get("deletionTimestamp")],
            now=now_rfc3339(), abort_request=annotations.get(FLEET_ABORT_ANNOTATION),
            retry_request=annotations.get(FLEET_RETRY_ANNOTATION))
        result = plan_waves(observed)
        # The decision is committed first, against the version it was planned from: a plan that lost a race
        # (409) does nothing, and actions cut short are re-planned from the committed state (a symbol of a
        # started wave without the change gets it again).
        if result.status is not None:  # a merge patch: keys the new status drops (waveCompletedAt) are nulled
            await kube.patch_status(FLEET_ROLLOUTS, namespace, name,
                                    merge_patch(dict(rollout.get("status") or {}), result.status),
                                    str(meta.get("resourceVersion") or "") or None)
        events = []
        for action in result.actions:
            if isinstance(action, SetChange | ClearChange):
                value = action.override.to_annotation() if isinstance(action, SetChange) else None
                await kube.merge_patch(TRADING_SYMBOLS, namespace, action.symbol,
                                       {"metadata": {"annotations": {FLEET_CHANGE_ANNOTATION: value}}})
                # Annotations are not spec changes to kopf: the symbol is reconciled here, at once.
                await reconcile(context, namespace, action.symbol)
            elif isinstance(action, ConsumeAbort | ConsumeRetry):
                key = FLEET_ABORT_ANNOTATION if isinstance(action, ConsumeAbort) else FLEET_RETRY_ANNOTATION
                await kube.merge_patch(FLEET_ROLLOUTS, namespace, name, {"metadata": {"annotations": {key: None}}})
            elif isinstance(action, EmitEvent):
                events.append(action)
        for event in events:
            await _emit(context, rollout, event)


async def _emit(context: OperatorContext, rollout: Obj, event: EmitEvent) -> None:
    """A core/v1 Event on the FleetRollout (best effort)."""
    meta, now = rollout["metadata"], now_rfc3339()
    executor = context.executor
    body = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": FLEET_API_VERSION, "kind": FLEET_KIND, "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta.get("uid", ""),
                           "resourceVersion": meta.get("resourceVersion", "")},
        "type": event.type, "reason": event.reason, "message": event.message[:1024],
        "source": {"component": executor.component}, "reportingComponent": executor.component,
        "reportingInstance": executor.instance or executor.component,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }
    try:
        await executor.kube.create(EVENTS, meta["namespace"], body)
    except Exception as exc:  # an Event is a courtesy; the status stands without it
        log.warning("event %s on FleetRollout %s/%s not recorded: %s", event.reason, meta["namespace"],
                    meta["name"], exc)


async def _handle(memo: Any, namespace: str | None, name: str, retry: int) -> None:
    try:
        await reconcile_fleet(memo["tradeops"], namespace or "default", name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {api_error_message(exc)}", delay=float(min(2 ** retry, 30))) from exc


@kopf.on.resume(*FLEETS)
@kopf.on.create(*FLEETS)
@kopf.on.update(*FLEETS)
async def on_fleet_rollout(*, namespace: str | None, name: str, memo: Any, retry: int, **_: Any) -> None:
    await _handle(memo, namespace, name, retry)


async def on_fleet_request(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """An abort or a retry is acted on at once (kopf does not count annotation changes as updates)."""
    try:
        await reconcile_fleet(memo["tradeops"], namespace or "default", name)
    except ApiException as exc:  # the timer retries
        log.warning("request on FleetRollout %s/%s failed: %s", namespace, name, api_error_message(exc))


for _annotation in (FLEET_ABORT_ANNOTATION, FLEET_RETRY_ANNOTATION):
    kopf.on.event(*FLEETS, id=f"request:{_annotation}", annotations={_annotation: kopf.PRESENT})(on_fleet_request)


@kopf.timer(*FLEETS, interval=INTERVAL_SECONDS, initial_delay=INTERVAL_SECONDS)
async def fleet_tick(*, namespace: str | None, name: str, status: kopf.Status, memo: Any, **_: Any) -> None:
    """Waves advance on their symbols' verdicts: look again (not once a failed rollout is wholly rolled back,
    nor while its spec is invalid: only a change of it, handled above, can move it then)."""
    rolled_back = any(c.get("type") == "RolledBack" and c.get("status") == "True"
                      for c in status.get("conditions") or [])
    if status.get("phase") == "Invalid" or rolled_back:
        return
    await _handle(memo, namespace, name, 0)
