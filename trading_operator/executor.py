"""The I/O edge of reconciliation: read the observed state, apply a plan's children, commit its status,
record its Events. The status is written here only (`commit`), from the planner's plan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from policies.loader import PolicySet, default_policies
from trading_operator import api, claims, metrics, naming, retraining
from trading_operator.child_store import ChildStore
from trading_operator.kube import (
    CONTROLLER_REVISIONS,
    EVENTS,
    RESOURCES_BY_KIND,
    Obj,
    Resource,
    is_conflict,
    is_not_found,
)
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.planner import (
    CreateObject,
    DeleteObject,
    EmitEvent,
    Observed,
    PatchObject,
    Plan,
    RemoveAnnotation,
)
from trading_operator.revisions import revision_from_object
from trading_operator.timestamps import now_rfc3339

TRADING_SYMBOLS = Resource(api.API_VERSION, api.PLURAL)
CHILD_KINDS = ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "Role",
               "RoleBinding")
SHADOW_KINDS = ("ConfigMap", "Deployment")
OBSERVED_KINDS = (*CHILD_KINDS, "ControllerRevision", "Pod")
"""Every kind `observe` reads: what the operator's informer keeps."""

log = logging.getLogger(__name__)

Claims = tuple[claims.Claim, ...]
ClaimSource = Callable[[str], Iterable[claims.Claim]]
"""The claims of a namespace's TradingSymbols, kept in memory from the watch (kopf's index in the operator)."""


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: removed keys become null, nested maps
    are patched key by key, everything else is replaced."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    return patch


class Executor:
    """Reads and writes through the async client."""

    def __init__(self, kube: AsyncKubeApi, component: str = naming.MANAGER, instance: str = "",
                 policies: PolicySet | None = None, claim_source: ClaimSource | None = None,
                 store: ChildStore | None = None) -> None:
        self.kube = kube
        self.component = component
        self.instance = instance
        self.policies = policies if policies is not None else default_policies()
        self.claim_source = claim_source
        """Without one (an executor outside kopf), the claims are listed from the API at each observe."""
        self.store = store
        """The children as the informer's watches show them (None: every observe reads the API)."""

    async def claims(self, namespace: str) -> tuple[claims.Claim, ...]:
        """Which TradingSymbols of the namespace name which symbol."""
        if self.claim_source is not None:
            return tuple(self.claim_source(namespace))
        listed = await self.kube.list_objects(TRADING_SYMBOLS, namespace)
        return tuple(c for c in map(claims.claim_of, listed) if c is not None)

    async def get_trading_symbol(self, namespace: str, name: str) -> Obj | None:
        return await self.kube.get_or_none(TRADING_SYMBOLS, namespace, name)

    async def observe(self, ts: Obj, fresh: bool = False) -> Observed:
        """Everything the planner needs about one TradingSymbol: its children from the informer's store once it
        is synced, from the API when `fresh` (after a conflict) or without a store."""
        meta = ts["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if self.store is not None and self.store.synced and not fresh:
            return self._observed(ts, self._stored(namespace, name), await self.claims(namespace),
                                  await self._retraining_jobs(ts))
        selector = f"{naming.OWNER_NAME_LABEL}={name}"
        revisions_call = self.kube.list_objects(CONTROLLER_REVISIONS, namespace, selector)
        child_calls = asyncio.gather(*(
            self.kube.get_or_none(RESOURCES_BY_KIND[kind], namespace, naming.child_name(name))
            for kind in CHILD_KINDS
        ), *(
            self.kube.get_or_none(RESOURCES_BY_KIND[kind], namespace, naming.shadow_name(name))
            for kind in SHADOW_KINDS
        ))
        configs_call = self.kube.list_objects(RESOURCES_BY_KIND["ConfigMap"], namespace,
                                              f"{selector},{naming.CONFIG_LABEL}")
        pods_call = self.kube.list_objects(RESOURCES_BY_KIND["Pod"], namespace, selector)
        revision_objs, children, configs, pods, claimed, jobs = await asyncio.gather(
            revisions_call, child_calls, configs_call, pods_call, self.claims(namespace),
            self._retraining_jobs(ts))
        return self._observed(ts, _Read(revision_objs, list(children), configs, pods), claimed, jobs)

    def _stored(self, namespace: str, name: str) -> _Read:
        store = self.store
        assert store is not None
        return _Read(
            revisions=store.owned("ControllerRevision", namespace, name),
            children=[*(store.get(kind, namespace, naming.child_name(name)) for kind in CHILD_KINDS),
                      *(store.get(kind, namespace, naming.shadow_name(name)) for kind in SHADOW_KINDS)],
            configs=[c for c in store.owned("ConfigMap", namespace, name)
                     if naming.CONFIG_LABEL in (c["metadata"].get("labels") or {})],
            pods=store.owned("Pod", namespace, name),
        )

    def _observed(self, ts: Obj, read: _Read, claimed: Claims, jobs: list[Obj]) -> Observed:
        meta = ts["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta.get("uid", "")
        revision_objs, children, configs, pods = read.revisions, read.children, read.configs, read.pods
        owned = [r for r in revision_objs if _owned_by(r, uid)]
        return Observed(
            name=name,
            namespace=namespace,
            uid=uid,
            generation=int(meta.get("generation", 1)),
            spec=dict(ts.get("spec") or {}),
            status=dict(ts.get("status") or {}),
            annotations=dict(meta.get("annotations") or {}),
            revisions=[revision_from_object(r) for r in owned],
            # A same-named child without our ownerReference is adopted: the patch sets it.
            children=dict(zip([*CHILD_KINDS, *(f"shadow/{k}" for k in SHADOW_KINDS)], children, strict=True)),
            configs={c["metadata"]["name"]: c for c in configs if _owned_by(c, uid)},
            pods=pods,
            now=now_rfc3339(),
            deleting=bool(meta.get("deletionTimestamp")),
            policies=self.policies,
            claims=claimed,
            jobs=jobs,
        )

    async def _retraining_jobs(self, ts: Obj) -> list[Obj]:
        """The symbol's retraining Jobs, only while the status names one that has not ended (one list call
        then, none otherwise)."""
        pending = ((ts.get("status") or {}).get("regime") or {}).get("retraining") or {}
        if not pending or pending.get("outcome"):
            return []
        meta = ts["metadata"]
        return await self.kube.list_objects(RESOURCES_BY_KIND["Job"], meta["namespace"],
                                            retraining.selector(meta["name"]))

    async def apply_children(self, ts: Obj, plan: Plan, observed: Observed | None = None) -> None:
        """Create, correct and delete children, in order: before the status, so a status (Halted, a rollback)
        never claims what the children do not do yet. They are level-based: a plan that then loses its status
        write is re-planned, and the new plan brings them where it decides. A patch of a child `observed` holds
        is conditional on the resourceVersion observed: a 409 when it changed since (the caller re-reads)."""
        namespace = ts["metadata"]["namespace"]
        versions = _versions(observed) if observed is not None else {}
        for action in plan.actions:
            if isinstance(action, CreateObject):
                await self._create(namespace, action.manifest)
            elif isinstance(action, PatchObject):
                res = RESOURCES_BY_KIND[action.kind]
                patch = action.patch
                version = versions.get((action.kind, action.name))
                if version:
                    patch = {**patch, "metadata": {**(patch.get("metadata") or {}), "resourceVersion": version}}
                self._wrote(await self.kube.merge_patch(res, namespace, action.name, patch))
            elif isinstance(action, DeleteObject):
                await self._delete(RESOURCES_BY_KIND[action.kind], namespace, action.name)

    async def commit(self, ts: Obj, plan: Plan) -> Obj | None:
        """Write the plan's status, optimistically locked on the resourceVersion the plan was made from: a
        conflict (409) raises, and the caller re-reads and re-plans. Returns the TradingSymbol written (None:
        the status did not change)."""
        if plan.status is None:
            return None
        written = await self._write_status(ts, plan.status)
        self._count_verdict(ts, plan.status)
        return written

    async def announce(self, ts: Obj, plan: Plan) -> None:
        """After the commit: the Events that explain the committed decision (never those of a plan that lost),
        then the handled requests' annotations are removed."""
        meta = ts["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        for action in plan.actions:
            if isinstance(action, EmitEvent):
                await self.emit_event(ts, action.type, action.reason, action.message)
        for action in plan.actions:
            if isinstance(action, RemoveAnnotation):
                patch = {"metadata": {"annotations": {action.key: None}}}
                await self.kube.merge_patch(TRADING_SYMBOLS, namespace, name, patch)

    async def _write_status(self, ts: Obj, status: dict[str, Any]) -> Obj:
        """Merge-patch the status subresource, conditional on the resourceVersion read (409 when the object
        changed since); keys that disappeared (at any depth) are nulled."""
        patch = merge_patch(ts.get("status") or {}, status)
        meta = ts["metadata"]
        return await self.kube.patch_status(TRADING_SYMBOLS, meta["namespace"], meta["name"], patch,
                                            resource_version=meta.get("resourceVersion"))

    def _count_verdict(self, ts: Obj, status: dict[str, Any]) -> None:
        """A run that ended in this status write counts once (the write that commits it happens once)."""
        before = (ts.get("status") or {}).get("analysis") or {}
        after = status.get("analysis") or {}
        ended = after.get("phase") not in (None, api.AnalysisPhase.RUNNING.value)
        same_run = (before.get("revision"), before.get("startedAt")) == (after.get("revision"), after.get("startedAt"))
        if ended and (not same_run or before.get("phase") == api.AnalysisPhase.RUNNING.value):
            symbol = str((ts.get("spec") or {}).get("symbol", ts["metadata"]["name"]))
            metrics.record_verdict(ts["metadata"]["namespace"], symbol, str(after["phase"]))

    async def _create(self, namespace: str, manifest: Obj) -> None:
        res = RESOURCES_BY_KIND[manifest["kind"]]
        try:
            created = await self.kube.create(res, namespace, manifest)
        except Exception as exc:
            if not is_conflict(exc):
                raise
            # Created meanwhile (a watch lagging behind): bring it to the desired state instead.
            name = manifest["metadata"]["name"]
            created = await self.kube.merge_patch(res, namespace, name, manifest)
        self._wrote(created)

    def _wrote(self, obj: Obj) -> None:
        if self.store is not None:
            self.store.wrote(obj)

    async def _delete(self, res: Resource, namespace: str, name: str) -> None:
        try:
            await self.kube.delete(res, namespace, name)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            return
        if self.store is not None:
            self.store.deleted(_kind_of(res), namespace, name)

    async def set_trading_switch(self, namespace: str, name: str, switches_yaml: str) -> bool:
        """Write the kill-switch key of a TradingSymbol's ConfigMap; False if there is no ConfigMap."""
        res = RESOURCES_BY_KIND["ConfigMap"]
        patch = {"data": {naming.SWITCHES_KEY: switches_yaml}}
        try:
            written = await self.kube.merge_patch(res, namespace, naming.child_name(name), patch)
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise
        self._wrote(written)
        return True

    async def emit_event(self, ts: Obj, type_: str, reason: str, message: str, name: str | None = None) -> None:
        """Record a core/v1 Event on the TradingSymbol (best effort: a failed Event never fails a plan). With
        `name`, the Event is written at most once: a second write of that name is a no-op (a retried caller)."""
        meta = ts["metadata"]
        symbol = str((ts.get("spec") or {}).get("symbol", meta["name"]))
        metrics.record_event(meta["namespace"], symbol, type_, reason)
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {**({"name": name} if name else {"generateName": f"{meta['name']}."}),
                         "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": api.API_VERSION,
                "kind": api.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance or self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.create(EVENTS, meta["namespace"], event)
        except ApiException as exc:
            if name and exc.status == 409:
                log.debug("event %s on %s already recorded", name, meta["name"])
                return
            log.warning("could not record event %s on %s: %s", reason, meta["name"], exc)
        except Exception as exc:  # an Event is a courtesy; the reconcile result stands without it
            log.warning("could not record event %s on %s: %s", reason, meta["name"], exc)


def _owned_by(obj: Obj, uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return not uid or any(ref.get("uid") == uid for ref in refs)


@dataclass(frozen=True)
class _Read:
    """The objects `observe` read, before they are sorted into an `Observed`."""

    revisions: list[Obj]
    children: list[Obj | None]
    configs: list[Obj]
    pods: list[Obj]


def _versions(observed: Observed) -> dict[tuple[str, str], str]:
    """The resourceVersion of each child the plan was made from, by (kind, name)."""
    objs = [*(c for c in observed.children.values() if c), *observed.configs.values()]
    return {(str(o.get("kind")), str(o["metadata"].get("name"))): str(o["metadata"].get("resourceVersion") or "")
            for o in objs}


def _kind_of(res: Resource) -> str:
    return next(kind for kind, known in RESOURCES_BY_KIND.items() if known == res)
