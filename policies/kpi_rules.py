"""Trading KPIs as recording rules, per namespace and symbol: what the dashboards and `opsctl top` read
instead of repeating the arithmetic.

Every ratio keeps its denominator above 0, so a quiet symbol shows "no data" rather than NaN or 0; restarts
are counter resets of a runtime pod's series (a crashed or OOM-killed container comes back in the same pod),
plus the operator's self-healing restarts (new pods, counted where the operator records them)."""

from __future__ import annotations

from typing import Any

from policies.rules import DEFAULT_SELECTOR

GROUP_NAME = "tradeops-kpis"
BY = "namespace, symbol"

FILL_RATIO = "tradeops:fill_ratio:rate1h"
SLIPPAGE = "tradeops:fill_slippage_bps:avg1h"
PNL = "tradeops:pnl:sum"
SIGNALS_PER_MINUTE = "tradeops:signals_per_minute:rate5m"
HALTED = "tradeops:trading_halted:max"
HALTED_SECONDS = "tradeops:trading_halted_seconds:1d"
ROLLBACKS = "tradeops:rollbacks:increase1d"
RESTARTS = "tradeops:runtime_restarts:1d"
SELF_HEALING = "tradeops:self_healing_restarts:increase1d"


def kpi_rules(selector: str = DEFAULT_SELECTOR) -> list[dict[str, Any]]:
    """The recording rules of the KPI group, in evaluation order (a rule may read one recorded above it)."""
    def rate(metric: str, window: str) -> str:
        return f"sum by ({BY}) (rate({metric}{{{selector}}}[{window}]))"

    def record(name: str, expr: str) -> dict[str, Any]:
        return {"record": name, "expr": expr}

    return [
        record(FILL_RATIO, f"{rate('tradeops_fills_total', '1h')}\n/\n({rate('tradeops_orders_total', '1h')} > 0)"),
        record(SLIPPAGE, f"{rate('tradeops_fill_slippage_bps_sum', '1h')}\n/\n"
                         f"({rate('tradeops_fill_slippage_bps_count', '1h')} > 0)"),
        record(PNL, f"sum by ({BY}) (tradeops_pnl{{{selector}}})"),
        record(SIGNALS_PER_MINUTE, f"60 * {rate('tradeops_signals_total', '5m')}"),
        record(HALTED, f"max by ({BY}) (tradeops_trading_halted{{{selector}}})"),
        # The share of the last day a symbol was halted, in seconds (only the time its runtime was scraped).
        record(HALTED_SECONDS, f"86400 * avg_over_time({HALTED}[1d])"),
        record(ROLLBACKS, f"sum by ({BY}) (increase(tradeops_operator_rollbacks_total{{{selector}}}[1d]))"),
        # One reset per restart of a pod's process: the max over the pod's series (one per message kind).
        record(RESTARTS, f"sum by ({BY}) (max by ({BY}, pod) (resets(tradeops_ticks_total{{{selector}}}[1d])))"),
        record(SELF_HEALING,
               f"sum by ({BY}) (increase(tradeops_operator_self_healing_total{{{selector}}}[1d]))"),
    ]


def kpi_group(selector: str = DEFAULT_SELECTOR) -> dict[str, Any]:
    return {"name": GROUP_NAME, "rules": kpi_rules(selector)}
