"""The production analysis: what happened per symbol and for the fleet over a window (30 days by default),
read from Prometheus (the SLO policy's SLIs, latency histograms, the runtime's counters and gauges, drill
metrics) and PostgreSQL (orders, fills, the audit log's rollbacks), ending in findings ranked by error
budget spent: what to optimise next.

Intervals (outages, halts) are read at a resolution (5 minutes by default): each step looks back one
resolution less a second, so no sample counts in two steps; an outage's length is the share of `up`
samples that were 0 in each step times the step."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from policies.models import SLO, SLOPolicySpec
from policies.rules import DEFAULT_SELECTOR, budget, error_ratio_query
from policies.templates import render
from reports.sources import Database, Prometheus, Series
from reports.stats import Proportion, compare
from reports.window import DAY, HOUR, Window

FLEET = "fleet"
QUANTILES = (0.5, 0.95, 0.99)
Day = float
"""Unix time of a day's end (UTC midnight)."""


@dataclass(frozen=True)
class Interval:
    symbol: str
    what: str
    start: float
    seconds: float


@dataclass(frozen=True)
class DrillRun:
    drill: str
    finished: float
    success: bool | None
    duration: float | None
    rto: float | None


@dataclass(frozen=True)
class Rollback:
    symbol: str
    at: float
    message: str
    exposed_seconds: float | None
    """From the revision's creation to the rollback (None: no revision recorded before it)."""


@dataclass(frozen=True)
class HourBurn:
    symbol: str
    slo: str
    hour_end: float
    burn: float


@dataclass(frozen=True)
class Finding:
    symbol: str
    slo: str
    spent: float
    text: str


@dataclass
class SymbolFigures:
    symbol: str
    latency: dict[float, dict[Day, float]] = field(default_factory=dict)
    """Quantile → day end → seconds."""
    error_ratio: dict[Day, float] = field(default_factory=dict)
    availability: dict[Day, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    """SLO → share of the window's error budget spent (no entry: no data)."""
    hits: Proportion = field(default_factory=lambda: Proportion(0, 0))
    baselines: dict[str, Proportion] = field(default_factory=dict)
    signals: dict[Day, float] = field(default_factory=dict)
    orders: dict[Day, int] = field(default_factory=dict)
    fills: dict[Day, int] = field(default_factory=dict)
    rejections: int = 0
    pnl: dict[Day, float] = field(default_factory=dict)
    restart_days: set[Day] = field(default_factory=set)
    drawdown: dict[Day, float] = field(default_factory=dict)
    restarts: int = 0

    def verdict(self) -> str:
        if not self.baselines:
            return "no data"
        best = max(self.baselines.values(), key=lambda p: p.rate if p.rate is not None else -1)
        return compare(self.hits, best)


@dataclass
class PerformanceResult:
    window: Window
    slos: list[SLO]
    symbols: dict[str, SymbolFigures]
    outages: list[Interval]
    halts: list[Interval]
    rollbacks: list[Rollback]
    drills: list[DrillRun]
    worst_hours: list[HourBurn]
    findings: list[Finding]


def _symbol_of(labels: dict[str, str] | object) -> str:
    return str(labels.get("symbol", "")) if isinstance(labels, dict) else ""


def _per_symbol(series: Iterable[Series]) -> dict[str, dict[float, float]]:
    return {str(s.labels.get("symbol", FLEET)): dict(s.points) for s in series}


def fleet_ratio(slo: SLO, window: str) -> str:
    assert slo.sli is not None
    errors = f"sum({render(slo.sli.error_query, DEFAULT_SELECTOR, window)})"
    total = f"sum({render(slo.sli.total_query, DEFAULT_SELECTOR, window)})"
    return f"({errors} or 0 * {total}) / {total}"


def intervals(series: Iterable[Series], what_label: str | None, step: int, down: bool) -> list[Interval]:
    """Runs of consecutive steps in a state: `down` runs where the value is below 1 (a share of samples),
    otherwise where it is 1 (steps absent from a series are not in the state). A run's length is the summed
    share times the step."""
    out = []
    for s in series:
        symbol, what = _symbol_of(s.labels), s.labels.get(what_label, "") if what_label else "down"
        start, seconds, last = None, 0.0, None
        for t, v in s.points:
            share = (1 - v) if down else v
            contiguous = last is not None and t - last <= step
            if share > 0 and start is not None and contiguous:
                seconds += share * step
            else:
                if start is not None:
                    out.append(Interval(symbol, what, start, seconds))
                start, seconds = (t, share * step) if share > 0 else (None, 0.0)
            last = t
        if start is not None:
            out.append(Interval(symbol, what, start, seconds))
    return sorted(out, key=lambda i: (i.start, i.symbol))


def sparse_range(prometheus: Prometheus, template: str, window: Window, resolution: int) -> list[Series]:
    """A filtered range query (`{range}` in `template` is each step's look-back) at `resolution`, evaluated
    only in the hours where it returns anything: a month at 5 minutes is 8640 steps, the hours with an
    incident a handful. Each step looks back one step less a second, so no sample counts in two steps."""
    hours = prometheus.range(template.replace("{range}", f"{HOUR - 1}s"), window.start + datetime.timedelta(hours=1),
                             window.end, HOUR)
    ends = sorted({t for s in hours for t, _ in s.points})
    points: dict[tuple[tuple[str, str], ...], set[tuple[float, float]]] = {}
    runs: list[tuple[float, float]] = []
    for end in ends:
        if runs and runs[-1][1] == end - HOUR:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((end - HOUR, end))
    fine = template.replace("{range}", f"{resolution - 1}s")
    for first, last in runs:
        start = datetime.datetime.fromtimestamp(first + resolution, datetime.UTC)
        for s in prometheus.range(fine, start, datetime.datetime.fromtimestamp(last, datetime.UTC), resolution):
            points.setdefault(tuple(sorted(s.labels.items())), set()).update(s.points)
    return [Series(dict(k), tuple(sorted(v))) for k, v in points.items()]


def fetch(prometheus: Prometheus, database: Database, slo_policy: SLOPolicySpec, window: Window,
          resolution: int = 300) -> PerformanceResult:
    day_ends = window.day_ends()
    first_day, last_day = (day_ends[0], day_ends[-1]) if day_ends else (window.end, window.end)
    slos = [slo for slo in slo_policy.slos if slo.sli is not None]
    figures: dict[str, SymbolFigures] = {}

    def of(symbol: str) -> SymbolFigures:
        return figures.setdefault(symbol, SymbolFigures(symbol))

    def daily(query: str) -> dict[str, dict[float, float]]:
        return _per_symbol(prometheus.range(query, first_day, last_day, DAY)) if day_ends else {}

    def at_end(query: str) -> dict[str, float]:
        return {str(labels.get("symbol", FLEET)): value for labels, value in prometheus.instant(query, window.end)}

    bucket = "tradeops_tick_to_signal_seconds_bucket"
    for q in QUANTILES:
        for by, scope in (("le, symbol", DEFAULT_SELECTOR), ("le", DEFAULT_SELECTOR)):
            for symbol, values in daily(f"histogram_quantile({q}, sum by ({by}) (increase({bucket}{{{scope}}}[1d])))"
                                        ).items():
                of(symbol).latency[q] = values
    for slo in slos:
        assert slo.sli is not None
        per_day = {**daily(error_ratio_query(slo.sli, DEFAULT_SELECTOR, "1d")), **daily(fleet_ratio(slo, "1d"))}
        for symbol, values in per_day.items():
            if slo.name == "availability":
                of(symbol).availability = {t: 1 - v for t, v in values.items()}
            elif slo.name == "error-ratio":
                of(symbol).error_ratio = values
        over_window = {**at_end(error_ratio_query(slo.sli, DEFAULT_SELECTOR, window.range)),
                       **at_end(fleet_ratio(slo, window.range))}
        for symbol, ratio in over_window.items():
            of(symbol).spent[slo.name] = ratio / budget(slo)
    counts = {name: at_end(f"sum by (symbol) (increase(tradeops_signal_{name}_total[{window.range}]))")
              for name in ("hits", "calls", "persistence_hits", "majority_hits")}
    for symbol in counts["calls"]:
        # The runtime scores the baselines on the strategy's called horizons: the hit rate's own points.
        f, calls = of(symbol), round(counts["calls"][symbol])
        f.hits = Proportion(round(counts["hits"].get(symbol, 0)), calls)
        f.baselines = {name: Proportion(round(counts[f"{name}_hits"].get(symbol, 0)), calls)
                       for name in ("persistence", "majority")}
    for symbol, values in daily("sum by (symbol) (increase(tradeops_signals_total[1d]))").items():
        of(symbol).signals = values
    for symbol, values in daily("max by (symbol) (max_over_time(tradeops_drawdown_ratio[1d]))").items():
        of(symbol).drawdown = values
    for symbol, values in daily("sum by (symbol) (resets(tradeops_feed_messages_total[1d]))").items():
        of(symbol).restart_days = {t for t, v in values.items() if v > 0}
    for symbol, value in at_end(f"sum by (symbol) (resets(tradeops_feed_messages_total[{window.range}]))").items():
        of(symbol).restarts = round(value)
    if day_ends:
        pnl = _per_symbol(prometheus.range("sum by (symbol) (tradeops_pnl)", first_day - datetime.timedelta(days=1),
                                           last_day, DAY))
        for symbol, values in pnl.items():
            of(symbol).pnl = {t: values[t] - values[t - DAY] for t in values if t - DAY in values}
    _orders(database, window, of)
    up = f"avg by (symbol) (avg_over_time(up{{{DEFAULT_SELECTOR}}}[{{range}}])) < 1"
    outages = intervals(sparse_range(prometheus, up, window, resolution), None, resolution, down=True)
    halts = intervals(sparse_range(prometheus, "max by (symbol, reason) (max_over_time(tradeops_trading_halted"
                                               "[{range}])) > 0", window, resolution), "reason", resolution, down=False)
    _fleet_totals(figures)
    worst = _worst_hours(prometheus, slos, window)
    return PerformanceResult(window, slos, figures, outages, halts, _rollbacks(database, window),
                             drills(prometheus, window, resolution), worst, _findings(figures, slos, outages))


def _orders(database: Database, window: Window, of: Callable[[str], SymbolFigures]) -> None:
    for table, attribute in (("orders", "orders"), ("fills", "fills")):
        symbol = "symbol" if table == "orders" else "(SELECT symbol FROM orders WHERE orders.id = fills.order_id)"
        for sym, day, count in database.rows(
                f"SELECT {symbol} AS s, date_trunc('day', ts AT TIME ZONE 'UTC') AS d, count(*) FROM {table} "
                "WHERE ts >= %s AND ts < %s GROUP BY s, d", (window.start, window.end)):
            end = day.replace(tzinfo=datetime.UTC).timestamp() + DAY
            getattr(of(sym), attribute)[end] = int(count)
    for sym, count in database.rows("SELECT symbol, count(*) FROM order_rejections WHERE ts >= %s AND ts < %s "
                                    "GROUP BY symbol", (window.start, window.end)):
        of(sym).rejections = int(count)


def _fleet_totals(figures: dict[str, SymbolFigures]) -> None:
    """The fleet's counts are the symbols' sums, its drawdown the worst symbol's (its SLO figures come from
    Prometheus, aggregated there)."""
    symbols = [f for s, f in figures.items() if s != FLEET]
    if not symbols:
        return
    fleet = figures.setdefault(FLEET, SymbolFigures(FLEET))
    for name in ("signals", "orders", "fills", "pnl"):
        total: dict[float, float] = {}
        for f in symbols:
            for t, v in getattr(f, name).items():
                total[t] = total.get(t, 0) + v
        setattr(fleet, name, total)
    fleet.drawdown = {t: max(f.drawdown[t] for f in symbols if t in f.drawdown)
                      for t in {t for f in symbols for t in f.drawdown}}
    fleet.restart_days = set().union(*(f.restart_days for f in symbols))
    fleet.rejections = sum(f.rejections for f in symbols)
    fleet.restarts = sum(f.restarts for f in symbols)


def _rollbacks(database: Database, window: Window) -> list[Rollback]:
    rows = database.rows(
        "SELECT r.subject, r.occurred_at, r.detail ->> 'message', "
        "(SELECT max(v.occurred_at) FROM audit_log v WHERE v.kind = 'revision' AND v.subject = r.subject "
        " AND v.occurred_at <= r.occurred_at) FROM audit_log r "
        "WHERE r.kind = 'rollback' AND r.occurred_at >= %s AND r.occurred_at < %s ORDER BY r.occurred_at",
        (window.start, window.end))
    return [Rollback(str(symbol), at.timestamp(), str(message or ""),
                     (at - revision).total_seconds() if revision else None) for symbol, at, message, revision in rows]


def drills(prometheus: Prometheus, window: Window, resolution: int) -> list[DrillRun]:
    """Each drill run in the window (a new value of its last-run time), with what it reported then."""
    def by_time(name: str) -> dict[str, dict[float, float]]:
        return {str(s.labels.get("drill")): dict(s.points) for s in prometheus.range(
            f"max by (drill) (tradeops_drill_{name})", window.start, window.end, resolution)}

    finished, success = by_time("last_run_timestamp_seconds"), by_time("success")
    duration, rto = by_time("duration_seconds"), by_time("rto_seconds")
    runs = []
    for drill, points in finished.items():
        seen: set[float] = set()
        for t, value in sorted(points.items()):
            if value in seen or not window.start.timestamp() <= value <= window.end.timestamp():
                continue
            seen.add(value)
            ok = success.get(drill, {}).get(t)
            runs.append(DrillRun(drill, value, None if ok is None else ok == 1, duration.get(drill, {}).get(t),
                                 rto.get(drill, {}).get(t)))
    return sorted(runs, key=lambda r: r.finished)


def _worst_hours(prometheus: Prometheus, slos: list[SLO], window: Window, keep: int = 10) -> list[HourBurn]:
    burns = []
    for slo in slos:
        assert slo.sli is not None
        for s in prometheus.range(error_ratio_query(slo.sli, DEFAULT_SELECTOR, "1h"),
                                  window.start + datetime.timedelta(hours=1), window.end, HOUR):
            burns += [HourBurn(_symbol_of(s.labels), slo.name, t, v / budget(slo)) for t, v in s.points if v > 0]
    return sorted(burns, key=lambda b: -b.burn)[:keep]


def _detail(slo: str, figures: SymbolFigures, outages: list[Interval]) -> str:
    """What spent the budget, in a phrase."""
    if slo == "availability":
        mine = [o for o in outages if o.symbol == figures.symbol]
        return f"{len(mine)} outage(s), {sum(o.seconds for o in mine) / 60:.0f} min down"
    if slo == "error-ratio":
        return f"worst day {max(figures.error_ratio.values(), default=0):.2%} of messages failed"
    if slo == "tick-to-signal-latency":
        return f"worst daily p99 {max(figures.latency.get(0.99, {}).values(), default=0) * 1000:.1f} ms"
    return ""


def _findings(figures: dict[str, SymbolFigures], slos: list[SLO], outages: list[Interval]) -> list[Finding]:
    """Every (symbol, SLO) that spent budget, the most spent first: what to optimise next."""
    found = []
    for symbol, f in figures.items():
        if symbol == FLEET:
            continue
        for slo in slos:
            spent = f.spent.get(slo.name)
            if spent is None or spent <= 0:
                continue
            verdict = "OVERSPENT: optimise first" if spent > 1 else "within budget"
            detail = _detail(slo.name, f, outages)
            found.append(Finding(symbol, slo.name, spent, f"{symbol} {slo.name}: {spent:.0%} of the error budget "
                                 f"spent ({verdict})" + (f"; {detail}" if detail else "")))
    return sorted(found, key=lambda x: -x.spent)
