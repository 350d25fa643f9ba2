"""EmulatedKubernetes: kmock's KubernetesEmulator with the API-server semantics kopf, kubectl and the
operator depend on, and the controllers and kubelet of a one-node cluster, pinned by
tests/integration/test_emulator*.py and tests/unit/test_emulator_*.py.

Served over kmock's HTTP server; every Kubernetes request is answered from our own store:
- server-set metadata (uid, resourceVersion, generation on spec changes, creationTimestamp, generateName
  with apimachinery's alphabet);
- optimistic concurrency (409 on a stale resourceVersion), 409 AlreadyExists, 404 NotFound, 422 for a
  failed JSON-patch `test` and for schema violations;
- merge, JSON, strategic-merge (by item name) and apply patches; the status and scale subresources;
- watches that honour `resourceVersion` (410 Gone when older than the history or than a compaction,
  `Store.compact`, which also ends every open watch with the ERROR event carrying a 410 Status) and never lose an event
  (the snapshot and the subscription are taken in one synchronous step); label and field selectors on
  lists and watches (an object modified into a selection is ADDED, out of it DELETED, as real watch
  caches do); JSON watch streams; `timeoutSeconds`;
- CRDs registered when created: discovery, defaulting, pruning and validation from their schema,
  server-side Table printing with their printer columns (what `kubectl get` shows);
- the defaults and validation of Deployments, ReplicaSets, Jobs and Pods (`builtins.py`);
- ownerReference garbage collection, finalizers and deletionTimestamp, graceful deletion of Pods (a Pod
  on a node keeps its deletionTimestamp until its kubelet has stopped it), namespace deletion;
- a Deployment controller (`deployment_controller.py`: ReplicaSets per pod template, rolling update with
  maxSurge/maxUnavailable, Recreate, proportional scaling, pause, history cleanup, the Progressing and
  Available conditions with the real reasons and the progress deadline), a ReplicaSet controller
  (`replicaset_controller.py`), a Job controller (`job_controller.py`: Pods from the template, backoffLimit
  with Never and OnFailure, the failure back-off, activeDeadlineSeconds, the Complete and Failed conditions,
  ttlSecondsAfterFinished), a one-node scheduler and a pluggable kubelet (`kubelet.py`; by default
  `SimulatedKubelet`, in the devstack `devstack.fleet.ProcessKubelet`);
- Events from those controllers and kubelets (identical ones aggregated by count);
- a bounded request log and event history; `/metrics` counts the API requests served by verb, resource and
  subresource (`apiserver_request_total`, as kube-apiserver names it), so a benchmark can count writes.

Namespaces behave as on a real server: `default`, `kube-system` and `kube-public` exist at start, and
creating an object in a namespace that does not exist is refused with 404 NotFound. Deleting a namespace
deletes its contents at once (no Terminating phase).

What it still lacks compared with a real cluster: one node, no real scheduling (no resources, affinity,
taints or preemption), no Services/Endpoints controller (a Service selects nothing; ask pods at their
podIP), no kube-proxy or DNS, no NetworkPolicy enforcement, no StatefulSet/CronJob/DaemonSet/HPA/
PodDisruptionBudget controllers (those objects are only stored; evictions are not served); Jobs are
NonIndexed only (no Indexed completion mode, podFailurePolicy, successPolicy or backoffLimitPerIndex;
`suspend` is ignored) and have no Pod-tracking finalizers (the controller counts ended Pods in memory, so a
Pod deleted before it was seen ending is not counted as failed); controllers
adopt no orphans (an object is theirs only by its controller ownerReference) and use no informer delay;
pod-template hashes have the real form but not the real values (upstream hashes Go's printout of the
struct); no liveness or startup probes, init containers or ephemeral containers in the simulated kubelet;
no admission webhooks, RBAC or authentication (any token is accepted); no OpenAPI documents (run kubectl
with `--validate=false`); no aggregated discovery (kubectl falls back to the legacy documents); no
protobuf; managedFields and field ownership of server-side apply are not tracked (apply is an upsert
with merge semantics); strategic merge knows only common list keys and ignores `$patch`/`$retainKeys`
directives; of CEL validation rules (`x-kubernetes-validations`) only the transition rule `self == oldSelf` is
evaluated (a CRD with any other rule is refused at registration); conversion webhooks are ignored;
deletecollection, `dryRun` (refused with 400), list pagination, bookmarks and `resourceVersionMatch` are
not supported; garbage collection is immediate and always background (no foreground deletion); the
status subresource takes only `status` (a real Deployment status write may also change annotations).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp.web
import attrs
import yaml
from kmock import KubernetesEmulator, Request

from devstack.emulator import tables
from devstack.emulator.deployment_controller import DeploymentController
from devstack.emulator.events import EventRecorder
from devstack.emulator.job_controller import BACKOFF_SECONDS, JobController
from devstack.emulator.kubelet import Kubelet, SimulatedKubelet
from devstack.emulator.objects import ApiError, Objects, not_found
from devstack.emulator.patching import (
    PatchInvalidError,
    PatchTestError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from devstack.emulator.registry import Registry, ResourceType
from devstack.emulator.replicaset_controller import ReplicaSetController
from devstack.emulator.scheduler import Scheduler
from devstack.emulator.selectors import SelectorError, field_matcher, label_matcher
from devstack.emulator.store import Obj, Store, TooOldError, WatchEvent

log = logging.getLogger(__name__)


def _json(data: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _verb(method: str, name: str | None, watching: bool) -> str:
    """kube-apiserver's verb for a request: GET is get, list or watch; POST create; PUT update."""
    if method == "GET":
        return "WATCH" if watching else "GET" if name is not None else "LIST"
    return {"POST": "CREATE", "PUT": "UPDATE"}.get(method, method)


@attrs.define(kw_only=True)
class EmulatedKubernetes(KubernetesEmulator):
    """The emulated API server with its controllers and kubelet (a SimulatedKubelet unless one is given)."""

    kubelet: Kubelet = attrs.field(factory=SimulatedKubelet)
    write_failure_rate: float = 0.0
    """Fraction of writes answered 503 (seeded), to test clients' retries."""
    request_log_limit: int = 1000
    history_limit: int = 10000
    clock: Callable[[], float] = time.time
    registry: Registry = attrs.field(factory=Registry.with_builtins)
    store: Store = attrs.field(default=None)
    apiserver: Objects = attrs.field(default=None)
    recorder: EventRecorder = attrs.field(default=None)
    deployments: DeploymentController = attrs.field(default=None)
    replicasets: ReplicaSetController = attrs.field(default=None)
    jobs: JobController = attrs.field(default=None)
    job_backoff_seconds: float = BACKOFF_SECONDS
    """The Job controller's failure back-off before a failed Pod is replaced (tests shorten it)."""
    scheduler: Scheduler = attrs.field(default=None)
    _request_count: int = 0
    request_totals: collections.Counter[tuple[str, str, str, str]] = attrs.field(factory=collections.Counter)
    """Requests served, by (verb, group, resource, subresource): what `/metrics` reports."""
    _chaos: random.Random = attrs.field(factory=lambda: random.Random(7))

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store = Store(history=self.history_limit)
        self.apiserver = Objects(self.store, self.registry, self.clock)
        self.recorder = EventRecorder(self.apiserver)
        self.deployments = DeploymentController(self.apiserver, self.recorder)
        self.replicasets = ReplicaSetController(self.apiserver, self.recorder)
        self.jobs = JobController(self.apiserver, self.recorder, self.job_backoff_seconds)
        self.scheduler = Scheduler(self.apiserver, self.recorder, self.kubelet.node_name)
        self.kubelet.attach(self.apiserver, self.recorder)
        for observer in (self.deployments, self.replicasets, self.jobs, self.scheduler, self.kubelet):
            self.store.listeners.append(observer.observe)

    async def start(self) -> None:
        """Run the controllers and the kubelet (on the serving loop, before the first request)."""
        await self.kubelet.start()
        for controller in (self.deployments, self.replicasets, self.jobs, self.scheduler):
            controller.queue.start()

    # Entry point ---------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Build the request record ourselves: kmock's Kubernetes path parser fails on namespace URLs
        (`/api/v1/namespaces`), and the routing below parses paths on its own."""
        body = await raw_request.read()
        self._request_count += 1
        request = Request(
            id=self._request_count, method=raw_request.method, url=raw_request.url,
            params=dict(raw_request.query), headers=dict(raw_request.headers), body=body,
            text=body.decode(errors="replace"), raw_request=raw_request,
        )
        self._requests.append(request)
        log.debug("%s %s", raw_request.method, raw_request.path_qs)
        try:
            return await self._handle(request)
        except Exception as exc:  # an emulator bug must surface as a 500 Status, not a dropped connection
            log.exception("emulator failed on %s %s", raw_request.method, raw_request.path)
            return _json(ApiError(500, "InternalError", repr(exc)).status(), 500)

    async def _handle(self, request: Request) -> aiohttp.web.StreamResponse:
        if len(self._requests) > self.request_log_limit + max(16, self.request_log_limit // 10):
            del self._requests[: -self.request_log_limit]  # the last N, trimmed in amortised O(1)
        try:
            return await self._route(request)
        except ApiError as error:
            return _json(error.status(), error.code)

    async def _route(self, request: Request) -> aiohttp.web.StreamResponse:
        path = request.url.path.rstrip("/") or "/"
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        discovery = self._discovery(path)
        if discovery is not None:
            return discovery
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and not (group == "" and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        params = dict(request.params)
        if method != "GET" and self.write_failure_rate and self._chaos.random() < self.write_failure_rate:
            raise ApiError(503, "ServiceUnavailable", "injected failure: the server is currently unable to "
                                                      "handle the request")
        if method != "GET" and params.get("dryRun"):
            raise ApiError(400, "BadRequest", "dryRun is not supported by the emulated API server")
        if sub is not None and sub not in rt.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "log" and method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")
        watching = method == "GET" and params.get("watch") in ("true", "1")
        self.request_totals[(_verb(method, name, watching), group, plural, sub or "")] += 1
        if watching:
            return await self._watch(request, rt, namespace, name, params)
        if method == "GET":
            return self._get(request, rt, namespace, name, sub, params)
        if method == "POST" and name is None:
            return _json(self.apiserver.create(rt, namespace, self._body(request)), 201)
        if method == "PUT" and name is not None:
            return self._written(sub, self._replace(rt, namespace, name, sub, self._body(request)))
        if method == "PATCH" and name is not None:
            return self._written(sub, self._patch(rt, namespace, name, sub, request))
        if method == "DELETE" and name is not None:
            return _json(self._delete(rt, namespace, name, params, self._body(request)))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")

    def _discovery(self, path: str) -> aiohttp.web.Response | None:
        parts = path.strip("/").split("/")
        if path == "/version":
            return _json({"major": "1", "minor": "30", "gitVersion": "v1.30.0-tradeops-emulator",
                          "platform": "linux/amd64"})
        if path in ("/healthz", "/readyz", "/livez"):
            return aiohttp.web.Response(text="ok")
        if path == "/metrics":
            return aiohttp.web.Response(text=self._metrics_text(), content_type="text/plain")
        if path == "/api":
            return _json(self.registry.api_versions())
        if path == "/apis":
            return _json(self.registry.api_group_list())
        if parts[0] == "apis" and len(parts) == 2:
            if parts[1] not in self.registry.groups():
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(self.registry.api_group(parts[1]))
        if (parts[0] == "apis" and len(parts) == 3) or (parts[0] == "api" and len(parts) == 2):
            group, version = (parts[1], parts[2]) if parts[0] == "apis" else ("", parts[1])
            doc = self.registry.resource_list(group, version)
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(doc)
        if parts[0] == "openapi":
            raise ApiError(404, "NotFound", "OpenAPI documents are not served by the emulator")
        return None

    def _metrics_text(self) -> str:
        lines = ["# HELP apiserver_request_total Requests served, by verb, group, resource and subresource.",
                 "# TYPE apiserver_request_total counter"]
        for (verb, group, resource, sub), count in sorted(self.request_totals.items()):
            lines.append(f'apiserver_request_total{{verb="{verb}",group="{group}",resource="{resource}",'
                         f'subresource="{sub}"}} {count}')
        return "\n".join(lines) + "\n"

    def _written(self, sub: str | None, obj: Obj) -> aiohttp.web.Response:
        return _json(self._scale_of(obj) if sub == "scale" else obj)

    @staticmethod
    def _body(request: Request) -> Any:
        content_type = request.headers.get("Content-Type", "")
        if "yaml" in content_type:
            return yaml.safe_load(request.body.decode() or "null")
        if request.body:
            try:
                return json.loads(request.body)
            except ValueError as exc:
                raise ApiError(400, "BadRequest", f"the body is not valid JSON: {exc}") from exc
        return None

    # Reads ---------------------------------------------------------------------------------------

    def _matcher(self, namespace: str | None, name: str | None, params: dict[str, str]) -> Callable[[Obj], bool]:
        try:
            labels = label_matcher(params.get("labelSelector"))
            fields = field_matcher(params.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc

        def accepts(obj: Obj) -> bool:
            meta = obj.get("metadata", {})
            return ((namespace is None or meta.get("namespace") == namespace)
                    and (name is None or meta.get("name") == name) and labels(obj) and fields(obj))
        return accepts

    def _get(self, request: Request, rt: ResourceType, namespace: str | None, name: str | None,
             sub: str | None, params: dict[str, str]) -> aiohttp.web.Response:
        wants_table = "as=Table" in request.headers.get("Accept", "")
        if name is None:
            accepts = self._matcher(namespace if rt.namespaced else None, None, params)
            items = sorted((o for _, o in self.store.items(rt.group, rt.plural) if accepts(o)),
                           key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            if wants_table:
                return _json(tables.table(rt, items, str(self.store.revision)))
            return _json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                          "metadata": {"resourceVersion": str(self.store.revision)}, "items": items})
        obj = self.apiserver.find(rt, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        if sub == "log" and rt.kind == "Pod":
            text = self.kubelet.logs(namespace or "", name, params.get("container"), params.get("previous") == "true")
            return aiohttp.web.Response(text=text, content_type="text/plain")
        if sub == "scale":
            return _json(self._scale_of(obj))
        if wants_table:
            return _json(tables.table(rt, [obj], str(self.store.revision)))
        return _json(obj)

    @staticmethod
    def _scale_of(obj: Obj) -> Obj:
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
                "status": {"replicas": obj.get("status", {}).get("replicas", 0)}}

    async def _watch(self, request: Request, rt: ResourceType, namespace: str | None, name: str | None,
                     params: dict[str, str]) -> aiohttp.web.StreamResponse:
        accepts = self._matcher(namespace if rt.namespaced else None, name, params)
        since_text = params.get("resourceVersion", "")
        if since_text not in ("", "0") and not since_text.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {since_text!r}")
        since = int(since_text) if since_text not in ("", "0") else None
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        assert request._raw_request is not None
        await response.prepare(request._raw_request)
        try:
            replay, sub = self.store.subscribe(rt.group, rt.plural, accepts, since)
        except TooOldError as exc:
            await response.write(_gone(exc))
            await response.write_eof()
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        try:
            for replayed in replay:
                await response.write(replayed.line())
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    event: WatchEvent | TooOldError | None = await asyncio.wait_for(sub.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                if isinstance(event, TooOldError):
                    await response.write(_gone(event))
                    break
                await response.write(event.line())
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError, RuntimeError):
            pass  # the client went away
        finally:
            self.store.unsubscribe(sub)
        return response

    # Writes --------------------------------------------------------------------------------------

    def _replace(self, rt: ResourceType, namespace: str | None, name: str, sub: str | None, body: Any) -> Obj:
        key = self.apiserver.key(rt, namespace, name)
        old = self.store.get(key)
        if old is None:
            raise not_found(rt, name)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        return self.apiserver.update(rt, key, old, body, sub)

    def _patch(self, rt: ResourceType, namespace: str | None, name: str, sub: str | None, request: Request) -> Obj:
        key = self.apiserver.key(rt, namespace, name)
        old = self.store.get(key)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        body = self._body(request)
        if old is None:
            if content_type == "application/apply-patch+yaml" and sub is None:
                return self.apiserver.create(rt, namespace,
                                           {**body, "metadata": {**body.get("metadata", {}), "name": name}})
            raise not_found(rt, name)
        try:
            if content_type == "application/json-patch+json":
                new = json_patch(old, body)
            elif content_type == "application/strategic-merge-patch+json":
                new = strategic_merge_patch(old, body)
            elif content_type in ("application/merge-patch+json", "application/apply-patch+yaml"):
                new = merge_patch(old, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"the patch type {content_type!r} is not supported")
        except PatchTestError as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                           f"{exc}") from exc
        except PatchInvalidError as exc:
            raise ApiError(422, "Invalid", str(exc)) from exc
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patched object is not an object")
        return self.apiserver.update(rt, key, old, new, sub)

    def _delete(self, rt: ResourceType, namespace: str | None, name: str, params: dict[str, str], body: Any) -> Obj:
        options = body if isinstance(body, dict) else {}
        policy = params.get("propagationPolicy") or options.get("propagationPolicy")
        grace_text = params.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        grace = int(grace_text) if grace_text not in (None, "") else None
        return self.apiserver.delete(rt, namespace, name, orphan=policy == "Orphan", grace_seconds=grace)

    async def shutdown(self) -> None:
        """Stop the controllers and the kubelet and end the watch streams (before the HTTP server closes)."""
        for controller in (self.deployments, self.replicasets, self.jobs, self.scheduler):
            controller.queue.stop()
        await self.kubelet.stop()
        self.store.close_watches()
        await asyncio.sleep(0)

    # Programmatic access -------------------------------------------------------------------------

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> Obj | None:
        try:
            obj = self.apiserver.find(self.apiserver.resource(api_version, plural), namespace, name)
        except KeyError:
            return None
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, api_version: str, plural: str, namespace: str | None = None) -> list[Obj]:
        try:
            rt = self.apiserver.resource(api_version, plural)
        except KeyError:
            return []
        return [copy.deepcopy(o) for o in self.apiserver.items(rt, namespace)]


def _gone(exc: TooOldError) -> bytes:
    """What kube-apiserver sends a watch it cannot serve from that resourceVersion: HTTP 200 and one ERROR
    event carrying a 410 Expired Status."""
    return json.dumps({"type": "ERROR", "object": ApiError(410, "Expired", str(exc)).status()}).encode() + b"\n"
