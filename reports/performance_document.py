"""The production analysis as a document: findings first (budget spent, most first), then the figures per
symbol and for the fleet, day by day, and every rollback, outage, halt and drill."""

from __future__ import annotations

import datetime
from typing import Any

from policies.rules import budget
from reports import charts
from reports.document import Chart, Document, Section, Table
from reports.performance import FLEET, Interval, PerformanceResult, SymbolFigures
from reports.stats import Proportion


def _time(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


def _day_start(ts: float) -> datetime.datetime:
    """The start of the day a day-end timestamp closes (where a chart puts that day)."""
    return _time(ts) - datetime.timedelta(days=1)


def _day(ts: float) -> str:
    """The date a day-end timestamp closes."""
    return (_time(ts) - datetime.timedelta(seconds=1)).strftime("%Y-%m-%d")


def _pct(value: float | None, digits: int = 2) -> str:
    return "no data" if value is None else f"{value * 100:.{digits}f} %"


def _ms(value: float | None) -> str:
    return "no data" if value is None else f"{value * 1000:.2f} ms"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _rate(p: Proportion) -> str:
    interval = p.interval()
    if p.rate is None or interval is None:
        return "no data"
    return f"{p.rate:.1%} [{interval[0]:.1%}, {interval[1]:.1%}] (n={p.trials})"


def _window_ratio(result: PerformanceResult, f: SymbolFigures, slo_name: str) -> float | None:
    slo = next((s for s in result.slos if s.name == slo_name), None)
    spent = f.spent.get(slo_name)
    return None if slo is None or spent is None else spent * budget(slo)


def _intervals(rows: list[Interval]) -> list[list[str]]:
    return [[i.symbol, i.what, _time(i.start).isoformat(timespec="minutes"), _minutes(i.seconds)] for i in rows]


def data(result: PerformanceResult) -> dict[str, Any]:
    def keyed(values: dict[float, float]) -> dict[str, float]:
        return {_day(t): v for t, v in sorted(values.items())}

    return {
        "window": {"start": result.window.start.isoformat(), "end": result.window.end.isoformat()},
        "objectives": {slo.name: slo.objective for slo in result.slos},
        "symbols": {s: {
            "latency": {f"p{round(q * 100)}": keyed(v) for q, v in f.latency.items()},
            "errorRatio": keyed(f.error_ratio), "availability": keyed(f.availability),
            "budgetSpent": f.spent,
            "hitRate": {"hits": f.hits.hits, "calls": f.hits.trials, "rate": f.hits.rate, "interval": f.hits.interval(),
                        "baselines": {n: {"hits": b.hits, "calls": b.trials, "rate": b.rate, "interval": b.interval()}
                                      for n, b in f.baselines.items()},
                        "verdict": f.verdict()},
            "signals": keyed(f.signals), "orders": {_day(t): n for t, n in sorted(f.orders.items())},
            "fills": {_day(t): n for t, n in sorted(f.fills.items())}, "rejections": f.rejections,
            "pnl": keyed(f.pnl), "pnlDaysWithRestart": sorted(_day(t) for t in f.restart_days),
            "maxDrawdown": keyed(f.drawdown), "restarts": f.restarts,
        } for s, f in sorted(result.symbols.items())},
        "outages": [vars(i) for i in result.outages],
        "halts": [vars(i) for i in result.halts],
        "rollbacks": [vars(r) for r in result.rollbacks],
        "drills": [vars(d) for d in result.drills],
        "worstHours": [vars(h) for h in result.worst_hours],
        "findings": [vars(f) for f in result.findings],
    }


def document(result: PerformanceResult) -> Document:
    symbols = sorted(s for s in result.symbols if s != FLEET)
    fleet = result.symbols.get(FLEET)
    availability = next((s for s in result.slos if s.name == "availability"), None)
    summary = [f"Window: {result.window.label()}; {len(symbols)} symbols."]
    if fleet is not None and availability is not None:
        ratio = _window_ratio(result, fleet, "availability")
        summary.append(f"Fleet availability {_pct(None if ratio is None else 1 - ratio, 3)} against "
                       f"{availability.objective * 100:g} %.")
    if result.findings:
        summary.append(f"First to optimise: {result.findings[0].text}.")
    findings = Section("Findings: what to optimise next", ["Ranked by the share of each SLO's error budget spent "
                                                           "in the window (above 100 %: overspent)."],
                       [Table(["rank", "symbol", "SLO", "budget spent", "finding"],
                              [[str(i + 1), f.symbol, f.slo, f"{f.spent:.0%}", f.text]
                               for i, f in enumerate(result.findings)])])
    per_symbol_rows = []
    for s in [*symbols, FLEET]:
        f = result.symbols.get(s)
        if f is None:
            continue
        down = _window_ratio(result, f, "availability")
        worst_p99 = max(f.latency.get(0.99, {}).values(), default=None)
        per_symbol_rows.append([
            s, _pct(None if down is None else 1 - down, 3),
            *(_pct(f.spent.get(slo.name), 0) for slo in result.slos), _ms(worst_p99),
            f"{sum(f.signals.values()):.0f}", str(sum(f.orders.values())), str(sum(f.fills.values())),
            str(f.rejections), f"{sum(f.pnl.values()):,.0f}", _pct(max(f.drawdown.values(), default=None)),
            str(f.restarts)])
    per_symbol = Section("Per symbol and fleet", [
        "Budget spent is the window's error ratio over the SLO's error budget. PnL sums each day's change of the "
        "runtime's reported P&L; a day with a runtime restart starts a new paper book, so its change is not the "
        "day's trading alone (those days are listed in the JSON)."],
        [Table(["symbol", "availability", *(f"{slo.name} budget spent" for slo in result.slos), "worst daily p99",
                "signals", "orders", "fills", "rejected", "PnL", "max drawdown", "restarts"], per_symbol_rows)])
    latency_chart = charts.lines("Tick-to-signal p99 by day", "seconds", {
        s: [(_day_start(t), v) for t, v in sorted(result.symbols[s].latency.get(0.99, {}).items())]
        for s in [*symbols, FLEET] if s in result.symbols})
    latency = Section("Tick-to-signal latency by day", [], [Table(
        ["day", "fleet p50", "fleet p95", "fleet p99"],
        [[_day(t), _ms(fleet.latency.get(0.5, {}).get(t)), _ms(fleet.latency.get(0.95, {}).get(t)), _ms(v)]
         for t, v in sorted(fleet.latency.get(0.99, {}).items())] if fleet else [])],
        [Chart("latency", "Tick-to-signal p99 by day", latency_chart)])
    availability_chart = charts.lines("Availability by day", "ratio", {
        s: [(_day_start(t), v) for t, v in sorted(result.symbols[s].availability.items())] for s in symbols},
        availability.objective if availability else None)
    errors_chart = charts.lines("Error ratio by day", "ratio", {
        s: [(_day_start(t), v) for t, v in sorted(result.symbols[s].error_ratio.items())] for s in symbols})
    daily = Section("Availability and errors by day", [], [], [
        Chart("availability", "Availability by day", availability_chart),
        Chart("errors", "Error ratio by day", errors_chart)])
    hits = Section("Signal hit rate against baselines", [
        "Wilson 95 % intervals; the verdict compares the strategy with the better baseline (Newcombe's interval of "
        "the difference): better or worse only when the interval excludes no difference."],
        [Table(["symbol", "hit rate", "persistence", "majority", "verdict"],
               [[s, _rate(result.symbols[s].hits), _rate(result.symbols[s].baselines.get("persistence",
                                                                                         Proportion(0, 0))),
                 _rate(result.symbols[s].baselines.get("majority", Proportion(0, 0))), result.symbols[s].verdict()]
                for s in symbols])])
    pnl_chart = charts.lines("Cumulative PnL", "currency", {
        s: _cumulative(result.symbols[s].pnl) for s in symbols})
    incidents = Section("Rollbacks, outages, halts and drills", [], [
        Table(["symbol", "rolled back at", "bad revision ran for", "message"],
              [[r.symbol, _time(r.at).isoformat(timespec="minutes"), _minutes(r.exposed_seconds), r.message]
               for r in result.rollbacks]),
        Table(["symbol", "what", "from", "down for"], _intervals(result.outages)),
        Table(["symbol", "halt reason", "from", "halted for"], _intervals(result.halts)),
        Table(["drill", "finished", "result", "duration", "RTO"],
              [[d.drill, _time(d.finished).isoformat(timespec="minutes"),
                "-" if d.success is None else "passed" if d.success else "FAILED",
                "-" if d.duration is None else f"{d.duration:.1f} s", "-" if d.rto is None else f"{d.rto:.1f} s"]
               for d in result.drills])],
        [Chart("pnl", "Cumulative PnL", pnl_chart)])
    worst = Section("Worst hours", ["Hours ranked by error-budget burn rate (1 = spending exactly the budget)."],
                    [Table(["symbol", "SLO", "hour ending", "burn rate"],
                           [[h.symbol, h.slo, _time(h.hour_end).isoformat(timespec="minutes"), f"{h.burn:.1f}"]
                            for h in result.worst_hours])])
    return Document("performance", "Production analysis", summary,
                    [findings, per_symbol, latency, daily, hits, incidents, worst], data(result))


def _cumulative(values: dict[float, float]) -> list[tuple[datetime.datetime, float]]:
    total, out = 0.0, []
    for t, v in sorted(values.items()):
        total += v
        out.append((_time(t), total))  # the running total at the day's end
    return out
