"""EmulatedKubernetes: kmock's KubernetesEmulator with the API-server semantics kopf, kubectl and the
operator depend on, pinned by tests/integration/test_emulator*.py.

Served over kmock's HTTP server; every Kubernetes request is answered from our own store:
- server-set metadata (uid, resourceVersion, generation on spec changes, creationTimestamp, generateName);
- optimistic concurrency (409 on a stale resourceVersion), 409 AlreadyExists, 404 NotFound, 422 for a
  failed JSON-patch `test` and for schema violations;
- merge, JSON, strategic-merge (by item name) and apply patches; the status subresource kept apart;
- watches that honour `resourceVersion` (410 Gone when older than the history) and never lose an event
  (the snapshot and the subscription are taken in one synchronous step); label and field selectors on
  lists and watches (an object modified into a selection is ADDED, out of it DELETED, as real watch
  caches do); JSON watch streams; `timeoutSeconds`;
- CRDs registered when created: discovery, defaulting, pruning and validation from their schema,
  server-side Table printing with their printer columns (what `kubectl get` shows);
- ownerReference garbage collection, finalizers and deletionTimestamp, namespace deletion;
- a minimal Deployment controller that reports ready replicas (or what a hook says);
- a bounded request log and event history.

Namespaces behave as on a real server: `default`, `kube-system` and `kube-public` exist at start, and
creating an object in a namespace that does not exist is refused with 404 NotFound. Deleting a namespace
deletes its contents at once (no Terminating phase).

What it still lacks compared with a real API server: no Pods, ReplicaSets or scheduling (Deployments
report readiness directly; pods and replicasets are only stored objects nobody creates); no admission
webhooks, RBAC or authentication (any token is accepted); no OpenAPI documents (run kubectl with
`--validate=false`); no aggregated discovery (kubectl falls back to the legacy documents); no protobuf;
managedFields and field ownership of server-side apply are not tracked (apply is an upsert with merge
semantics); strategic merge knows only common list keys and ignores `$patch`/`$retainKeys` directives;
CEL validation rules, `x-kubernetes-validations` and conversion webhooks are ignored; deletecollection,
`dryRun` (refused with 400), list pagination, bookmarks and `resourceVersionMatch` are not supported;
garbage collection is immediate and always background; Events are not deduplicated or aggregated.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import string
from collections.abc import Callable
from typing import Any

import aiohttp.web
import attrs
import yaml
from kmock import KubernetesEmulator, Request

from devstack.emulator import tables
from devstack.emulator.deployments import DeploymentController, DeploymentHook
from devstack.emulator.patching import (
    PatchInvalidError,
    PatchTestError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from devstack.emulator.registry import PEERING_CRDS, Registry, ResourceType, resource_from_crd
from devstack.emulator.schemas import admit
from devstack.emulator.selectors import SelectorError, field_matcher, label_matcher
from devstack.emulator.store import Key, Obj, Store, TooOldError, WatchEvent
from trading_operator.timestamps import now_rfc3339

log = logging.getLogger(__name__)



class ApiError(Exception):
    """An error answered as a Kubernetes Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


def _not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.plural}.{rt.group or "core"} "{name}" not found'.replace(".core", ""),
                    {"name": name, "group": rt.group, "kind": rt.plural})


def _json(data: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


@attrs.define(kw_only=True)
class EmulatedKubernetes(KubernetesEmulator):
    """The emulated API server. `deployment_delay` seconds after a Deployment changes, its status reports
    every replica ready, or what `deployment_ready_hook(deployment)` returns."""

    deployment_delay: float = 0.05
    write_failure_rate: float = 0.0
    """Fraction of writes answered 503 (seeded), to test clients' retries."""
    deployment_ready_hook: DeploymentHook | None = None
    request_log_limit: int = 1000
    history_limit: int = 10000
    registry: Registry = attrs.field(factory=Registry.with_builtins)
    store: Store = attrs.field(default=None)
    deployments: DeploymentController = attrs.field(default=None)
    _request_count: int = 0
    _chaos: random.Random = attrs.field(factory=lambda: random.Random(7))

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store = Store(history=self.history_limit)
        self.deployments = DeploymentController(self.store)
        for ns in ("default", "kube-system", "kube-public"):
            self.store.put(("", "namespaces", "", ns), {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns}, "status": {"phase": "Active"}},
                           created=True)
        crds = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crds is not None
        for crd in PEERING_CRDS:
            self.store.put(self._key(crds, None, crd["metadata"]["name"]), self._register_crd(copy.deepcopy(crd)),
                           created=True)

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
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._watch(request, rt, namespace, name, params)
        if method == "GET":
            return self._get(request, rt, namespace, name, sub, params)
        if method == "POST" and name is None:
            return _json(self._create(rt, namespace, self._body(request), params), 201)
        if method == "PUT" and name is not None:
            return self._written(sub, self._replace(rt, namespace, name, sub, self._body(request)))
        if method == "PATCH" and name is not None:
            return self._written(sub, self._patch(rt, namespace, name, sub, request, params))
        if method == "DELETE" and name is not None:
            body = self._body(request)
            policy = params.get("propagationPolicy") or (body.get("propagationPolicy") if isinstance(body, dict)
                                                          else None)
            return _json(self._delete(rt, namespace, name, policy))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")

    def _discovery(self, path: str) -> aiohttp.web.Response | None:
        parts = path.strip("/").split("/")
        if path == "/version":
            return _json({"major": "1", "minor": "30", "gitVersion": "v1.30.0-tradeops-emulator",
                          "platform": "linux/amd64"})
        if path in ("/healthz", "/readyz", "/livez"):
            return aiohttp.web.Response(text="ok")
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

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.group, rt.plural, namespace or "" if rt.namespaced else "", name)

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
        obj = self.store.get(self._key(rt, namespace, name))
        if obj is None:
            raise _not_found(rt, name)
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
            gone = ApiError(410, "Expired", str(exc)).status()
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
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
                    event: WatchEvent | None = await asyncio.wait_for(sub.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                await response.write(event.line())
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError, RuntimeError):
            pass  # the client went away
        finally:
            self.store.unsubscribe(sub)
        return response

    # Writes --------------------------------------------------------------------------------------

    def _require_namespace(self, rt: ResourceType, namespace: str | None) -> str:
        if not rt.namespaced:
            return ""
        if not namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object must be given in the URL")
        if self.store.get(("", "namespaces", "", namespace)) is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        return namespace

    def _create(self, rt: ResourceType, namespace: str | None, body: Any, params: dict[str, str]) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        ns = self._require_namespace(rt, namespace)
        if rt.namespaced and meta.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                              "namespace sent on the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + "0123456789",
                                                                         k=5))
        if not meta.get("name"):
            raise ApiError(422, "Invalid", f"{rt.kind} is invalid: metadata.name: Required value",
                           {"kind": rt.kind, "causes": [{"reason": "FieldValueRequired", "field": "metadata.name",
                                                         "message": "Required value"}]})
        if rt.namespaced:
            meta["namespace"] = ns
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(server_field, None)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        key = self._key(rt, ns, meta["name"])
        if key in self.store.objects:
            raise ApiError(409, "AlreadyExists", f'{rt.plural} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": rt.group, "kind": rt.plural})
        if rt.has_status:
            obj.pop("status", None)
        obj = self._admit(rt, obj)
        if rt.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        if rt.kind == "CustomResourceDefinition":
            obj = self._register_crd(obj)
        stored = self.store.put(key, obj, created=True)
        self._after_write(rt, key, None, stored)
        return stored

    def _admit(self, rt: ResourceType, obj: Obj) -> Obj:
        admitted, causes = admit(obj, rt.schema)
        if causes:
            name = obj.get("metadata", {}).get("name", "")
            summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
            summary = summary if len(causes) == 1 else f"[{summary}]"
            raise ApiError(422, "Invalid", f'{rt.kind}.{rt.group} "{name}" is invalid: {summary}',
                           {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes})
        return admitted

    def _replace(self, rt: ResourceType, namespace: str | None, name: str, sub: str | None, body: Any) -> Obj:
        key = self._key(rt, namespace, name)
        old = self.store.get(key)
        if old is None:
            raise _not_found(rt, name)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        return self._update(rt, key, old, body, sub)

    def _patch(self, rt: ResourceType, namespace: str | None, name: str, sub: str | None, request: Request,
               params: dict[str, str]) -> Obj:
        key = self._key(rt, namespace, name)
        old = self.store.get(key)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        body = self._body(request)
        if old is None:
            if content_type == "application/apply-patch+yaml" and sub is None:
                return self._create(rt, namespace, {**body, "metadata": {**body.get("metadata", {}), "name": name}},
                                    params)
            raise _not_found(rt, name)
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
        return self._update(rt, key, old, new, sub)

    def _update(self, rt: ResourceType, key: Key, old: Obj, new: Obj, sub: str | None) -> Obj:
        """The common part of PUT and PATCH: concurrency, status isolation, generation, admission."""
        old_meta, new_meta = old["metadata"], new.setdefault("metadata", {})
        wanted_rv = new_meta.get("resourceVersion")
        if wanted_rv not in (None, "") and wanted_rv != old_meta["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.plural} "{old_meta["name"]}": '
                                            "the object has been modified; please apply your changes to the "
                                            "latest version and try again",
                           {"name": old_meta["name"], "group": rt.group, "kind": rt.plural})
        if sub == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        elif sub == "scale":
            result = copy.deepcopy(old)
            result.setdefault("spec", {})["replicas"] = new.get("spec", {}).get("replicas", 1)
        else:
            result = copy.deepcopy(new)
            if rt.has_status:
                result.pop("status", None)
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
            result = self._admit(rt, result)
        meta = result.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp", "generation"):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        result["apiVersion"], result["kind"] = rt.api_version, rt.kind
        if _spec_part(result) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if rt.kind == "CustomResourceDefinition" and sub is None:
            result = self._register_crd(result)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            gone = self.store.remove(key)
            assert gone is not None
            self._collect_dependents(gone)
            self._after_delete(rt, gone)
            return gone
        stored = self.store.put(key, result, created=False)
        self._after_write(rt, key, old, stored)
        return stored

    def _delete(self, rt: ResourceType, namespace: str | None, name: str, policy: str | None) -> Obj:
        key = self._key(rt, namespace, name)
        obj = self.store.get(key)
        if obj is None:
            raise _not_found(rt, name)
        return self._delete_object(rt, key, obj, orphan=policy == "Orphan")

    def _delete_object(self, rt: ResourceType, key: Key, obj: Obj, orphan: bool = False) -> Obj:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return copy.deepcopy(obj)
            marked = copy.deepcopy(obj)
            marked["metadata"]["deletionTimestamp"] = now_rfc3339()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            return self.store.put(key, marked, created=False)
        gone = self.store.remove(key)
        assert gone is not None
        if not orphan:
            self._collect_dependents(gone)
        self._after_delete(rt, gone)
        return gone

    # Controllers ---------------------------------------------------------------------------------

    def _collect_dependents(self, owner: Obj) -> None:
        """Background cascading deletion of everything the deleted object owned."""
        uid = owner["metadata"].get("uid")
        namespace = owner["metadata"].get("namespace")
        victims = [(key, obj) for key, obj in list(self.store.objects.items())
                   if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
                   and (namespace is None or key[2] in ("", namespace))]
        if owner.get("kind") == "Namespace":
            victims += [(key, obj) for key, obj in list(self.store.objects.items())
                        if key[2] == owner["metadata"]["name"]]
        for key, obj in victims:
            current = self.store.get(key)
            rt = self.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            if current is not None and rt is not None:
                self._delete_object(rt, key, current)

    def _after_delete(self, rt: ResourceType, gone: Obj) -> None:
        if rt.kind == "CustomResourceDefinition":
            spec = gone.get("spec", {})
            group, plural = spec.get("group", ""), spec.get("names", {}).get("plural", "")
            for key, _ in list(self.store.items(group, plural)):
                self.store.remove(key)
            self.registry.remove_group_plural(group, plural)

    def _register_crd(self, crd: Obj) -> Obj:
        try:
            served = resource_from_crd(crd)
        except KeyError as exc:
            raise ApiError(422, "Invalid", f"CustomResourceDefinition is invalid: missing {exc}") from exc
        spec = crd["spec"]
        self.registry.remove_group_plural(spec["group"], spec["names"]["plural"])
        for resource in served:
            self.registry.add(resource)
        now = now_rfc3339()
        crd["status"] = {
            "acceptedNames": spec["names"],
            "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
            "conditions": [
                {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": now}
                for t, r, m in (("NamesAccepted", "NoConflicts", "no conflicts found"),
                                ("Established", "InitialNamesAccepted", "the initial names have been accepted"))
            ],
        }
        return crd

    def _after_write(self, rt: ResourceType, key: Key, old: Obj | None, new: Obj) -> None:
        if rt.kind == "Deployment" and rt.group == "apps":
            self.deployments.changed(key, old, new, self.deployment_delay, self.deployment_ready_hook)

    async def shutdown(self) -> None:
        """Stop the controllers and end the watch streams (before the HTTP server closes)."""
        await self.deployments.stop()
        self.store.close_watches()
        await asyncio.sleep(0)

    async def set_deployment_ready(self, namespace: str, name: str, ready: int) -> None:
        """Report `ready` replicas for a Deployment (as a harness running its pods would)."""
        self.deployments.report(("apps", "deployments", namespace, name), ready)

    # Programmatic access -------------------------------------------------------------------------

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> Obj | None:
        group, _, version = api_version.rpartition("/")
        rt = self.registry.get(group, version, plural)
        if rt is None:
            return None
        obj = self.store.get(self._key(rt, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def put_object(self, api_version: str, plural: str, obj: Obj) -> Obj:
        """Create or replace an object, status included, as a controller or kubelet would (harness use)."""
        group, _, version = api_version.rpartition("/")
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise KeyError(f"no resource {api_version}/{plural}")
        stored = copy.deepcopy(obj)
        stored["apiVersion"], stored["kind"] = rt.api_version, rt.kind
        meta = stored.setdefault("metadata", {})
        key = self._key(rt, meta.get("namespace"), meta["name"])
        old = self.store.get(key)
        if old is not None:
            meta.update({k: old["metadata"][k] for k in ("uid", "creationTimestamp", "generation")
                         if k in old["metadata"]})
        written = self.store.put(key, stored, created=old is None)
        self._after_write(rt, key, old, written)
        return copy.deepcopy(written)

    def remove_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> None:
        """Delete an object outright (harness use: a pod that is gone)."""
        group, _, version = api_version.rpartition("/")
        rt = self.registry.get(group, version, plural)
        if rt is not None:
            self.store.remove(self._key(rt, namespace, name))

    def list_objects(self, api_version: str, plural: str, namespace: str | None = None) -> list[Obj]:
        group, _, _ = api_version.rpartition("/")
        return [copy.deepcopy(o) for _, o in self.store.items(group, plural, namespace)]
