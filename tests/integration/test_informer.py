"""The informer against the emulator: it lists, then follows the watch; somebody else's change reaches
`on_change` as news, the echo of the operator's own write does not, and objects without the owner label are
not kept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devstack.emulator import RunningEmulator
from tests.integration.emulator_fixtures import (  # noqa: F401
    api_client_for,
    emulator,
    eventually,
    unique_namespace,
)
from trading_operator import naming
from trading_operator.child_store import Change
from trading_operator.informer import Informer
from trading_operator.kube import CONFIGMAPS, NAMESPACES
from trading_operator.kube_async import AsyncKubeApi


def config_map(name: str, owner: str | None) -> dict[str, object]:
    labels = {naming.OWNER_NAME_LABEL: owner} if owner else {}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            "data": {"k": "v"}}


@pytest.fixture
async def running(emulator: RunningEmulator) -> AsyncIterator[tuple[AsyncKubeApi, str, Informer, list[Change]]]:  # noqa: F811
    kube = AsyncKubeApi(api_client_for(emulator.url))
    namespace = unique_namespace("informer")
    await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await kube.create(CONFIGMAPS, namespace, config_map("before", "spy"))
    changes: list[Change] = []
    informer = Informer(kube, ("ConfigMap", "Pod"), [namespace], on_change=changes.append)
    informer.start()
    try:
        await eventually(lambda: informer.store.synced, "the first lists")
        yield kube, namespace, informer, changes
    finally:
        await informer.stop()
        await kube.close()


async def test_lists_then_follows_and_tells_news_from_echoes(
        running: tuple[AsyncKubeApi, str, Informer, list[Change]]) -> None:
    kube, namespace, informer, changes = running
    store = informer.store
    assert [o["metadata"]["name"] for o in store.owned("ConfigMap", namespace, "spy")] == ["before"]

    await kube.create(CONFIGMAPS, namespace, config_map("theirs", "spy"))
    await kube.create(CONFIGMAPS, namespace, config_map("unlabelled", None))
    await eventually(lambda: store.get("ConfigMap", namespace, "theirs") is not None, "somebody else's ConfigMap")
    assert [(c.event_type, c.obj["metadata"]["name"], c.own) for c in changes] == [("ADDED", "theirs", False)]

    ours = await kube.merge_patch(CONFIGMAPS, namespace, "before", {"data": {"k": "ours"}})
    echo_came_first = len(changes) > 1  # the watch may beat the answer; the store then holds it already
    store.wrote(ours)
    assert store.get("ConfigMap", namespace, "before") == ours
    await eventually(lambda: len(changes) == 2, "the echo of the operator's write")
    assert changes[-1].obj["metadata"]["name"] == "before"
    assert changes[-1].own or echo_came_first

    await kube.delete(CONFIGMAPS, namespace, "theirs")
    await eventually(lambda: store.get("ConfigMap", namespace, "theirs") is None, "the deletion")
    assert (changes[-1].event_type, changes[-1].own) == ("DELETED", False)
    assert store.get("ConfigMap", namespace, "unlabelled") is None


async def test_a_watch_gone_410_relists_rebuilds_the_store_and_loses_no_change(
        running: tuple[AsyncKubeApi, str, Informer, list[Change]], emulator: RunningEmulator) -> None:  # noqa: F811
    """The API server compacts its history: the open watches end with an ERROR event carrying a 410 Status, a
    watch from an older resourceVersion is refused so, and the informer lists again — its store then holds
    exactly what the API holds, and what changed while no watch ran reaches `on_change` once."""
    kube, namespace, informer, changes = running
    store = informer.store
    await kube.create(CONFIGMAPS, namespace, config_map("kept", "spy"))
    await kube.create(CONFIGMAPS, namespace, config_map("deleted-meanwhile", "spy"))
    await eventually(lambda: store.get("ConfigMap", namespace, "deleted-meanwhile") is not None, "the watch")
    lists_before = emulator.handler.request_totals[("LIST", "", "configmaps", "")]
    del changes[:]

    # In one step of the server's loop: nothing of this reaches the informer on the watch it had open.
    apiserver = emulator.handler.apiserver
    configmaps = apiserver.resource("v1", "configmaps")
    emulator.handler.store.compact()
    apiserver.create(configmaps, namespace, config_map("created-meanwhile", "spy"))
    apiserver.delete(configmaps, namespace, "deleted-meanwhile")

    def matches_the_api() -> bool:
        held = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in store.owned("ConfigMap", namespace,
                                                                                              "spy")}
        listed = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                  for o in emulator.list_objects("v1", "configmaps", namespace)
                  if (o["metadata"].get("labels") or {}).get(naming.OWNER_NAME_LABEL) == "spy"}
        return held == listed
    await eventually(lambda: "created-meanwhile" in {c.obj["metadata"]["name"] for c in changes}, "the relist")
    assert matches_the_api()
    assert sorted((c.event_type, c.obj["metadata"]["name"], c.own) for c in changes) == [
        ("ADDED", "created-meanwhile", False), ("DELETED", "deleted-meanwhile", False)]
    assert emulator.handler.request_totals[("LIST", "", "configmaps", "")] == lists_before + 1

    # Watching goes on from the relist's version.
    await kube.merge_patch(CONFIGMAPS, namespace, "kept", {"data": {"k": "theirs"}})
    await eventually(lambda: (store.get("ConfigMap", namespace, "kept") or {}).get("data") == {"k": "theirs"},
                     "a change after the relist")
    assert matches_the_api()


async def test_a_watch_from_a_compacted_version_gets_the_api_servers_410_error_event(
        running: tuple[AsyncKubeApi, str, Informer, list[Change]], emulator: RunningEmulator) -> None:  # noqa: F811
    kube, namespace, _, _ = running
    emulator.handler.store.compact()
    events = [e async for e in kube.watch(CONFIGMAPS, namespace, None, "1", 5)]
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    gone = events[0]["object"]
    assert (gone["kind"], gone["apiVersion"], gone["status"], gone["reason"], gone["code"]) == \
        ("Status", "v1", "Failure", "Expired", 410)
    assert gone["message"].startswith("too old resource version")
