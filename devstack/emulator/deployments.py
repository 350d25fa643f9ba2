"""A minimal Deployment controller: after a Deployment's generation changes, and a delay, its status reports
the replicas of that generation ready (or what a readiness hook says), through the store's event stream
so watchers see it. No ReplicaSets or Pods are created."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable

from devstack.emulator.store import Key, Obj, Store

log = logging.getLogger(__name__)

DeploymentHook = Callable[[Obj], Awaitable[int | None]]
"""Called with a copy of a changed Deployment; returns the ready replicas to report, or None to report
nothing now (the caller reports later with `set_deployment_ready`)."""


def deployment_status(obj: Obj, ready: int) -> Obj:
    """The status a Deployment controller writes when `ready` replicas of the current generation run."""
    replicas = int(obj.get("spec", {}).get("replicas", 1))
    return {
        "observedGeneration": obj["metadata"].get("generation", 1),
        "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": max(replicas - ready, 0),
        "conditions": [
            {"type": "Available", "status": "True" if ready >= replicas else "False",
             "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


class DeploymentController:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.tasks: set[asyncio.Task[None]] = set()

    def changed(self, key: Key, old: Obj | None, new: Obj, delay: float, hook: DeploymentHook | None) -> None:
        """A Deployment was written; roll out when its generation moved."""
        generation = new["metadata"].get("generation", 1)
        if old is not None and old["metadata"].get("generation", 1) == generation:
            return
        task = asyncio.get_running_loop().create_task(self._roll_out(key, generation, delay, hook))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _current(self, key: Key, generation: int) -> Obj | None:
        obj = self.store.get(key)
        return obj if obj is not None and obj["metadata"].get("generation", 1) == generation else None

    async def _roll_out(self, key: Key, generation: int, delay: float, hook: DeploymentHook | None) -> None:
        await asyncio.sleep(delay)
        obj = self._current(key, generation)
        if obj is None:
            return  # gone, or changed again: the newer rollout reports
        ready: int | None = int(obj.get("spec", {}).get("replicas", 1))
        if hook is not None:
            try:
                ready = await hook(copy.deepcopy(obj))
            except Exception:
                log.exception("the deployment readiness hook failed for %s/%s", key[2], key[3])
                return
        if ready is not None and self._current(key, generation) is not None:
            self.report(key, ready)

    def report(self, key: Key, ready: int) -> None:
        """Write the status for `ready` replicas (no write if nothing changes)."""
        obj = self.store.get(key)
        if obj is None:
            return
        status = deployment_status(obj, ready)
        if obj.get("status") != status:
            self.store.put(key, {**obj, "metadata": dict(obj["metadata"]), "status": status}, created=False)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
