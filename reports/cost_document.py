"""The cost report as a document: per symbol per month, the month's projection against the budget, the
shared services and how they were split, idle capacity and other workloads."""

from __future__ import annotations

from typing import Any

from reports import charts
from reports.cost import CostResult
from reports.document import Chart, Document, Section, Table


def _money(value: float | None, currency: str) -> str:
    return "no data" if value is None else f"{value:,.2f} {currency}"


def data(result: CostResult) -> dict[str, Any]:
    return {
        "window": {"start": result.window.start.isoformat(), "end": result.window.end.isoformat(),
                   "hours": result.window.hours},
        "currency": result.currency,
        "hoursInMonth": result.hours_in_month,
        "symbols": [{"symbol": s.symbol, "cpu": s.cpu, "memory": s.memory, "shared": s.shared, "s3": s.s3,
                     "total": s.total, "monthly": s.monthly, "recentHourly": s.recent_hourly,
                     "projection": s.projection, "budget": s.budget, "withinBudget": s.within_budget}
                    for s in result.symbols],
        "sharedServices": result.services,
        "splits": {name: {"method": s.method, "shares": s.shares} for name, s in result.splits.items()},
        "s3": result.s3,
        "otherWorkloads": result.other,
        "idle": result.idle,
        "maxMonthlyPerSymbol": result.max_monthly,
        "targetMet": result.all_within_budget,
    }


def document(result: CostResult) -> Document:
    c = result.currency
    over = [s.symbol for s in result.symbols if not s.within_budget]
    verdict = ("every symbol's projection is within its budget" if not over
               else f"over budget: {', '.join(over)}")
    summary = [f"Window: {result.window.label()}.",
               f"Target < budget per symbol per month ({result.symbols[0].budget:g} {c} unless set per symbol): "
               f"{'MET' if not over else 'NOT MET'} — {verdict}." if result.symbols else "No symbol had cost data."]
    rows = [[s.symbol, _money(s.cpu, c), _money(s.memory, c), _money(sum(s.shared.values()), c),
             _money(s.s3, c) if result.s3 is not None else "not measured",
             _money(s.total, c), _money(s.monthly, c), _money(s.projection, c), _money(s.budget, c),
             "yes" if s.within_budget else "NO"] for s in result.symbols]
    per_symbol = Section("Cost per symbol", [
        "Own pods: max(requested, used) CPU and memory each hour at the policy's prices. Shared: the symbol's "
        "share of the shared services. S3: its share of the backups. Per month: the window scaled to a month. "
        f"Projection: the recent average hourly cost over the {result.hours_in_month} hours of this month."],
        [Table(["symbol", "own CPU", "own memory", "shared", "S3", "window total", "per month", "projection",
                "budget", "within"], rows)],
        [])
    if result.symbols:
        per_symbol.charts.append(Chart("projection", "Month projection per symbol", charts.bars(
            "Month projection per symbol", c, {s.symbol: s.projection for s in result.symbols},
            result.symbols[0].budget)))
    shared_rows = [[name, _money(cost, c), result.splits[name].method if name in result.splits else "-"]
                   for name, cost in result.services.items()]
    shared_rows.append(["s3 backups", _money(result.s3, c) if result.s3 is not None else "not measured (no bucket)",
                        result.splits["s3"].method if "s3" in result.splits else "-"])
    shared = Section("Shared services", ["Each is split across symbols by what they make it do."],
                     [Table(["service", "window cost", "split"], shared_rows)])
    rest = Section("Not attributed to a symbol", [], [Table(["line", "window cost"], [
        ["other workloads (neither a symbol's nor a shared service's)", _money(result.other, c)],
        ["idle (node capacity no container was charged for)", _money(result.idle, c)]])])
    return Document("cost", "Cost per symbol", summary, [per_symbol, shared, rest], data(result))
