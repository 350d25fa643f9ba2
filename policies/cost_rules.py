"""Prometheus rules from a CostPolicy: the hourly cost of every symbol (its own containers, plus its share of
each shared service), the month's projection, and an alert when a symbol's projection passes its budget.

The same PromQL as `opsctl report cost` (policies.cost_queries); object storage is not in Prometheus, so
the alert's figure leaves S3 out (the report adds it)."""

from __future__ import annotations

import re
from typing import Any

from policies.cost_queries import (
    SYMBOL,
    by_symbol,
    cpu_cores,
    memory_bytes,
    service_scope,
    service_volume_bytes,
    usage,
)
from policies.models import CostPolicySpec, SharedService
from policies.rules import number

WINDOW = "1h"
GIB = 2**30
DIRECT = "tradeops:cost_direct_hourly:usd"
SHARED = "tradeops:cost_shared_hourly:usd"
SHARE = "tradeops:cost_shared_share:ratio"
HOURLY = "tradeops:cost_hourly:usd"
PROJECTION = "tradeops:cost_monthly_projection:usd"
ALERT_NAME = "TradeopsCostProjectionOverBudget"
GROUP_NAME = "tradeops-cost"
COST_MANIFEST_NAME = "tradeops-cost"


def direct_cost(policy: CostPolicySpec, window: str) -> str:
    """Hourly cost of each symbol's own containers over the window."""
    prices = policy.prices
    return (f"{number(prices.cpu_core_hour)} * {by_symbol(cpu_cores(window), policy, window)}\n"
            f"+ {number(prices.memory_gib_hour)} * {by_symbol(memory_bytes(window), policy, window)} / {GIB}")


def shared_cost(service: SharedService, policy: CostPolicySpec, window: str) -> str:
    """Hourly cost of a shared service: its containers and its volumes."""
    prices = policy.prices
    scope = service_scope(service)
    parts = [f"{number(prices.cpu_core_hour)} * sum({cpu_cores(window, scope)})",
             f"{number(prices.memory_gib_hour)} * sum({memory_bytes(window, scope)}) / {GIB}"]
    volume = service_volume_bytes(service, window)
    if volume is not None:
        parts.append(f"({number(prices.storage_gib_month)} / {number(policy.hours_per_month)} * {volume} / {GIB} "
                     "or vector(0))")
    return "\n+ ".join(parts)


def _share(service: SharedService, policy: CostPolicySpec) -> str:
    measured = usage(service.split_by, policy, WINDOW)
    if measured is None:
        return f"count by ({SYMBOL}) ({DIRECT}) / on () group_left count({DIRECT})"
    return f"({measured}) / on () group_left sum({measured})"


def _budget_alert(policy: CostPolicySpec) -> str:
    special = sorted(policy.symbol_budgets)
    rest = f'{{{SYMBOL}!~"{"|".join(re.escape(s) for s in special)}"}}' if special else ""
    terms = [f"{PROJECTION}{rest} > {number(policy.budget_per_symbol)}"]
    terms += [f'{PROJECTION}{{{SYMBOL}="{s}"}} > {number(policy.symbol_budgets[s])}' for s in special]
    return "\nor\n".join(terms)


def cost_groups(policy: CostPolicySpec) -> list[dict[str, Any]]:
    """One rule group (recordings in dependency order, then the alert) for `policies.rules.render_rules`."""
    rules: list[dict[str, Any]] = [{"record": DIRECT, "expr": direct_cost(policy, WINDOW), "labels": {}}]
    for service in policy.shared_services:
        rules.append({"record": SHARED, "expr": shared_cost(service, policy, WINDOW),
                      "labels": {"service": service.name}})
        rules.append({"record": SHARE, "expr": _share(service, policy), "labels": {"service": service.name}})
    rules += [
        {"record": HOURLY, "labels": {},
         "expr": f"{DIRECT}\n+ (sum by ({SYMBOL}) ({SHARED} * on (service) group_right {SHARE}) or 0 * {DIRECT})"},
        {"record": PROJECTION, "labels": {},
         "expr": f"avg_over_time({HOURLY}[{policy.projection_window}]) * 24 * scalar(days_in_month())"},
        {"alert": ALERT_NAME, "expr": _budget_alert(policy), "for": policy.alert_for,
         "labels": {"severity": "ticket"},
         "annotations": {
             "summary": "{{ $labels.symbol }} is projected to cost more than its monthly budget",
             "description": (f"{{{{ $labels.symbol }}}} costs {{{{ printf \"%.2f\" $value }}}} {policy.currency} a "
                             f"month at its average hourly cost of the last {policy.projection_window} (compute, "
                             f"memory and its share of the shared services; object storage excluded). Budget: "
                             f"{number(policy.budget_per_symbol)} {policy.currency} unless the CostPolicy sets the "
                             f"symbol's own."),
             "runbook_url": "https://github.com/tradeops/tradeops/blob/main/docs/reports.md#cost-per-symbol"}},
    ]
    return [{"name": GROUP_NAME, "rules": rules}]
