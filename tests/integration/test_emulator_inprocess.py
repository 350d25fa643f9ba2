"""Emulator behaviours only reachable in-process: readiness hooks, bounded logs and history (410 Gone)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from trading_operator.emulator import serve_emulator


def deployment(name: str, replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}


async def ready_replicas(session: aiohttp.ClientSession, url: str) -> int | None:
    async with session.get(url) as response:
        return (await response.json()).get("status", {}).get("readyReplicas")


async def test_deployment_readiness_comes_from_the_hook_and_can_be_set():
    seen: list[str] = []

    async def hook(obj: dict) -> int:
        seen.append(obj["metadata"]["name"])
        return 0  # e.g. the harness has not started the pods yet

    async with serve_emulator(deployment_ready_hook=hook, deployment_delay=0.01) as emulator, \
            aiohttp.ClientSession() as session:
        base = f"{emulator.url}/apis/apps/v1/namespaces/default/deployments"
        async with session.post(base, json=deployment("d")) as response:
            assert response.status == 201
        await asyncio.sleep(0.1)
        assert seen == ["d"]
        assert await ready_replicas(session, f"{base}/d") == 0
        await emulator.handler.set_deployment_ready("default", "d", 2)
        assert await ready_replicas(session, f"{base}/d") == 2


async def test_request_log_is_bounded():
    async with serve_emulator(request_log_limit=50) as emulator, aiohttp.ClientSession() as session:
        for _ in range(300):
            async with session.get(f"{emulator.url}/api/v1/namespaces") as response:
                assert response.status == 200
        assert len(emulator.handler._requests) <= 100


async def test_watch_older_than_the_history_is_410_gone():
    async with serve_emulator(history_limit=10) as emulator, aiohttp.ClientSession() as session:
        base = f"{emulator.url}/api/v1/namespaces/default/configmaps"
        for i in range(30):
            async with session.post(base, json={"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": f"c{i}"}}) as response:
                assert response.status == 201
        async with session.get(f"{base}?watch=true&resourceVersion=2") as response:
            event = json.loads(await response.content.readline())
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410
