"""Real kopf against the emulator, in the test's event loop: create, update and delete handlers with a
finalizer converge, in standalone mode and with cluster-wide peering."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import kopf
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack.emulator import RunningEmulator
from tests.integration import emulator_fixtures

emulator = emulator_fixtures.emulator
k8s_client = emulator_fixtures.k8s_client

GROUP, VERSION, PLURAL = "kopf.dev", "v1", "kopfexamples"


def example_crd() -> dict[str, Any]:
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{PLURAL}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"plural": PLURAL, "singular": "kopfexample", "kind": "KopfExample",
                               "shortNames": ["kex"]},
                     "versions": [{"name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": schema}}]}}


def build_registry(url: str, seen: list[str]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, token="emulator", scheme="Bearer")

    @kopf.on.create(GROUP, VERSION, PLURAL, id="created", registry=registry)
    def created(spec: Any, patch: kopf.Patch, **_: Any) -> dict[str, Any]:
        seen.append("create")
        patch.status["phase"] = "Created"
        return {"size": spec.get("size")}

    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def updated(spec: Any, patch: kopf.Patch, **_: Any) -> None:
        seen.append("update")
        patch.status["phase"] = f"Resized to {spec.get('size')}"

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    def deleted(**_: Any) -> None:
        seen.append("delete")

    return registry


@contextlib.asynccontextmanager
async def running_operator(emu: RunningEmulator, seen: list[str], **options: Any) -> AsyncIterator[None]:
    settings = kopf.OperatorSettings()
    settings.posting.level = logging.INFO
    settings.posting.loggers = True  # post "Handler ... succeeded" as Events (off by default in kopf 1.45)
    settings.batching.idle_timeout = 0.5
    settings.watching.server_timeout = 10
    settings.peering.lifetime = 10
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(registry=build_registry(emu.url, seen), settings=settings,
                                             stop_flag=stop, ready_flag=ready, **options))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll a blocking check (in a thread) for up to 8 seconds."""
    for _ in range(160):
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("mode", ["standalone", "clusterwide-peering"])
async def test_kopf_handlers_converge(emulator, k8s_client, caplog, mode):
    caplog.set_level(logging.DEBUG, logger="kopf")
    extensions, custom = client.ApiextensionsV1Api(k8s_client), client.CustomObjectsApi(k8s_client)
    core = client.CoreV1Api(k8s_client)
    await asyncio.to_thread(extensions.create_custom_resource_definition, example_crd())
    options: dict[str, Any] = ({"standalone": True, "namespaces": ["default"]} if mode == "standalone"
                               else {"clusterwide": True, "peering_name": "tests", "priority": 10})
    if mode != "standalone":  # kopf requires the peering object to exist (as `kopf` docs and RBAC manifests do)
        peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "tests"}}
        await asyncio.to_thread(custom.create_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings", peering)
    seen: list[str] = []

    def get() -> dict[str, Any] | None:
        try:
            return custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "ex")
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async with running_operator(emulator, seen, **options):
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KopfExample", "metadata": {"name": "ex"},
                "spec": {"size": 1}}
        await asyncio.to_thread(custom.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, body)
        obj = await eventually(lambda: (o := get()) and o.get("status", {}).get("phase") == "Created" and o,
                               "the create handler's status")
        assert obj["status"]["created"] == {"size": 1}
        assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        await asyncio.to_thread(custom.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "ex",
                                {"spec": {"size": 3}})
        await eventually(lambda: (o := get()) and o.get("status", {}).get("phase") == "Resized to 3",
                         "the update handler's status")
        await asyncio.to_thread(custom.delete_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "ex")
        await eventually(lambda: get() is None, "the deletion to finish")
        if mode == "clusterwide-peering":
            peering = emulator.get_object("kopf.dev/v1", "clusterkopfpeerings", None, "tests")
            assert peering is not None
            assert peering["status"]  # kopf keeps its heartbeat in the peering object
        await eventually(lambda: any("succeeded" in (e.message or "")
                                     for e in core.list_namespaced_event("default").items), "kopf's events")

    assert seen == ["create", "update", "delete"]
    problems = [r for r in caplog.records if r.name.startswith("kopf") and r.levelno >= logging.WARNING
                and "OS signals" not in r.getMessage()]
    assert not problems, [r.getMessage() for r in problems]
