"""A small dict-in, dict-out Kubernetes client over the official `kubernetes` package.

Manifests stay plain dicts (the builders' output), so one generic client serves every kind; the
`kubernetes` ApiClient does the HTTP, authentication and kubeconfig handling."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class Resource:
    """A served resource: apiVersion and plural name, and whether it lives in a namespace."""

    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """The REST path of a collection or an object."""
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if sub is not None:
            base += f"/{sub}"
        return base


CONFIGMAPS = Resource("v1", "configmaps")
PODS = Resource("v1", "pods")
SERVICES = Resource("v1", "services")
EVENTS = Resource("v1", "events")
NAMESPACES = Resource("v1", "namespaces", namespaced=False)
DEPLOYMENTS = Resource("apps/v1", "deployments")
CONTROLLER_REVISIONS = Resource("apps/v1", "controllerrevisions")
PDBS = Resource("policy/v1", "poddisruptionbudgets")
NETWORK_POLICIES = Resource("networking.k8s.io/v1", "networkpolicies")
CRDS = Resource("apiextensions.k8s.io/v1", "customresourcedefinitions", namespaced=False)
SERVICE_ACCOUNTS = Resource("v1", "serviceaccounts")
ROLES = Resource("rbac.authorization.k8s.io/v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io/v1", "rolebindings")
LEASES = Resource("coordination.k8s.io/v1", "leases")
JOBS = Resource("batch/v1", "jobs")

RESOURCES_BY_KIND: dict[str, Resource] = {
    "ConfigMap": CONFIGMAPS,
    "Pod": PODS,
    "Service": SERVICES,
    "Event": EVENTS,
    "Namespace": NAMESPACES,
    "Deployment": DEPLOYMENTS,
    "ControllerRevision": CONTROLLER_REVISIONS,
    "PodDisruptionBudget": PDBS,
    "NetworkPolicy": NETWORK_POLICIES,
    "CustomResourceDefinition": CRDS,
    "ServiceAccount": SERVICE_ACCOUNTS,
    "Role": ROLES,
    "RoleBinding": ROLE_BINDINGS,
    "Lease": LEASES,
    "Job": JOBS,
}


def is_not_found(exc: BaseException) -> bool:
    """True for a 404 from the API server."""
    return isinstance(exc, ApiException) and exc.status == 404


def is_conflict(exc: BaseException) -> bool:
    """True for a 409 (already exists, or a stale resourceVersion)."""
    return isinstance(exc, ApiException) and exc.status == 409


def api_error_message(exc: ApiException) -> str:
    """The API server's own message of an error response, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return f"{exc.status} {exc.reason}"
    return str(body.get("message") or f"{exc.status} {exc.reason}")


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """An ApiClient from a kubeconfig (default locations) or, inside a pod, the service account."""
    try:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except k8s_config.ConfigException:
        if kubeconfig is not None:
            raise
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)
    return k8s.ApiClient(configuration)


class KubeApi:
    """Generic CRUD over REST paths with dict bodies; raises `ApiException` on API errors."""

    def __init__(self, api_client: k8s.ApiClient, timeout: float = 30.0) -> None:
        self.api_client = api_client
        self.timeout = timeout

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        _, url, headers, payload, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method, url, header_params=headers, body=payload, _request_timeout=self.timeout
        )
        response.read()
        text = response.data.decode() if response.data else ""
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return dict(json.loads(text)) if text else {}

    def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        return self._call("GET", res.path(namespace, name))

    def get_or_none(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.get(res, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_objects(
        self, res: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        query = [("labelSelector", label_selector)] if label_selector else []
        items = self._call("GET", res.path(namespace), query=query).get("items", [])
        return [dict(item) for item in items]

    def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        return self._call("POST", res.path(namespace), body=body)

    def replace(self, res: Resource, namespace: str | None, name: str, body: Obj) -> Obj:
        return self._call("PUT", res.path(namespace, name), body=body)

    def merge_patch(self, res: Resource, namespace: str | None, name: str, patch: Obj) -> Obj:
        return self._call("PATCH", res.path(namespace, name), body=patch, content_type=MERGE_PATCH)

    def json_patch(self, res: Resource, namespace: str | None, name: str, ops: list[Obj]) -> Obj:
        return self._call("PATCH", res.path(namespace, name), body=ops, content_type=JSON_PATCH)

    def patch_status(self, res: Resource, namespace: str | None, name: str, status: Obj) -> Obj:
        return self._call(
            "PATCH", res.path(namespace, name, "status"), body={"status": status}, content_type=MERGE_PATCH
        )

    def delete(self, res: Resource, namespace: str | None, name: str) -> None:
        self._call("DELETE", res.path(namespace, name))
