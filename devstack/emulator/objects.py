"""The API server's object semantics, shared by the HTTP front (`server.py`) and the in-process controllers
and kubelets: server-set metadata, optimistic concurrency, admission (schema defaulting and validation for
custom resources, `builtins.py` for Deployments, ReplicaSets and Pods), the status subresource, finalizers,
graceful deletion of Pods and ownerReference garbage collection.

Everything is synchronous on the server's event loop: a controller's read-decide-write is atomic."""

from __future__ import annotations

import copy
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from devstack.emulator import builtins
from devstack.emulator.registry import PEERING_CRDS, Registry, ResourceType, resource_from_crd
from devstack.emulator.schemas import IMMUTABLE_RULE, admit, unsupported_rules
from devstack.emulator.store import Key, Obj, Store
from trading_operator.timestamps import FORMAT, now_rfc3339

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""apimachinery's `util/rand` alphabet (no vowels, no confusable characters): generateName suffixes and
pod-template hashes use it."""
DEFAULT_GRACE_SECONDS = 30


class ApiError(Exception):
    """An error answered as a Kubernetes Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.plural}.{rt.group or "core"} "{name}" not found'.replace(".core", ""),
                    {"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> ApiError:
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    summary = summary if len(causes) == 1 else f"[{summary}]"
    group = f".{rt.group}" if rt.group else ""
    return ApiError(422, "Invalid", f'{rt.kind}{group} "{name}" is invalid: {summary}',
                    {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes})


def spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def random_suffix(length: int = 5) -> str:
    return "".join(random.choices(NAME_ALPHABET, k=length))


class Objects:
    """Objects as the API server stores them. Raises ApiError as the API server answers."""

    def __init__(self, store: Store, registry: Registry, clock: Callable[[], float]) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        for ns in ("default", "kube-system", "kube-public"):
            self.store.put(("", "namespaces", "", ns), {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns}, "status": {"phase": "Active"}},
                           created=True)
        crds = self.resource("apiextensions.k8s.io/v1", "customresourcedefinitions")
        for crd in PEERING_CRDS:
            self.store.put(self.key(crds, None, crd["metadata"]["name"]), self._register_crd(copy.deepcopy(crd)),
                           created=True)

    def now(self) -> str:
        """The server's clock as an RFC 3339 timestamp (seconds, as the API writes them)."""
        return self._stamp(self.clock())

    # Lookup --------------------------------------------------------------------------------------

    def resource(self, api_version: str, plural: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise KeyError(f"no resource {api_version}/{plural}")
        return rt

    @staticmethod
    def key(rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.group, rt.plural, namespace or "" if rt.namespaced else "", name)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """The stored object (shared: never mutate it), or None."""
        return self.store.get(self.key(rt, namespace, name))

    def items(self, rt: ResourceType, namespace: str | None = None) -> Iterator[Obj]:
        for _, obj in self.store.items(rt.group, rt.plural, namespace):
            yield obj

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

    def create(self, rt: ResourceType, namespace: str | None, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        ns = self._require_namespace(rt, namespace)
        if rt.namespaced and meta.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                              "namespace sent on the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"][:58] + random_suffix()
        if not meta.get("name"):
            raise ApiError(422, "Invalid", f"{rt.kind} is invalid: metadata.name: Required value",
                           {"kind": rt.kind, "causes": [{"reason": "FieldValueRequired", "field": "metadata.name",
                                                         "message": "Required value"}]})
        if rt.namespaced:
            meta["namespace"] = ns
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation",
                             "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        key = self.key(rt, ns, meta["name"])
        if key in self.store.objects:
            raise ApiError(409, "AlreadyExists", f'{rt.plural} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": rt.group, "kind": rt.plural})
        if rt.has_status:
            obj.pop("status", None)
        meta["uid"] = str(uuid.uuid4())  # before admission, as BeforeCreate: a Job's selector names it
        obj = self._admit(rt, obj, None)
        initial = builtins.initial_status(rt.group, rt.kind, obj)
        if initial is not None:
            obj["status"] = initial
        if rt.kind == "CustomResourceDefinition":
            obj = self._register_crd(obj)
        return self.store.put(key, obj, created=True)

    def _admit(self, rt: ResourceType, obj: Obj, old: Obj | None) -> Obj:
        if rt.schema is None:
            obj = builtins.default(rt.group, rt.kind, obj)
            causes = builtins.validate(rt.group, rt.kind, obj, old)
            admitted = obj
        else:
            admitted, causes = admit(obj, rt.schema, old)
        if causes:
            raise invalid(rt, obj.get("metadata", {}).get("name", ""), causes)
        return admitted

    def update(self, rt: ResourceType, key: Key, old: Obj, new: Obj, sub: str | None) -> Obj:
        """PUT and PATCH: concurrency, status isolation, generation, admission."""
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
        meta = result.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp", "generation",
                      "deletionGracePeriodSeconds"):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        result["apiVersion"], result["kind"] = rt.api_version, rt.kind
        if sub is None or sub == "scale":
            result = self._admit(rt, result, old)
            meta = result["metadata"]
        if spec_part(result) != spec_part(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if rt.kind == "CustomResourceDefinition" and sub is None:
            result = self._register_crd(result)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") \
                and not int(meta.get("deletionGracePeriodSeconds") or 0):
            return self._remove(rt, key)
        return self.store.put(key, result, created=False)

    def write_status(self, rt: ResourceType, obj: Obj, status: Obj, annotations: dict[str, str] | None = None) \
            -> Obj:
        """A controller's status write (and, for Deployments, the revision annotations the Deployment
        status strategy lets through); skipped when nothing changes."""
        meta = obj["metadata"]
        merged = {**(meta.get("annotations") or {}), **(annotations or {})}
        if obj.get("status") == status and merged == (meta.get("annotations") or {}):
            return obj
        new_meta = {**meta, **({"annotations": merged} if merged else {})}
        key = self.key(rt, meta.get("namespace"), meta["name"])
        return self.store.put(key, {**obj, "metadata": new_meta, "status": status}, created=False)

    def delete(self, rt: ResourceType, namespace: str | None, name: str, orphan: bool = False,
               grace_seconds: int | None = None) -> Obj:
        key = self.key(rt, namespace, name)
        obj = self.store.get(key)
        if obj is None:
            raise not_found(rt, name)
        return self.delete_object(rt, key, obj, orphan, grace_seconds)

    def delete_object(self, rt: ResourceType, key: Key, obj: Obj, orphan: bool = False,
                      grace_seconds: int | None = None) -> Obj:
        """As the API server deletes: an object goes once it has no finalizers and no grace period left.
        A Pod a node runs gets its grace period (its kubelet stops the containers, then deletes it with
        grace 0); a shorter grace period shortens a pending one; a finalizer holds anything."""
        meta = obj["metadata"]
        grace = self._grace(rt, obj, grace_seconds)
        if meta.get("deletionTimestamp") and grace >= int(meta.get("deletionGracePeriodSeconds") or 0):
            return copy.deepcopy(obj)
        if grace == 0 and not meta.get("finalizers"):
            return self._remove(rt, key, collect=not orphan)
        marked = copy.deepcopy(obj)
        marked["metadata"]["deletionTimestamp"] = self._stamp(self.clock() + grace)
        marked["metadata"]["deletionGracePeriodSeconds"] = grace
        return self.store.put(key, marked, created=False)

    def _grace(self, rt: ResourceType, obj: Obj, requested: int | None) -> int:
        """A Pod's grace period: the request's, else the pod's terminationGracePeriodSeconds; 0 (immediate)
        for anything else, a pod no node runs, or a pod that has finished."""
        if rt.kind != "Pod" or rt.group:
            return 0
        if not obj.get("spec", {}).get("nodeName") or obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(int(requested), 0)
        return int(obj.get("spec", {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))

    @staticmethod
    def _stamp(epoch: float) -> str:
        return time.strftime(FORMAT, time.gmtime(epoch))

    def _remove(self, rt: ResourceType, key: Key, collect: bool = True) -> Obj:
        gone = self.store.remove(key)
        assert gone is not None
        if collect:
            self._collect_dependents(gone)
        self._after_delete(rt, gone)
        return gone

    def _collect_dependents(self, owner: Obj) -> None:
        """Background cascading deletion of everything the deleted object owned."""
        uid = owner["metadata"].get("uid")
        namespace = owner["metadata"].get("namespace")
        victims = [(key, obj) for key, obj in self.store.owned_by(uid)
                   if namespace is None or key[2] in ("", namespace)]
        if owner.get("kind") == "Namespace":
            victims += [(key, obj) for key, obj in list(self.store.objects.items())
                        if key[2] == owner["metadata"]["name"]]
        for key, obj in victims:
            current = self.store.get(key)
            rt = self.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            if current is not None and rt is not None:
                self.delete_object(rt, key, current)

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
        unsupported = [rule for r in served for rule in unsupported_rules(r.schema)]
        if unsupported:
            raise ApiError(422, "Invalid", "CustomResourceDefinition is invalid: the emulator evaluates only the "
                                           f"CEL rule `{IMMUTABLE_RULE}`, not: {'; '.join(unsupported)}")
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
