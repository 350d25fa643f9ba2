"""What `opsctl top` shows, computed from query results alone (no I/O): one line per (namespace, symbol)
with its phase, revisions, tick rate, tick-to-signal p95, processing error ratio, hit rate against the best
baseline, PnL, drawdown, exposure and the least error budget left over its SLOs.

A value Prometheus does not have is None and shows as "no data", never as 0: a symbol without scored
signals has no hit rate, a quantile of no observations (NaN) is no latency, and a ratio over no ticks is no
ratio (the denominators are guarded `> 0`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic.alias_generators import to_camel

Labels = Mapping[str, str]
Vector = Sequence[tuple[Labels, float]]
Key = tuple[str, str]
"""(namespace, symbol)"""
NO_DATA = "no data"
WINDOW = "1m"
BY = "namespace, symbol"
_TICKS = f"sum by ({BY}) (rate(tradeops_ticks_total[{WINDOW}]))"

QUERIES: dict[str, str] = {
    "revisions": f"count by ({BY}, revision) (tradeops_runtime_info)",
    "tick_rate": _TICKS,
    "tick_to_signal_p95": f"histogram_quantile(0.95, sum by ({BY}, le) "
                          f"(rate(tradeops_tick_to_signal_seconds_bucket[{WINDOW}])))",
    # Processing errors over processed messages; no error series yet while ticks flow is a ratio of 0.
    "error_ratio": f'(sum by ({BY}) (rate(tradeops_errors_total{{stage="process"}}[{WINDOW}])) or 0 * {_TICKS})'
                   f" / ({_TICKS} > 0)",
    "hit_rate": f"avg by ({BY}) (tradeops_signal_hit_rate)",
    "baseline_hit_rate": f"max by ({BY}) (tradeops_signal_baseline_hit_rate)",
    "pnl": f"sum by ({BY}) (tradeops_pnl)",
    "drawdown": f"max by ({BY}) (tradeops_drawdown_ratio)",
    "exposure": f'sum by ({BY}) (tradeops_exposure{{kind="notional"}})',
    "budget_left": f"min by ({BY}) (slo:error_budget_remaining:ratio)",
}
"""One PromQL per field, each answering per (namespace, symbol); budgets come from the generated rules."""

COLUMNS = ["SYMBOL", "PHASE", "REV", "TICKS/S", "P95 MS", "ERRORS", "HIT (VS BASE)", "PNL", "DRAWDOWN",
           "EXPOSURE", "BUDGET"]


@dataclass(frozen=True)
class SymbolLine:
    namespace: str
    symbol: str
    phase: str | None = None
    revisions: tuple[str, ...] = ()
    tick_rate: float | None = None
    tick_to_signal_p95: float | None = None
    """Seconds."""
    error_ratio: float | None = None
    hit_rate: float | None = None
    baseline_hit_rate: float | None = None
    pnl: float | None = None
    drawdown: float | None = None
    exposure: float | None = None
    budget_left: float | None = None

    def as_dict(self) -> dict[str, object]:
        """camelCase keys, like opsctl's other -o json output; None stays null (no data)."""
        return {to_camel(k): list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class _Builder:
    values: dict[str, Any] = field(default_factory=dict)
    revisions: set[str] = field(default_factory=set)


def _value(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def _key(labels: Labels) -> Key:
    return labels.get("namespace", ""), labels.get("symbol", "")


def lines(results: Mapping[str, Vector], phases: Mapping[Key, str] | None = None) -> list[SymbolLine]:
    """A line for every symbol any query or the API knows, sorted by namespace and symbol."""
    builders: dict[Key, _Builder] = {}
    for name, vector in results.items():
        for labels, value in vector:
            if not labels.get("symbol"):
                continue
            builder = builders.setdefault(_key(labels), _Builder())
            if name == "revisions":
                builder.revisions.add(labels.get("revision", "?"))
            else:
                builder.values[name] = _value(value)
    for key in phases or {}:
        builders.setdefault(key, _Builder())
    return [SymbolLine(namespace, symbol, (phases or {}).get((namespace, symbol)),
                       tuple(sorted(b.revisions, key=_revision_order)), **b.values)
            for (namespace, symbol), b in sorted(builders.items())]


def _revision_order(revision: str) -> tuple[int, str]:
    return (int(revision), "") if revision.isdigit() else (1 << 30, revision)


def _fmt(value: float | None, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    return NO_DATA if value is None else f"{value * scale:{spec}}{suffix}"


def _hit(line: SymbolLine) -> str:
    if line.hit_rate is None:
        return NO_DATA
    if line.baseline_hit_rate is None:
        return f"{line.hit_rate * 100:.1f}%"
    return f"{line.hit_rate * 100:.1f}% ({(line.hit_rate - line.baseline_hit_rate) * 100:+.1f})"


def cells(line: SymbolLine) -> list[str]:
    """The table row of a line, in COLUMNS order."""
    symbol = f"{line.namespace}/{line.symbol}" if line.namespace else line.symbol
    return [
        symbol,
        line.phase or NO_DATA,
        ",".join(line.revisions) or NO_DATA,
        _fmt(line.tick_rate, ".1f"),
        _fmt(line.tick_to_signal_p95, ".2f", 1000),
        _fmt(line.error_ratio, ".2f", 100, "%"),
        _hit(line),
        _fmt(line.pnl, ",.0f"),
        _fmt(line.drawdown, ".2f", 100, "%"),
        _fmt(line.exposure, ",.0f"),
        _fmt(line.budget_left, ".1f", 100, "%"),
    ]
