"""PromQL of the cost model (the OpenCost method), from metrics a cluster already has: kube-state-metrics
(`kube_pod_container_resource_requests`, `kube_pod_labels`, `kube_node_status_capacity`,
`kube_persistentvolumeclaim_resource_requests_storage_bytes`) and cAdvisor (`container_cpu_usage_seconds_total`,
`container_memory_working_set_bytes`). The cost report and the generated rules use these same expressions.

Each is the average over a window ending at the evaluation time, so a query range stepped by the window
integrates the whole range: a container is charged max(its request, its average use) per resource."""

from __future__ import annotations

from policies.models import CostPolicySpec, SharedService, SplitBy

CONTAINERS = 'container!="", container!="POD"'
SYMBOL = "symbol"


def _matchers(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def cpu_cores(window: str, scope: str = "") -> str:
    """Cores charged per container: max(request, average use over the window)."""
    requests = _matchers('resource="cpu"', CONTAINERS, scope)
    used = _matchers(CONTAINERS, scope)
    return (f"max by (namespace, pod, container) (max_over_time(kube_pod_container_resource_requests{{{requests}}}"
            f"[{window}]) or rate(container_cpu_usage_seconds_total{{{used}}}[{window}]))")


def memory_bytes(window: str, scope: str = "") -> str:
    """Bytes charged per container: max(request, average working set over the window)."""
    requests = _matchers('resource="memory"', CONTAINERS, scope)
    used = _matchers(CONTAINERS, scope)
    return (f"max by (namespace, pod, container) (max_over_time(kube_pod_container_resource_requests{{{requests}}}"
            f"[{window}]) or avg_over_time(container_memory_working_set_bytes{{{used}}}[{window}]))")


def _pod_symbols(policy: CostPolicySpec, window: str) -> str:
    label = policy.symbol_label
    return (f'max by (namespace, pod, {SYMBOL}) (label_replace(max_over_time(kube_pod_labels{{{label}!=""}}'
            f'[{window}]), "{SYMBOL}", "$1", "{label}", "(.+)"))')


def by_symbol(per_container: str, policy: CostPolicySpec, window: str) -> str:
    """A per-container quantity summed per symbol (pods joined to their symbol label)."""
    return (f"sum by ({SYMBOL}) ({per_container} * on (namespace, pod) group_left ({SYMBOL}) "
            f"{_pod_symbols(policy, window)})")


def service_scope(service: SharedService) -> str:
    return f'namespace="{service.namespace}", pod=~"{service.pod_pattern}"'


def service_volume_bytes(service: SharedService, window: str) -> str | None:
    if not service.pvc_pattern:
        return None
    return (f"sum(max_over_time(kube_persistentvolumeclaim_resource_requests_storage_bytes{{"
            f'namespace="{service.namespace}", persistentvolumeclaim=~"{service.pvc_pattern}"}}[{window}]))')


def node_capacity(resource: str, window: str) -> str:
    """Cores or bytes of every node (what the cluster pays for, used or not)."""
    return f'sum(max_over_time(kube_node_status_capacity{{resource="{resource}"}}[{window}]))'


def usage(split: SplitBy, policy: CostPolicySpec, window: str) -> str | None:
    """Per-symbol usage of a shared service over the window; None when the split is equal."""
    if split is SplitBy.ROWS_WRITTEN:
        return f"sum by ({SYMBOL}) (increase(tradeops_db_rows_written_total[{window}]))"
    if split is SplitBy.SAMPLES_SCRAPED:
        return f'sum by ({SYMBOL}) (sum_over_time(scrape_samples_scraped{{{SYMBOL}!=""}}[{window}]))'
    if split is SplitBy.OPERATOR_EVENTS:
        return f"sum by ({SYMBOL}) (increase(tradeops_operator_events_total[{window}]))"
    if split is SplitBy.CPU:
        return by_symbol(cpu_cores(window), policy, window)
    return None
