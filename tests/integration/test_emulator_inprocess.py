"""Emulator behaviours only reachable in-process: bounded logs and history (410 Gone), shutdown."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp

from devstack.emulator import EmulatorThread, serve_emulator


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


async def test_server_side_apply_upserts_from_yaml():
    async with serve_emulator() as emulator, aiohttp.ClientSession() as session:
        url = f"{emulator.url}/api/v1/namespaces/default/configmaps/applied?fieldManager=tests&force=true"
        headers = {"Content-Type": "application/apply-patch+yaml"}
        body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n"
        async with session.patch(url, data=body, headers=headers) as response:
            assert response.status in (200, 201)
            created = await response.json()
        async with session.patch(url, data=body.replace("a: '1'", "b: '2'"), headers=headers) as response:
            assert response.status == 200
            applied = await response.json()
        assert applied["metadata"]["uid"] == created["metadata"]["uid"]
        assert applied["data"] == {"a": "1", "b": "2"}  # merge semantics, not field ownership


async def test_watch_from_version_zero_starts_with_synthetic_added_events():
    async with serve_emulator() as emulator, aiohttp.ClientSession() as session:
        base = f"{emulator.url}/api/v1/namespaces/default/configmaps"
        async with session.post(base, json={"metadata": {"name": "a"}}) as response:
            assert response.status == 201
        async with session.get(f"{base}?watch=true&resourceVersion=0&timeoutSeconds=1") as response:
            assert response.headers["Content-Type"] == "application/json"
            lines = [json.loads(line) async for line in response.content]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "a")]


async def test_open_watches_end_when_the_server_stops():
    async with aiohttp.ClientSession() as session:
        async with serve_emulator() as emulator:
            response = await session.get(f"{emulator.url}/api/v1/configmaps?watch=true")
            assert response.status == 200
        assert await asyncio.wait_for(response.content.read(), 5) == b""
        response.release()


def test_emulator_thread_serves_synchronous_callers():
    with EmulatorThread() as emulator:
        request = urllib.request.Request(f"{emulator.url}/api/v1/namespaces/default/configmaps", method="POST",
                                         data=json.dumps({"metadata": {"name": "a"}}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201
        assert emulator.get_object("v1", "configmaps", "default", "a")["metadata"]["resourceVersion"]
        assert [o["metadata"]["name"] for o in emulator.list_objects("v1", "configmaps")] == ["a"]


async def test_dry_run_is_refused_rather_than_written():
    async with serve_emulator() as emulator, aiohttp.ClientSession() as session:
        base = f"{emulator.url}/api/v1/namespaces/default/configmaps"
        async with session.post(f"{base}?dryRun=All", json={"metadata": {"name": "a"}}) as response:
            assert response.status == 400
        assert emulator.get_object("v1", "configmaps", "default", "a") is None
