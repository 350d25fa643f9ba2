"""Alerts on the state of a symbol rather than on its error budget: a runtime that should run and is not
scraped, a symbol whose trading is halted, a symbol whose changes are held. The last two exist so that
Alertmanager can inhibit the burn-rate alerts of a symbol that is halted or paused on purpose
(`policies.alertmanager`).

"Should run" is the operator's view (`tradeops_operator_symbol_replicas`, one series per TradingSymbol it
watches, from `trading_operator.symbol_gauges`): a runtime that disappears stops its own series, so only
a series kept by someone else can notice it is gone — `absent()` for every symbol, in one rule."""

from __future__ import annotations

from typing import Any

from policies.rules import DEFAULT_SELECTOR

RUNTIME_ABSENT_ALERT = "TradeopsRuntimeAbsent"
HALTED_ALERT = "TradeopsSymbolHalted"
"""Fires while a symbol's trading is halted (kill switch, drawdown, black swan, storage)."""
PAUSED_ALERT = "TradeopsSymbolPaused"
"""Fires while a symbol's spec changes are held (`spec.paused`, or an inconclusive analysis)."""
RUNBOOKS = "https://github.com/tradeops/tradeops/blob/main/docs/runbooks.md"
GROUP_NAME = "tradeops-symbols"
ABSENT_FOR = "5m"
"""How long a runtime may be unscraped before it pages: longer than a restart with its readiness delay."""


def symbol_alerts(selector: str = DEFAULT_SELECTOR) -> list[dict[str, Any]]:
    """The rules of the `tradeops-symbols` group."""
    scraped = f"max by (namespace, symbol) (up{{{selector}}} == 1)"
    return [
        {"alert": RUNTIME_ABSENT_ALERT,
         "expr": f"max by (namespace, symbol) (tradeops_operator_symbol_replicas > 0)\n"
                 f"unless on (namespace, symbol)\n{scraped}",
         "for": ABSENT_FOR,
         "labels": {"severity": "page"},
         "annotations": {
             "summary": "{{ $labels.symbol }} should run and no runtime of it is scraped",
             "description": "{{ $labels.namespace }}/{{ $labels.symbol }}: the operator wants "
                            "{{ $value }} replica(s) and Prometheus has scraped none of them successfully "
                            f"for {ABSENT_FOR}: nothing trades it and its SLO alerts cannot fire.",
             "runbook_url": f"{RUNBOOKS}#runtime-absent"}},
        {"alert": HALTED_ALERT,
         "expr": f"max by (namespace, symbol, reason) (tradeops_trading_halted{{{selector}}}) == 1",
         "labels": {"severity": "ticket"},
         "annotations": {
             "summary": "{{ $labels.symbol }} is halted ({{ $labels.reason }})",
             "description": "{{ $labels.namespace }}/{{ $labels.symbol }} opens no positions: halted by "
                            "{{ $labels.reason }}. Its error-budget alerts are inhibited while it is.",
             "runbook_url": f"{RUNBOOKS}#symbol-halted"}},
        {"alert": PAUSED_ALERT,
         "expr": 'max by (namespace, symbol) (tradeops_operator_symbol_phase{phase="Paused"}) == 1',
         "labels": {"severity": "ticket"},
         "annotations": {
             "summary": "{{ $labels.symbol }} is paused: spec changes are held",
             "description": "{{ $labels.namespace }}/{{ $labels.symbol }} is in phase Paused: a change is "
                            "recorded and not rolled out. Its error-budget alerts are inhibited while it is.",
             "runbook_url": f"{RUNBOOKS}#symbol-paused"}},
    ]


def symbol_group(selector: str = DEFAULT_SELECTOR) -> dict[str, Any]:
    return {"name": GROUP_NAME, "rules": symbol_alerts(selector)}
