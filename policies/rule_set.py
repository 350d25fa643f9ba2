"""Everything `python -m policies rules` (and `make rules`) writes: the SLO groups of one policy, the alerts on
a symbol's state, the alert on the operator being down and the trading KPIs — one file, one PrometheusRule."""

from __future__ import annotations

from typing import Any

from policies.kpi_rules import kpi_group
from policies.models import SLOPolicySpec
from policies.operator_alerts import operator_group
from policies.rules import DEFAULT_SELECTOR, groups
from policies.symbol_alerts import symbol_group


def rule_groups(spec: SLOPolicySpec, selector: str = DEFAULT_SELECTOR) -> list[dict[str, Any]]:
    return [*groups(spec, selector), symbol_group(selector), operator_group(), kpi_group(selector)]
