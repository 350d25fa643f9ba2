"""Who made a change. The Kubernetes API does not put the requesting user on the object, so:

- opsctl stamps every change it makes with the annotation `trading.tradeops.io/changed-by` (its user and
  the time; the time makes every stamp new, so an old stamp never claims a later change);
- otherwise the newest `managedFields` manager names the tool (`kubectl-edit`, `argocd-controller`, …);
- otherwise the actor is `unknown`.
In a cluster, the API server knows the user of every request: docs/compliance.md says how to get it from
an audit webhook backend or an admission webhook."""

from __future__ import annotations

import datetime
import getpass
import json
import socket
from collections.abc import Mapping
from typing import Any

CHANGED_BY_ANNOTATION = "trading.tradeops.io/changed-by"
UNKNOWN = "unknown"


def opsctl_actor(kube_user: str | None) -> str:
    """`alice@host via opsctl (kube user admin)`: the operating-system user and the kubeconfig user."""
    who = f"{getpass.getuser()}@{socket.gethostname()} via opsctl"
    return f"{who} (kube user {kube_user})" if kube_user else who


def stamp(actor: str, now: datetime.datetime | None = None) -> dict[str, str]:
    """The annotation opsctl adds to a change it makes."""
    moment = (now or datetime.datetime.now(datetime.UTC)).isoformat()
    return {CHANGED_BY_ANNOTATION: json.dumps({"actor": actor, "at": moment}, sort_keys=True)}


def actor_of(metadata: Mapping[str, Any], previous_stamp: str | None) -> str:
    """Who made the change that produced this metadata: a new opsctl stamp, else the newest field manager."""
    annotations = metadata.get("annotations") or {}
    current = annotations.get(CHANGED_BY_ANNOTATION)
    if current and current != previous_stamp:
        try:
            return str(json.loads(current)["actor"])
        except (ValueError, KeyError, TypeError):
            return f"{UNKNOWN} (unreadable {CHANGED_BY_ANNOTATION} annotation)"
    managers = [m for m in metadata.get("managedFields") or [] if isinstance(m, dict) and m.get("manager")]
    if managers:
        newest = max(managers, key=lambda m: str(m.get("time") or ""))
        return f"{UNKNOWN} user via {newest['manager']}"
    return UNKNOWN
