"""Reconciles read from watches (the informer's store of children, the TradingSymbol's latest watch event), and
a watch may lag behind the API: against the emulator (409 on a stale resourceVersion, like a real API server),
a stale copy never causes a write the current state would not — a plan from a stale TradingSymbol is made
again from the API's answer, and a child patch planned from a stale child loses (409) and is re-planned."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.emulator import RunningEmulator
from tests.integration.emulator_fixtures import (  # noqa: F401
    api_client_for,
    emulator,
    eventually,
    unique_namespace,
)
from trading_operator import naming
from trading_operator.builders import render_switches
from trading_operator.context import OperatorContext, reconcile
from trading_operator.crd import build_crd
from trading_operator.drain import PositionsProbe
from trading_operator.executor import OBSERVED_KINDS, TRADING_SYMBOLS, Executor
from trading_operator.informer import Informer
from trading_operator.kube import CONFIGMAPS, CRDS, NAMESPACES
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.planner import Observed
from trading_operator.prometheus import MetricsSource

SPEC = {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/tradeops/runtime:1.0.0"}
SWITCHES = naming.child_name("spy")


class CountingExecutor(Executor):
    """Records whether each observation was served by the store or read afresh from the API."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fresh: list[bool] = []

    async def observe(self, ts: dict[str, Any], fresh: bool = False) -> Observed:
        self.fresh.append(fresh)
        return await super().observe(ts, fresh)


@dataclass
class World:
    kube: AsyncKubeApi
    namespace: str
    informer: Informer
    context: OperatorContext
    executor: CountingExecutor
    watched: dict[tuple[str, str], Mapping[str, Any]]
    """What the test makes the 'latest watch event' of each TradingSymbol."""

    async def switches(self) -> dict[str, Any]:
        return await self.kube.get(CONFIGMAPS, self.namespace, SWITCHES)


@pytest.fixture
async def world(emulator: RunningEmulator) -> AsyncIterator[World]:  # noqa: F811
    kube = AsyncKubeApi(api_client_for(emulator.url))
    await kube.create(CRDS, None, build_crd())
    namespace = unique_namespace("stale")
    await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    informer = Informer(kube, OBSERVED_KINDS, [namespace])
    executor = CountingExecutor(kube, store=informer.store)
    watched: dict[tuple[str, str], Mapping[str, Any]] = {}
    context = OperatorContext(executor=executor, probe=PositionsProbe(), metrics=MetricsSource(None),
                              latest=watched.get)
    informer.start()
    try:
        await eventually(lambda: informer.store.synced, "the informer's first lists")
        await kube.create(TRADING_SYMBOLS, namespace, {"apiVersion": TRADING_SYMBOLS.api_version,
                                                       "kind": "TradingSymbol", "metadata": {"name": "spy"},
                                                       "spec": SPEC})
        await reconcile(context, namespace, "spy")
        yield World(kube, namespace, informer, context, executor, watched)
    finally:
        await informer.stop()
        await kube.close()
        context.metrics.close()


async def caught_up(world: World, name: str, version: str) -> None:
    def holds() -> bool:
        held = world.informer.store.get("ConfigMap", world.namespace, name)
        return held is not None and held["metadata"]["resourceVersion"] == version
    await eventually(holds, f"the store at {name}'s version {version}")


async def test_the_store_serves_the_reconcile_once_it_holds_the_children(world: World) -> None:
    assert world.informer.store.get("Deployment", world.namespace, naming.child_name("spy")) is not None
    world.executor.fresh.clear()
    await reconcile(world.context, world.namespace, "spy")
    assert world.executor.fresh == [False]


async def test_a_stale_trading_symbol_from_the_watch_writes_nothing_it_asked_for(world: World) -> None:
    """The watch still shows trading enabled; the API says it was switched off (and the children say so too).
    The plan from the stale copy would switch trading back on: it is made again from the API's answer."""
    stale = await world.kube.get(TRADING_SYMBOLS, world.namespace, "spy")
    await world.kube.merge_patch(TRADING_SYMBOLS, world.namespace, "spy", {"spec": {"tradingEnabled": False}})
    await reconcile(world.context, world.namespace, "spy")
    switched_off = await world.switches()
    assert switched_off["data"][naming.SWITCHES_KEY] == render_switches(False)

    world.watched[(world.namespace, "spy")] = stale
    world.context.written.clear()  # the watch's copy is all it has
    await reconcile(world.context, world.namespace, "spy")
    after = await world.switches()
    assert after["data"][naming.SWITCHES_KEY] == render_switches(False)
    assert after["metadata"]["resourceVersion"] == switched_off["metadata"]["resourceVersion"], "no write at all"


async def test_a_current_trading_symbol_from_the_watch_saves_the_read(world: World) -> None:
    """A plan with child writes made from the watch's copy is confirmed by the API's answer (same version)."""
    await world.kube.merge_patch(TRADING_SYMBOLS, world.namespace, "spy", {"spec": {"tradingEnabled": False}})
    world.watched[(world.namespace, "spy")] = await world.kube.get(TRADING_SYMBOLS, world.namespace, "spy")
    world.context.written.clear()  # the watch has shown the operator's last write
    world.executor.fresh.clear()
    await reconcile(world.context, world.namespace, "spy")
    assert (await world.switches())["data"][naming.SWITCHES_KEY] == render_switches(False)
    assert world.executor.fresh == [False], "planned once"


async def test_a_child_patch_planned_from_a_stale_child_loses_and_is_re_planned(world: World) -> None:
    """The store holds the switches ConfigMap as it was before somebody else changed it; the operator's patch
    carries the version it planned from, gets 409, and the reconcile re-reads from the API."""
    before = await world.switches()
    await caught_up(world, SWITCHES, before["metadata"]["resourceVersion"])
    await world.informer.stop()  # the store lags behind from here on
    theirs = await world.kube.merge_patch(CONFIGMAPS, world.namespace, SWITCHES,
                                          {"metadata": {"annotations": {"example.com/note": "theirs"}}})
    await world.kube.merge_patch(TRADING_SYMBOLS, world.namespace, "spy", {"spec": {"tradingEnabled": False}})
    world.context.written.clear()
    world.executor.fresh.clear()
    await reconcile(world.context, world.namespace, "spy")
    assert world.executor.fresh == [False, True], "planned from the store, lost the race, re-read from the API"
    after = await world.switches()
    assert after["data"][naming.SWITCHES_KEY] == render_switches(False)
    assert after["metadata"]["annotations"]["example.com/note"] == "theirs"
    assert int(after["metadata"]["resourceVersion"]) > int(theirs["metadata"]["resourceVersion"])


async def test_a_change_after_the_operators_last_write_is_not_missed(world: World) -> None:
    """The operator plans from the body its last status write returned until the watch shows it; a change made
    since (the user switches trading off) makes that body stale. Its plan writes nothing — which no lock can
    catch — so it is confirmed by a read, and the change is applied."""
    assert (world.namespace, "spy") in world.context.written
    await world.kube.merge_patch(TRADING_SYMBOLS, world.namespace, "spy", {"spec": {"tradingEnabled": False}})
    await reconcile(world.context, world.namespace, "spy")
    assert (await world.switches())["data"][naming.SWITCHES_KEY] == render_switches(False)
