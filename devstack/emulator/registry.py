"""Served resources: the built-in ones kopf, kubectl and the operator use, plus CRDs registered at run time;
and the discovery documents (`/api`, `/apis`, `/apis/<group>/<version>`) derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    schema: dict[str, Any] | None = None
    printer_columns: tuple[dict[str, Any], ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)


def _rt(group: str, version: str, plural: str, kind: str, **kw: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind, **kw)


BUILTINS: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=("status",)),
    _rt("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), subresources=("status",)),
    _rt("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "services", "Service", short_names=("svc",), categories=("all",), subresources=("status",)),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _rt("", "v1", "events", "Event", short_names=("ev",)),
    _rt("", "v1", "pods", "Pod", short_names=("po",), categories=("all",), subresources=("status", "log")),
    _rt("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
        subresources=("status",)),
    _rt("apps", "v1", "deployments", "Deployment", short_names=("deploy",), categories=("all",),
        subresources=("status", "scale")),
    _rt("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), categories=("all",),
        subresources=("status",)),
    _rt("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), categories=("all",),
        subresources=("status",)),
    _rt("apps", "v1", "controllerrevisions", "ControllerRevision"),
    _rt("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), categories=("all",), subresources=("status",)),
    _rt("batch", "v1", "jobs", "Job", categories=("all",), subresources=("status",)),
    _rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",),
        subresources=("status",)),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _rt("coordination.k8s.io", "v1", "leases", "Lease"),
    _rt("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
        namespaced=False, short_names=("crd", "crds"), subresources=("status",)),
)


def peering_crd(plural: str, kind: str, scope: str) -> dict[str, Any]:
    """kopf's peering CRDs, installed at start as on a cluster prepared for kopf: kopf finds them by
    watching CRDs. Schemaless (preserve unknown fields), no status subresource."""
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {"group": "kopf.dev", "scope": scope,
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]},
    }


PEERING_CRDS = (
    peering_crd("kopfpeerings", "KopfPeering", "Namespaced"),
    peering_crd("clusterkopfpeerings", "ClusterKopfPeering", "Cluster"),
)


@dataclass
class Registry:
    """Resources by (group, version, plural); CRDs come and go."""

    types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> Registry:
        registry = cls()
        for resource in BUILTINS:
            registry.add(resource)
        return registry

    def add(self, resource: ResourceType) -> None:
        self.types[resource.key()] = resource

    def remove_group_plural(self, group: str, plural: str) -> None:
        for key in [k for k in self.types if k[0] == group and k[2] == plural]:
            del self.types[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return next((r for r in self.types.values() if r.api_version == api_version and r.kind == kind), None)

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for group, version, _ in self.types:
            if group and version not in out.setdefault(group, []):
                out[group].append(version)
        return out

    # Discovery documents -------------------------------------------------------------------------

    def api_versions(self) -> dict[str, Any]:
        return {"kind": "APIVersions", "apiVersion": "v1", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}

    def api_group_list(self) -> dict[str, Any]:
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self.api_group(group) for group in sorted(self.groups())]}

    def api_group(self, group: str) -> dict[str, Any]:
        versions = self.groups().get(group, [])
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[0] if entries else {}}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        members = [r for r in self.types.values() if r.group == group and r.version == version]
        if not members:
            return None
        resources: list[dict[str, Any]] = []
        for r in sorted(members, key=lambda r: r.plural):
            resources.append({
                "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                "verbs": ALL_VERBS, "shortNames": list(r.short_names), "categories": list(r.categories),
            })
            for sub in r.subresources:
                verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
                entry: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "",
                                         "namespaced": r.namespaced, "kind": r.kind, "verbs": verbs}
                if sub == "scale":
                    entry.update(group="autoscaling", version="v1", kind="Scale")
                resources.append(entry)
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def resource_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        out.append(ResourceType(
            group=spec["group"], version=version["name"], plural=names["plural"], kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames", [])), categories=tuple(names.get("categories", [])),
            subresources=tuple(version.get("subresources", {}) or {}),
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=tuple(version.get("additionalPrinterColumns", [])),
        ))
    return out
