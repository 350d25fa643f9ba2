"""Pod and container settings every workload the program defines shares: non-root, read-only root
filesystem, no capabilities, seccomp RuntimeDefault, requests and limits."""

from __future__ import annotations

from typing import Any

PART_OF = "tradeops"
MANAGED_BY = "pulumi"


def raw(value: Any) -> Any:
    """A Kubernetes-shaped value (camelCase keys, as in YAML), handed to the provider as it is: typing it
    as the SDK's snake_case TypedDicts would only obscure the manifest."""
    return value


def labels(name: str, component: str, **extra: str) -> dict[str, str]:
    """The standard `app.kubernetes.io/*` labels."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **extra,
    }


def pod_security(uid: int) -> dict[str, Any]:
    """Pod-level security context for a numeric non-root user."""
    if uid == 0:
        raise ValueError("pods run as a non-root user")
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """Container-level security context: nothing to escalate to, nothing to write outside volumes."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    """Requests and limits (both always set)."""
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}
