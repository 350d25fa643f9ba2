"""The Kubernetes side of opsctl: a KubeApi from the global options, with API errors mapped to exit codes."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3.exceptions
import yaml
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from audit.identity import opsctl_actor, stamp
from opsctl.errors import ExitCode, OpsctlError
from opsctl.render import event_time
from trading_operator import naming
from trading_operator.executor import TRADING_SYMBOLS, revision_from_object
from trading_operator.kube import CONTROLLER_REVISIONS, EVENTS, KubeApi, Obj, api_error_message, load_api_client
from trading_operator.revisions import Revision

T = TypeVar("T")


@dataclass
class Target:
    """Where commands act: the API client and the namespace."""

    kube: KubeApi
    namespace: str
    actor: str = ""
    """Who opsctl acts for, stamped on every change it makes (the audit trail's `who`)."""


SERVICE_ACCOUNT_NAMESPACE = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def kube_user(kubeconfig: str | None, context: str | None) -> str | None:
    """The user of the kubeconfig context (--context, else the current one), if there is a kubeconfig."""
    try:
        contexts, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
    except (k8s_config.ConfigException, OSError, TypeError, yaml.YAMLError):
        return None
    if context is not None:
        active = next((c for c in contexts or [] if c.get("name") == context), active)
    return ((active or {}).get("context") or {}).get("user") or None


def default_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig context (--context, else the current one); inside a pod without a
    kubeconfig, the service account's; else `default`."""
    try:
        contexts, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
    except (k8s_config.ConfigException, OSError, TypeError, yaml.YAMLError):
        if kubeconfig is None and SERVICE_ACCOUNT_NAMESPACE.is_file():
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        return "default"
    if context is not None:
        active = next((c for c in contexts or [] if c.get("name") == context), active)
    return str(((active or {}).get("context") or {}).get("namespace") or "default")


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Target:
    """The API client of the kubeconfig (or the pod's service account) and the namespace to act in."""
    try:
        api_client = load_api_client(kubeconfig, context)
    except (k8s_config.ConfigException, OSError, yaml.YAMLError) as exc:
        where = kubeconfig or "~/.kube/config (and not running in a pod)"
        raise OpsctlError(ExitCode.UNREACHABLE, f"no usable kubeconfig at {where}: {exc}") from exc
    return Target(KubeApi(api_client, timeout=15.0), namespace or default_namespace(kubeconfig, context),
                  opsctl_actor(kube_user(kubeconfig, context)))


def call(fn: Callable[..., T], *args: Any, what: str = "") -> T:
    """Run an API call; turn API and connection failures into OpsctlErrors with exit codes."""
    try:
        return fn(*args)
    except ApiException as exc:
        message = api_error_message(exc)
        if exc.status == 404:
            raise OpsctlError(ExitCode.NOT_FOUND, f"{what or 'object'} not found ({message})") from exc
        if exc.status in (401, 403):
            raise OpsctlError(ExitCode.UNREACHABLE, f"the API server refused access ({exc.status}): {message}") \
                from exc
        if 400 <= (exc.status or 0) < 500 and exc.status not in (408, 429):
            raise OpsctlError(ExitCode.REJECTED, f"the API server rejected the request ({exc.status}): {message}") \
                from exc
        raise OpsctlError(ExitCode.ERROR, f"API error {exc.status}: {message}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise OpsctlError(ExitCode.UNREACHABLE, f"cannot reach the API server: {exc}") from exc


def get_symbol(target: Target, name: str) -> Obj:
    return call(target.kube.get, TRADING_SYMBOLS, target.namespace, name,
                what=f'TradingSymbol "{name}" in namespace "{target.namespace}"')


def list_symbols(target: Target, all_namespaces: bool) -> list[Obj]:
    items = call(target.kube.list_objects, TRADING_SYMBOLS, None if all_namespaces else target.namespace,
                 what="the TradingSymbol API (is the CRD installed?)")
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


def patch_symbol(target: Target, name: str, patch: Obj) -> Obj:
    """Merge-patch a TradingSymbol, stamped with who asked (audit.identity)."""
    metadata = patch.get("metadata") or {}
    patch = {**patch, "metadata": {**metadata, "annotations": {**(metadata.get("annotations") or {}),
                                                                **stamp(target.actor or opsctl_actor(None))}}}
    return call(target.kube.merge_patch, TRADING_SYMBOLS, target.namespace, name, patch,
                what=f'TradingSymbol "{name}" in namespace "{target.namespace}"')


def revision_objects(target: Target, ts: Obj) -> list[Obj]:
    """The TradingSymbol's ControllerRevisions (owned by this very object), oldest first."""
    name, uid = ts["metadata"]["name"], ts["metadata"].get("uid")
    objs = call(target.kube.list_objects, CONTROLLER_REVISIONS, target.namespace, f"{naming.OWNER_NAME_LABEL}={name}")
    owned = [o for o in objs if not uid or any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences", []))]
    return sorted(owned, key=lambda o: int(o.get("revision", 0)))


def as_revisions(objects: list[Obj]) -> list[Revision]:
    return [revision_from_object(o) for o in objects]


def is_event_of(event: Obj, ts: Obj) -> bool:
    """An Event about this TradingSymbol: same kind and name, and the same uid when both are known (not one
    about an earlier object of the same name)."""
    involved, meta = event.get("involvedObject") or {}, ts["metadata"]
    if involved.get("kind") != "TradingSymbol" or involved.get("name") != meta["name"]:
        return False
    return not (involved.get("uid") and meta.get("uid") and involved["uid"] != meta["uid"])


def events_of(target: Target, ts: Obj) -> list[Obj]:
    """Events about a TradingSymbol, oldest first (filtered here: fieldSelectors are not served everywhere)."""
    events = call(target.kube.list_objects, EVENTS, target.namespace)
    mine = [e for e in events if is_event_of(e, ts)]
    return sorted(mine, key=_event_order)


def _event_order(event: Obj) -> tuple[str, int]:
    version = str((event.get("metadata") or {}).get("resourceVersion") or "")
    return event_time(event), int(version) if version.isdigit() else 0


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll `check` until it is true; exit code 5 (timeout) when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise OpsctlError(ExitCode.TIMEOUT, f"timed out after {timeout:.0f}s waiting for {what}")
