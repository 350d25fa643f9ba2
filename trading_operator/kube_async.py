"""The operator's own API client: KubeApi's dict-in, dict-out interface over aiohttp, on kopf's event loop.

The blocking `kubernetes` client in worker threads was the operator's bottleneck under load (thread
hand-offs and its serialisation layer); this keeps the `kubernetes` package for what it is best at,
reading kubeconfigs and service-account credentials, and raises its `ApiException` so callers need
not care which client answered."""

from __future__ import annotations

import json
import ssl
import time
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
        query = {"labelSelector": label_selector} if label_selector else None
        items = (await self._call("GET", res.path(namespace), query=query)).get("items", [])
        return [dict(item) for item in items]

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
