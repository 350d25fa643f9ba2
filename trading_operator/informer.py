"""The watch streams that keep the `ChildStore`: one task per kind of child (and Pods), each listing once and then
watching from the list's resourceVersion, listing again when the watch is too old (410 Gone: the API server
compacted the history it would follow, as an ERROR event or as the HTTP status) — at once — or fails (after
RETRY_SECONDS). A relist rebuilds the store from the list and tells `on_change` what it finds changed meanwhile.

The operator read every child of a TradingSymbol from the API at every reconcile (about a dozen requests);
now a reconcile reads them from here, and every change somebody else made to a child reaches `on_change`
(which reconciles its owner), so kopf no longer watches the children at all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from kubernetes.client.exceptions import ApiException

from trading_operator import naming
from trading_operator.child_store import Change, ChildStore
from trading_operator.kube import RESOURCES_BY_KIND, api_error_message
from trading_operator.kube_async import AsyncKubeApi

log = logging.getLogger(__name__)

SELECTOR = naming.OWNER_NAME_LABEL
"""Every child carries its owner's label (builders.py); the pods inherit it from their template."""
WATCH_SECONDS = 300
RETRY_SECONDS = 1.0
GONE = 410

OnChange = Callable[[Change], None]


class Informer:
    """The store, and the tasks that keep it (`start`; `stop`)."""

    def __init__(self, kube: AsyncKubeApi, kinds: Iterable[str], namespaces: Sequence[str] = (),
                 on_change: OnChange | None = None) -> None:
        """`namespaces`: watch only these (default: the whole cluster)."""
        self.kube = kube
        self.namespaces: Sequence[str | None] = tuple(namespaces) or (None,)
        self.store = ChildStore(kinds, self.namespaces)
        self.on_change = on_change
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for kind in sorted(self.store.kinds):
            for namespace in self.namespaces:
                self._tasks.append(asyncio.create_task(self._keep(kind, namespace),
                                                       name=f"tradeops-informer:{kind}:{namespace or '*'}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _keep(self, kind: str, namespace: str | None) -> None:
        res = RESOURCES_BY_KIND[kind]
        while True:
            try:
                items, version = await self.kube.list_versioned(res, namespace, SELECTOR)
                for change in self.store.replace(kind, items, namespace):
                    self._tell(change)
                while version:
                    version = await self._follow(kind, namespace, version)
                continue  # gone (410): list again at once
            except ApiException as exc:
                if exc.status == GONE:
                    log.info("watch of %s in %s: %s; listing again", kind, namespace or "all namespaces",
                             api_error_message(exc))
                    continue
                log.warning("watch of %s in %s failed: %s", kind, namespace or "all namespaces", api_error_message(exc))
            except Exception:  # a malformed line or a bug: list again rather than trust the rest, or stop keeping
                log.exception("watch of %s in %s failed", kind, namespace or "all namespaces")
            await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self, kind: str, namespace: str | None, version: str) -> str:
        """Apply a watch's events until it ends; returns the version to watch from next ('': list again, the
        history after `version` is gone). An ERROR event other than 410 raises (listed again after a pause)."""
        async for event in self.kube.watch(RESOURCES_BY_KIND[kind], namespace, SELECTOR, version, WATCH_SECONDS):
            event_type, obj = str(event.get("type")), event.get("object") or {}
            if event_type == "ERROR":
                if obj.get("code") == GONE:
                    log.info("watch of %s from %s ended: %s; listing again", kind, version, obj.get("message"))
                    return ""
                raise ApiException(status=obj.get("code") or 500, reason=str(obj.get("message") or obj))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event_type == "BOOKMARK":
                continue
            self._tell(self.store.apply(kind, event_type, obj))
        return version

    def _tell(self, change: Change) -> None:
        if self.on_change is not None:
            try:
                self.on_change(change)
            except Exception:  # a consumer's bug must not stop the watch
                log.exception("handling a %s event of %s failed", change.event_type, change.kind)
