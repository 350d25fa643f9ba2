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
