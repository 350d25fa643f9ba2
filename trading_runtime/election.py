"""The I/O edge of leader election: the Lease over the API server's REST API (aiohttp; no Kubernetes client in
the runtime) and the loop that drives `leadership.Elector`.

In a cluster the runtime uses its pod's ServiceAccount: the token and CA at the standard in-cluster paths and
`KUBERNETES_SERVICE_HOST`/`_PORT` (the token file is re-read on each request: projected tokens rotate). The
devstack's equivalent is `TRADEOPS_KUBE_API_URL` (the emulator's plain-HTTP address, no token)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import pathlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from trading_runtime.leadership import Create, Elector, LeaseSpec, LeaseTimings, ObservedLease, Update

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_URL_ENV = "TRADEOPS_KUBE_API_URL"
LEASE_NAME_ENV = "TRADEOPS_LEASE_NAME"


class LeaseConflictError(Exception):
    """409: another candidate wrote first (stale resourceVersion) or created the Lease first."""


class LeaseApiError(Exception):
    """Any other answer than the one expected (RBAC, a missing namespace, a server error)."""


@dataclass(frozen=True)
class ApiAccess:
    """Where the API server is and how to authenticate to it."""

    url: str
    namespace: str
    token_path: pathlib.Path | None = None
    ca_path: pathlib.Path | None = None

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None,
                         service_account: pathlib.Path = SERVICE_ACCOUNT) -> ApiAccess | None:
        """The in-cluster access when the ServiceAccount is mounted; the devstack's URL when set; else None."""
        env = dict(os.environ) if env is None else env
        namespace = env.get("POD_NAMESPACE", "")
        if env.get(API_URL_ENV):
            return cls(env[API_URL_ENV].rstrip("/"), namespace or "default")
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        token = service_account / "token"
        if host and token.exists():
            if not namespace and (service_account / "namespace").exists():
                namespace = (service_account / "namespace").read_text().strip()
            host = f"[{host}]" if ":" in host else host
            return cls(f"https://{host}:{port}", namespace or "default", token, service_account / "ca.crt")
        return None


class LeaseApi:
    """GET, create and update one namespace's Leases."""

    def __init__(self, access: ApiAccess, timeout: float = 2.0) -> None:
        self.access = access
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(access.ca_path)) \
            if access.ca_path is not None else True
        self._session: aiohttp.ClientSession | None = None

    def _path(self, name: str | None = None) -> str:
        base = f"{self.access.url}/apis/coordination.k8s.io/v1/namespaces/{self.access.namespace}/leases"
        return base if name is None else f"{base}/{name}"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.access.token_path is not None:
            headers["Authorization"] = f"Bearer {self.access.token_path.read_text().strip()}"
        return headers

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.request(method, url, json=body, headers=self._headers(), ssl=self._ssl) as answer:
            payload = await answer.json(content_type=None)
            return answer.status, payload if isinstance(payload, dict) else {}

    async def get(self, name: str) -> ObservedLease:
        status, body = await self._call("GET", self._path(name))
        if status == 404:
            return ObservedLease(None)
        return self._observed(status, body, 200)

    async def create(self, name: str, spec: LeaseSpec) -> ObservedLease:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": self.access.namespace}, "spec": _spec(spec)}
        status, answer = await self._call("POST", self._path(), body)
        return self._observed(status, answer, 201)

    async def update(self, name: str, update: Update) -> ObservedLease:
        """PUT carrying the resourceVersion the update was planned from (409 when it is stale)."""
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": self.access.namespace,
                             "resourceVersion": update.resource_version},
                "spec": _spec(update.spec)}
        status, answer = await self._call("PUT", self._path(name), body)
        return self._observed(status, answer, 200)

    @staticmethod
    def _observed(status: int, body: dict[str, Any], expected: int) -> ObservedLease:
        if status == 409:
            raise LeaseConflictError(body.get("message", "conflict"))
        if status != expected:
            raise LeaseApiError(f"{status} {body.get('reason', '')}: {body.get('message', body)}")
        meta = body.get("metadata") or {}
        return ObservedLease(LeaseSpec.model_validate(body.get("spec") or {}), meta.get("resourceVersion"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _spec(spec: LeaseSpec) -> dict[str, Any]:
    # A released Lease has no holder: the field is left out, as client-go leaves it.
    return spec.model_dump(by_alias=True, exclude_none=True)


Listener = Callable[[bool], None]


class LeaderElection:
    """Runs the Elector against the API until stopped; tells `listener` each time leadership is gained or lost.
    Leadership is also withdrawn on time (at the renew deadline) while a request hangs."""

    def __init__(self, api: LeaseApi, name: str, identity: str, timings: LeaseTimings, listener: Listener,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api, self.name, self.timings = api, name, timings
        self.elector = Elector(identity, timings)
        self.listener, self.clock = listener, clock
        self.leading = False
        self.failures = 0
        self.holder: str | None = None
        self._observed = ObservedLease(None)

    def _set(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            self.listener(leading)

    async def _round(self) -> None:
        sent = self.clock()
        observed = await self.api.get(self.name)
        self._observed = observed
        step = self.elector.plan(observed, sent, datetime.datetime.now(datetime.UTC))
        if isinstance(step, Create):
            self._observed = await self.api.create(self.name, step.spec)
        elif isinstance(step, Update):
            self._observed = await self.api.update(self.name, step)
        else:
            self.holder = step.holder
            return
        assert self._observed.spec is not None
        self.elector.succeeded(self._observed.spec, sent)
        self.holder = self.elector.identity

    async def run(self, stop: asyncio.Event) -> None:
        # A process that has just started sits out one retry period: a released Lease goes to a standby that is
        # warm (and polls on that period) before a replacement pod that has not yet seen the feed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.timings.retry_period)
        while not stop.is_set():
            deadline = self.elector.deadline(self.clock())
            # While leading, a round may not outlast the lease we hold: on the deadline we stop leading.
            budget = self.timings.retry_period * 2 if deadline is None else max(0.0, deadline - self.clock())
            try:
                await asyncio.wait_for(self._round(), budget)
            except LeaseConflictError:
                pass  # another candidate wrote first: read again next round
            except (TimeoutError, aiohttp.ClientError, LeaseApiError, OSError, ValueError) as exc:
                self.failures += 1
                log.warning("lease %s: %s", self.name, exc or type(exc).__name__)
            self._set(self.elector.leading(self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._pause())
        # Stopped: still the holder until `release`, so that the working orders' results are recorded first (the
        # feed has stopped: nothing new is decided); a lease that runs out meanwhile goes to the next leader.

    def _pause(self) -> float:
        """Until the next round: the retry period, but never past the deadline of the lease we hold."""
        deadline = self.elector.deadline(self.clock())
        if deadline is None:
            return self.timings.retry_period
        return max(0.0, min(self.timings.retry_period, deadline - self.clock()))

    async def release(self) -> None:
        """Hand the Lease over (after the last order was written): the next candidate takes it at once."""
        self._set(False)
        try:
            observed = await self.api.get(self.name)
            update = self.elector.release(observed, datetime.datetime.now(datetime.UTC))
            if update is not None:
                await self.api.update(self.name, update)
                log.info("lease %s released", self.name)
        except (LeaseConflictError, LeaseApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("lease %s not released (it expires on its own): %s", self.name, exc)
        finally:
            await self.api.close()
