"""The alert on the operator itself. The operator's series are what `TradeopsRuntimeAbsent` reads ("should
run"), and the operator is what rolls out, analyses and rolls back: while it is down, nothing reconciles, no
runtime's absence can page, and a bad revision stays. So its own absence pages.

`absent(up{...} == 1)` covers both ways it goes: a target that is scraped and fails (`up == 0`) and a target
that is gone (the pod deleted, its PodMonitor's target dropped, so no `up` series at all). The job is matched
by the operator's name (the PodMonitor's job is `<namespace>/tradeops-operator`), not by `.*operator.*`:
kube-prometheus-stack scrapes its own prometheus-operator, whose `up` would otherwise hide ours."""

from __future__ import annotations

from typing import Any

from policies.symbol_alerts import RUNBOOKS

OPERATOR_DOWN_ALERT = "TradeopsOperatorDown"
OPERATOR_JOB = 'job=~"(.*/)?tradeops-operator"'
"""The operator's scrape job: `monitoring/tradeops-operator` from its PodMonitor, or a plain scrape job."""
GROUP_NAME = "tradeops-operator"
DOWN_FOR = "5m"
"""Longer than the operator's restart (a leader hand-over and kopf's startup) so a rollout of it is silent."""


def operator_alerts(job: str = OPERATOR_JOB) -> list[dict[str, Any]]:
    return [
        {"alert": OPERATOR_DOWN_ALERT,
         "expr": f"absent(up{{{job}}} == 1)",
         "for": DOWN_FOR,
         "labels": {"severity": "page"},
         "annotations": {
             "summary": "the tradeops operator is down: nothing reconciles, rolls out or rolls back",
             "description": f"No scrape of the tradeops operator has succeeded for {DOWN_FOR}. TradingSymbols "
                            "are not reconciled, rollouts neither promote nor roll back, and "
                            "TradeopsRuntimeAbsent cannot fire (it reads the operator's series).",
             "runbook_url": f"{RUNBOOKS}#operator-down"}},
    ]


def operator_group(job: str = OPERATOR_JOB) -> dict[str, Any]:
    return {"name": GROUP_NAME, "rules": operator_alerts(job)}
