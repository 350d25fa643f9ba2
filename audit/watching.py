"""List and watch one resource over the Kubernetes API (the I/O edge of the recorder): a list gives the
objects and the version to watch from; the watch streams ADDED/MODIFIED/DELETED from there until the server
ends it. A `410 Gone` (the version is too old) means list again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from trading_operator.kube import Obj, Resource


class WatchExpiredError(Exception):
    """The version watched from is gone from the server's history: list again."""


@dataclass(frozen=True)
class WatchEvent:
    type: str
    obj: Obj


class ApiStream:
    def __init__(self, api_client: k8s.ApiClient, timeout: float = 30.0) -> None:
        self.api_client = api_client
        self.timeout = timeout

    def _request(self, path: str, query: list[tuple[str, str]], read_timeout: float) -> Any:
        _, url, headers, _, _ = self.api_client.param_serialize(
            method="GET", resource_path=path, query_params=query,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self.api_client.call_api("GET", url, header_params=headers, _request_timeout=(5, read_timeout))
        if not 200 <= response.status <= 299:
            body = response.read()
            raise ApiException.from_response(http_resp=response, body=body.decode(), data=None)
        return response

    def list(self, res: Resource, namespace: str | None) -> tuple[list[Obj], str]:
        """The objects and the list's resourceVersion."""
        response = self._request(res.path(namespace), [], self.timeout)
        body = json.loads(response.read() or b"{}")
        return [dict(item) for item in body.get("items") or []], str((body.get("metadata") or {}).get(
            "resourceVersion") or "")

    def watch(self, res: Resource, namespace: str | None, version: str, seconds: int) -> Iterator[WatchEvent]:
        """Changes after `version`, for at most `seconds` (the server closes the stream then)."""
        query = [("watch", "true"), ("timeoutSeconds", str(seconds)), ("allowWatchBookmarks", "true")]
        if version:
            query.append(("resourceVersion", version))
        response = self._request(res.path(namespace), query, seconds + 10)
        try:
            for line in iter_resp_lines(response.response):
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    if status.get("code") == 410:
                        raise WatchExpiredError(str(status.get("message", "resource version too old")))
                    raise ApiException(status=status.get("code"), reason=str(status.get("message")))
                yield WatchEvent(str(event.get("type")), dict(event.get("object") or {}))
        finally:
            response.response.release_conn()
