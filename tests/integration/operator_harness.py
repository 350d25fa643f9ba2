"""Helpers for driving the real operator process against the emulated API over HTTP."""

from __future__ import annotations

import copy
import http.server
import json
import os
import threading
import uuid
from typing import Any

from devstack.processes import wait_for
from trading_operator import naming
from trading_operator.builders import CREDENTIALS_SECRET
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import (
    CONFIGMAPS,
    CONTROLLER_REVISIONS,
    DEPLOYMENTS,
    EVENTS,
    NAMESPACES,
    KubeApi,
    Resource,
)

E2E_KUBECONFIG = os.environ.get("TRADEOPS_E2E_KUBECONFIG")
"""A real cluster to run the e2e-marked tests against (see conftest.py)."""
PATIENCE = 6.0 if E2E_KUBECONFIG else 1.0
"""Waits stretch on a real cluster: its pods pull, start and pass their readiness probes for real."""
E2E_FEED_URL = os.environ.get("TRADEOPS_E2E_FEED_URL")
"""The cluster's synthetic feed, which the pods of an e2e test namespace are pointed at."""
SECRETS = Resource("v1", "secrets")
UNPULLABLE_IMAGE = "registry.invalid/tradeops/not-the-runtime:1.0.0"
"""An image no registry serves (`.invalid` never resolves, RFC 6761): ErrImagePull then ImagePullBackOff from
kind's kubelet as from the devstack's (which runs only the trading-runtime and training images), with no network
involved."""

SPEC: dict[str, Any] = {
    "symbol": "SPY",
    "market": "equity-options",
    "image": "ghcr.io/tradeops/trading-runtime:1.0.0",
    "drain": {"timeoutSeconds": 30},
}


def new_namespace(kube: KubeApi) -> str:
    """A fresh namespace; on a real cluster with the runtime's credentials Secret pointing at the cluster's feed,
    the way production pods find theirs."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    if E2E_KUBECONFIG and E2E_FEED_URL:
        kube.create(SECRETS, name, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CREDENTIALS_SECRET},
                                    "stringData": {"TRADEOPS_FEED_URL": E2E_FEED_URL}})
    return name


def create_ts(kube: KubeApi, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": TRADING_SYMBOLS.api_version,
        "kind": "TradingSymbol",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**copy.deepcopy(SPEC), **spec},
    }
    return kube.create(TRADING_SYMBOLS, namespace, body)


def get_ts(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(TRADING_SYMBOLS, namespace, name)


def patch_spec(kube: KubeApi, namespace: str, name: str, spec: dict[str, Any]) -> None:
    kube.merge_patch(TRADING_SYMBOLS, namespace, name, {"spec": spec})


def status(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return get_ts(kube, namespace, name).get("status") or {}


def condition(kube: KubeApi, namespace: str, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(kube, namespace, name).get("conditions", []) if c["type"] == type_), {})


def wait_status(kube: KubeApi, namespace: str, name: str, timeout: float = 20.0, **expected: Any) \
        -> dict[str, Any]:
    """Wait until every given status field has the given value; returns the status."""
    def matches() -> dict[str, Any] | None:
        current = status(kube, namespace, name)
        return current if all(current.get(k) == v for k, v in expected.items()) else None

    return wait_for(matches, timeout * PATIENCE, f"{namespace}/{name} status {expected}")


def deployment(kube: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.get_or_none(DEPLOYMENTS, namespace, naming.child_name(name))


def running_revision(kube: KubeApi, namespace: str, name: str) -> int | None:
    found = deployment(kube, namespace, name)
    if found is None:
        return None
    return int(found["spec"]["template"]["metadata"]["labels"][naming.REVISION_LABEL])


def configmap(kube: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    """The mutable switches ConfigMap (the kill switch)."""
    return kube.get_or_none(CONFIGMAPS, namespace, naming.child_name(name))


def runtime_config(kube: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    """The immutable config ConfigMap the Deployment's pod template mounts."""
    found = deployment(kube, namespace, name)
    if found is None:
        return None
    sources = found["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    return kube.get_or_none(CONFIGMAPS, namespace, sources[0]["configMap"]["name"])


def revisions(kube: KubeApi, namespace: str, name: str) -> list[int]:
    items = kube.list_objects(CONTROLLER_REVISIONS, namespace, f"{naming.OWNER_NAME_LABEL}={name}")
    return sorted(int(i["revision"]) for i in items)


def events(kube: KubeApi, namespace: str, name: str) -> list[dict[str, Any]]:
    return [e for e in kube.list_objects(EVENTS, namespace)
            if e.get("involvedObject", {}).get("name") == name]


def wait_event(kube: KubeApi, namespace: str, name: str, reason: str, timeout: float = 20.0) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((e for e in events(kube, namespace, name) if e.get("reason") == reason), None)

    return wait_for(found, timeout * PATIENCE, f"a {reason} Event on {namespace}/{name}")


class PositionsServer:
    """Stands in for the trading pods' `/positions` report (the runtime serves it in a cluster)."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], int] = {}
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url_template(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/{{namespace}}/{{name}}/positions"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                key = (parts[0], parts[1]) if len(parts) == 3 else ("", "")
                if key not in outer.open:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"openPositions": outer.open[key]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def start(self) -> PositionsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
