"""The one small object through which the operator reads the MLflow model registry (its REST API, `requests`):
a model reference (alias or version) to a version and the URL of its ONNX artifact.

A successful answer is reused for the reference's poll interval (a reconcile runs on every child event;
the registry is asked at most once per interval per reference); failures are never cached. Failures come
back as a `Lookup` with a reason, never raised."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlparse

import requests

from trading_operator.api import ModelRef
from trading_operator.conditions import Reason
from trading_operator.model_resolution import MODEL_FILE, Lookup

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
"""What MLflow answers (HTTP 400) for a model, version or alias it does not have."""


class _NotFoundError(Exception):
    pass


class ModelRegistry:
    """Resolves `spec.model` references against the tracking server at `tracking_uri`."""

    def __init__(self, tracking_uri: str | None, timeout_seconds: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = tracking_uri.rstrip("/") if tracking_uri else None
        self.timeout = timeout_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Lookup]] = {}
        self._session = requests.Session()

    def lookup(self, ref: ModelRef, now: str) -> Lookup | None:
        """The version `ref` names and its artifact URL (None: no registry configured)."""
        if self.url is None:
            return None
        key = (ref.name, ref.ref)
        cached = self._cache.get(key)
        if cached is not None and self._clock() - cached[0] < ref.poll_interval_seconds:
            return cached[1]
        try:
            version = self._version(ref)
            uri = self._artifact_url(ref.name, version)
        except _NotFoundError as exc:
            return Lookup(ref.name, ref.ref, now, failure=Reason.MODEL_NOT_FOUND, message=str(exc))
        except (requests.RequestException, ValueError, KeyError) as exc:
            return Lookup(ref.name, ref.ref, now, failure=Reason.MODEL_REGISTRY_UNREACHABLE,
                          message=f"MLflow at {self.url}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        found = Lookup(ref.name, ref.ref, now, version=version, uri=uri)
        self._cache[key] = (self._clock(), found)
        return found

    async def resolve(self, ref: ModelRef, now: str) -> Lookup | None:
        """`lookup` off the event loop."""
        return await asyncio.to_thread(self.lookup, ref, now)

    def _get(self, path: str, **params: str) -> dict[str, Any]:
        response = self._session.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        if response.status_code == 404 or (response.status_code == 400 and _error_code(response) in NOT_FOUND_CODES):
            raise _NotFoundError(_message(response) or f"{path} {params}: not found")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def _version(self, ref: ModelRef) -> int:
        if ref.version is not None:
            found = self._get(f"{API}/model-versions/get", name=ref.name, version=str(ref.version))
        else:
            found = self._get(f"{API}/registered-models/alias", name=ref.name, alias=ref.ref)
        version = found["model_version"]
        if version.get("status", "READY") != "READY":
            raise _NotFoundError(f"version {version['version']} of {ref.name} is {version['status']}, not READY")
        return int(version["version"])

    def _artifact_url(self, name: str, version: int) -> str:
        location = str(self._get(f"{API}/model-versions/get-download-uri", name=name, version=str(version))
                       ["artifact_uri"])
        return f"{self._loadable(location).rstrip('/')}/{MODEL_FILE}"

    def _loadable(self, location: str) -> str:
        """A location the runtime can read: proxied artifacts through the tracking server's HTTP API."""
        if location.startswith("mlflow-artifacts:"):  # `mlflow-artifacts:/path` or `mlflow-artifacts://host/path`
            return f"{self.url}{ARTIFACTS}/{quote(urlparse(location).path.lstrip('/'))}"
        return location.removeprefix("file://")

    def close(self) -> None:
        self._session.close()


def _body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: requests.Response) -> str:
    return str(_body(response).get("message", ""))


def _error_code(response: requests.Response) -> str:
    return str(_body(response).get("error_code", ""))
