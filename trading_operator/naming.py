"""Names, labels and annotations the operator puts on (and reads from) Kubernetes objects."""

from __future__ import annotations

from trading_operator.api import GROUP

MANAGER = "tradeops-operator"
APP_NAME = "trading-runtime"
PART_OF = "tradeops"

# Annotations on the TradingSymbol (set by opsctl, read by the operator).
ROLLBACK_ANNOTATION = f"{GROUP}/rollback-to"
"""Requested manual rollback: a revision number, or `previous` for the stable revision."""

# Annotations and labels on children.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
REVISION_LABEL = f"{GROUP}/revision"
SYMBOL_LABEL = f"{GROUP}/symbol"
SPEC_HASH_LABEL = f"{GROUP}/spec-hash"
OWNER_NAME_LABEL = f"{GROUP}/trading-symbol"

METRICS_PORT = 9102
"""Port of the runtime's Prometheus metrics, health probes and position report."""

CONFIG_KEY = "runtime.yaml"
"""ConfigMap key holding the rendered runtime config (hashed into the pod template)."""
SWITCHES_KEY = "switches.yaml"
"""ConfigMap key holding the kill switch, which the runtime hot-reloads without a restart."""
CONFIG_MOUNT = "/etc/tradeops"


def child_name(ts_name: str) -> str:
    """Name shared by the Deployment, ConfigMap, Service, PDB and NetworkPolicy of a TradingSymbol."""
    return f"{ts_name}-trading"


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
