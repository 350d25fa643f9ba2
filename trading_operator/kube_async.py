"""The operator's own API client: KubeApi's dict-in, dict-out interface over aiohttp, on kopf's event loop.

The blocking `kubernetes` client in worker threads was the operator's bottleneck under load (thread
hand-offs and its serialisation layer); this keeps the `kubernetes` package for what it is best at,
reading kubeconfigs and service-account credentials, and raises its `ApiException` so callers need
not care which client answered."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from trading_operator.kube import JSON_PATCH, MERGE_PATCH, Obj, Resource

AUTH_REFRESH_SECONDS = 30.0
"""How long the credentials' headers are reused: the kubeconfig's refresh hook reloads the whole kubeconfig
(and reads every proxy variable of the environment) on each call, ~2 ms that were a seventh of the operator's
CPU when called per request. Expiring tokens are renewed by the hook when it runs."""


def _ssl_context(configuration: k8s.Configuration) -> ssl.SSLContext | bool:
    if not configuration.host.startswith("https"):
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class AsyncKubeApi:
    """Async generic CRUD over REST paths; raises `kubernetes.client.exceptions.ApiException`."""

    def __init__(self, api_client: k8s.ApiClient, timeout: float = 30.0) -> None:
        self.configuration = api_client.configuration
        self.base = self.configuration.host.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._auth: dict[str, str] = {}
        self._auth_until = -1.0

    def _auth_headers(self) -> dict[str, str]:
        now = time.monotonic()
        if now >= self._auth_until:
            if self.configuration.refresh_api_key_hook is not None:
                self.configuration.refresh_api_key_hook(self.configuration)
            self._auth = {setting["key"]: setting["value"] for setting in self.configuration.auth_settings().values()
                          if setting["in"] == "header" and setting["value"]}
            self._auth_until = now + AUTH_REFRESH_SECONDS
        return self._auth

    def _headers(self, content_type: str) -> dict[str, str]:
        return {"Accept": "application/json", "Content-Type": content_type, **self._auth_headers()}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self.configuration), limit=32)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
                    content_type: str = "application/json") -> Obj:
        data = json.dumps(body) if body is not None else None
        try:
            async with self._client().request(method, self.base + path, data=data, params=query or None,
                                              headers=self._headers(content_type)) as response:
                text = await response.text()
                status, reason = response.status, response.reason
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Unreachable is retried like an overloaded server (callers back off on ApiException).
            raise ApiException(status=503, reason=f"API server unreachable: {exc!r}") from exc
        if not 200 <= status <= 299:
            raise ApiException(status=status, reason=reason, body=text)
        return dict(json.loads(text)) if text else {}

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        return await self._call("GET", res.path(namespace, name))

    async def get_or_none(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.get(res, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list_objects(self, res: Resource, namespace: str | None = None, label_selector: str | None = None) \
            -> list[Obj]:
        return (await self.list_versioned(res, namespace, label_selector))[0]

    async def list_versioned(self, res: Resource, namespace: str | None = None, label_selector: str | None = None) \
            -> tuple[list[Obj], str]:
        """The objects and the list's resourceVersion (where a watch of the same selection starts)."""
        query = {"labelSelector": label_selector} if label_selector else None
        listed = await self._call("GET", res.path(namespace), query=query)
        version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        return [dict(item) for item in listed.get("items") or []], version

    async def watch(self, res: Resource, namespace: str | None, label_selector: str | None, resource_version: str,
                    timeout_seconds: int = 300) -> AsyncIterator[Obj]:
        """The watch events (`{"type", "object"}`) of a selection after `resource_version`, until the server ends
        the stream; an `ERROR` event (410 Gone: the version is too old) is yielded like any other."""
        query = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": str(timeout_seconds),
                 "allowWatchBookmarks": "true"}
        if label_selector:
            query["labelSelector"] = label_selector
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        try:
            async with self._client().get(self.base + res.path(namespace), params=query, timeout=timeout,
                                          headers=self._headers("application/json")) as response:
                if not 200 <= response.status <= 299:
                    raise ApiException(status=response.status, reason=response.reason, body=await response.text())
                pending = b""
                async for chunk in response.content.iter_any():  # not readline: an object may exceed its limit
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield dict(json.loads(line))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiException(status=503, reason=f"API server unreachable: {exc!r}") from exc

    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        return await self._call("POST", res.path(namespace), body=body)

    async def merge_patch(self, res: Resource, namespace: str | None, name: str, patch: Obj) -> Obj:
        return await self._call("PATCH", res.path(namespace, name), body=patch, content_type=MERGE_PATCH)

    async def json_patch(self, res: Resource, namespace: str | None, name: str, ops: list[Obj]) -> Obj:
        return await self._call("PATCH", res.path(namespace, name), body=ops, content_type=JSON_PATCH)

    async def patch_status(self, res: Resource, namespace: str | None, name: str, status: Obj,
                           resource_version: str | None = None) -> Obj:
        """Merge-patch the status subresource; with `resource_version`, only if the object is still at it
        (a 409 Conflict otherwise)."""
        body: Obj = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._call("PATCH", res.path(namespace, name, "status"), body=body, content_type=MERGE_PATCH)

    async def delete(self, res: Resource, namespace: str | None, name: str) -> None:
        await self._call("DELETE", res.path(namespace, name))
