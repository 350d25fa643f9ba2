"""Names, labels and annotations the operator puts on (and reads from) Kubernetes objects."""

from __future__ import annotations

from trading_operator.identity import GROUP

MANAGER = "tradeops-operator"
APP_NAME = "trading-runtime"
PART_OF = "tradeops"

# Annotations on the TradingSymbol (set by opsctl, read by the operator).
ROLLBACK_ANNOTATION = f"{GROUP}/rollback-to"
"""Requested manual rollback: a revision number, or `previous` for the stable revision."""
PROMOTE_ANNOTATION = f"{GROUP}/promote"
"""Requested promotion of the revision under analysis (skips the rest of the run)."""
ABORT_ANNOTATION = f"{GROUP}/abort"
"""Requested abort of the revision under analysis (rolls back to stable, marks it aborted)."""
RETRY_ANNOTATION = f"{GROUP}/retry"
"""Requested retry of the aborted revision (a fresh analysis run)."""
RESTART_ANNOTATION = f"{GROUP}/restart"
"""Requested restart of the running revision's pods (a new pod template stamp, like `kubectl rollout restart`).
Every request's value is a JSON payload (`user_requests.RequestPayload`) binding it to a revision and generation."""
ANALYSIS_REQUESTED_ANNOTATION = f"{GROUP}/analysis-requested"
"""When (RFC 3339) a firing SLO alert (or the prometheus-loss drill) asked for a background analysis of the stable
revision now: the analysis loop measures it at its next look unless a measurement already followed
(`analysis_work.next_work`); the planner removes it once Prometheus answered a measurement made after it."""
TUNING_FROZEN_ANNOTATION = f"{GROUP}/tuning-frozen"
"""Present: the auto-tuner proposes nothing (a running proposal finishes)."""
REQUEST_ANNOTATIONS = (ROLLBACK_ANNOTATION, PROMOTE_ANNOTATION, ABORT_ANNOTATION, RETRY_ANNOTATION, RESTART_ANNOTATION)

# Annotations and labels on children.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
REVISION_LABEL = f"{GROUP}/revision"
SYMBOL_LABEL = f"{GROUP}/symbol"
SPEC_HASH_LABEL = f"{GROUP}/spec-hash"
OWNER_NAME_LABEL = f"{GROUP}/trading-symbol"
TRACK_LABEL = f"{GROUP}/track"
"""`shadow` on the pods of a shadow revision (trading disabled, compared with stable)."""
RESTARTED_AT_ANNOTATION = f"{GROUP}/restarted-at"
"""Stamped on the pod template by a self-healing restart."""

METRICS_PORT = 9102
"""Port of the runtime's Prometheus metrics, health probes and position report."""

CONFIG_KEY = "runtime.yaml"
"""Key of a revision's immutable config ConfigMap holding the rendered runtime config."""
SWITCHES_KEY = "switches.yaml"
"""Key of the mutable switches ConfigMap holding the kill switch, which the runtime hot-reloads."""
CONFIG_LABEL = f"{GROUP}/runtime-config"
"""On a revision's config ConfigMap: the digest of its runtime.yaml (the name's suffix, in full)."""
CONFIG_MOUNT = "/etc/tradeops"


def child_name(ts_name: str) -> str:
    """Name shared by the Deployment, switches ConfigMap, Service, PDB and NetworkPolicy of a TradingSymbol."""
    return f"{ts_name}-trading"


def lease_name(ts_name: str) -> str:
    """The Lease a TradingSymbol's replicas compete for: its holder trades (trading_runtime/leadership.py)."""
    return child_name(ts_name)


def config_name(ts_name: str, digest: str) -> str:
    """Name of the immutable ConfigMap holding a runtime config with this digest (kustomize's hash suffix)."""
    return f"{ts_name}-config-{digest[:10]}"


def shadow_name(ts_name: str) -> str:
    """Name of the Deployment and switches ConfigMap of a shadow revision."""
    return f"{ts_name}-trading-shadow"


def revision_name(ts_name: str, spec_hash: str) -> str:
    """Name of the ControllerRevision holding a spec with this hash."""
    return f"{ts_name}-{spec_hash[:10]}"


def selector_labels(ts_name: str) -> dict[str, str]:
    """Labels that select the pods of a TradingSymbol (immutable across revisions)."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": ts_name}


def common_labels(ts_name: str, symbol: str) -> dict[str, str]:
    """The `app.kubernetes.io/*` labels plus the owner and symbol labels put on every child."""
    return {
        **selector_labels(ts_name),
        "app.kubernetes.io/component": "trading",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGER,
        OWNER_NAME_LABEL: ts_name,
        SYMBOL_LABEL: symbol,
    }
