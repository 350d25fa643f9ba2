"""Thirty days (or any number) of production history, generated: the series the runtimes, kube-state-metrics,
cAdvisor and the drills export, written into a real Prometheus with `promtool tsdb create-blocks-from
openmetrics`, and the rows the runtimes and the audit recorder write into a real PostgreSQL.

Alongside it, `Truth`: the figures a report must show, computed here from the generated samples by this
module's own arithmetic (Prometheus' documented rules: closed range windows, counter resets, histogram
interpolation), never by calling the reports' code.

promtool of Prometheus 2.42 re-reads its whole input for every 2-hour block it writes, so the history is
written as one OpenMetrics file per 2-hour block (one pass each; two at a time)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import math
import pathlib
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import psycopg

from audit.entries import NewEntry
from audit.kinds import Kind
from audit.store import append, ensure_schema
from tests.prometheus_server import ThrowawayPrometheus

BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""trading_runtime.metrics.LATENCY_BUCKETS, restated: the history is what a runtime would have exported."""
TICKS_PER_STEP = 3000
BLOCK = 7200
MIB, GIB = 2**20, 2**30
NAMESPACE = "trading"
DAY = 86400


@dataclass(frozen=True)
class World:
    symbols: tuple[str, ...] = ("SPY", "QQQ", "IWM")
    days: int = 30
    end: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0))
    """A UTC midnight: every day of the history is whole."""
    step: int = 300
    seed: int = 7

    @property
    def start(self) -> datetime.datetime:
        return self.end - datetime.timedelta(days=self.days)

    @property
    def grid(self) -> np.ndarray:
        return np.arange(int(self.start.timestamp()), int(self.end.timestamp()) + 1, self.step)

    def at(self, day: int, hour: int, minute: int = 0) -> float:
        """Unix time of day `day` (0-based, from the start's date) at hh:mm UTC."""
        midnight = self.start.replace(hour=0, minute=0) + datetime.timedelta(days=day)
        return (midnight + datetime.timedelta(hours=hour, minutes=minute)).timestamp()


@dataclass(frozen=True)
class Interval:
    symbol: str
    start: float
    seconds: float
    what: str


@dataclass(frozen=True)
class DrillRun:
    drill: str
    finished: float
    duration: float
    success: bool
    rto: float


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    cpu_request: float
    memory_request: float
    cpu_used: float
    memory_used: float
    symbol: str | None = None
    volume_claim: str | None = None
    volume_bytes: float = 0.0

    def cpu_charged(self) -> float:
        return max(self.cpu_request, self.cpu_used)

    def memory_charged(self) -> float:
        return max(self.memory_request, self.memory_used)


@dataclass
class Truth:
    day_ends: list[float] = field(default_factory=list)
    latency: dict[str, dict[float, dict[float, float]]] = field(default_factory=dict)
    """symbol → day end → {0.5: p50, 0.95: p95, 0.99: p99} (seconds)."""
    error_ratio: dict[str, dict[float, float]] = field(default_factory=dict)
    availability: dict[str, float] = field(default_factory=dict)
    """symbol → availability over the window (share of `up` samples that were 1)."""
    budget_spent: dict[tuple[str, str], float] = field(default_factory=dict)
    """(symbol, slo) → share of the window's error budget spent."""
    hit_rate: dict[str, tuple[int, int]] = field(default_factory=dict)
    """symbol → (hits, calls) over the window."""
    orders_per_day: dict[str, dict[float, int]] = field(default_factory=dict)
    outages: list[Interval] = field(default_factory=list)
    halts: list[Interval] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    drills: list[DrillRun] = field(default_factory=list)
    drawdown_max: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    """symbol → cost over the window: own pods plus shares of the shared services (no S3)."""
    projection: dict[str, float] = field(default_factory=dict)
    rejections: dict[str, int] = field(default_factory=dict)
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, actor, symbol) of the recorder's entries written, in the order they occurred."""
    kill_switch_tests: int = 0


@dataclass
class Series:
    labels: dict[str, str]
    values: np.ndarray
    """One value per grid time; NaN where the series has no sample."""


@dataclass
class Family:
    name: str
    type: str
    series: list[Series] = field(default_factory=list)


class History:
    """The generated world: metric families over the grid, and what is true about them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.grid = world.grid
        self.families: dict[str, Family] = {}
        self.truth = Truth()
        self.rng = np.random.default_rng(world.seed)
        self.shared_pods = [
            Pod("tradeops-system", "tradeops-operator-0", 0.1, 128 * MIB, 0.05, 100 * MIB),
            Pod("monitoring", "prometheus-tradeops-prometheus-0", 0.5, 2 * GIB, 0.3, 1.5 * GIB,
                volume_claim="prometheus-tradeops-prometheus-db-prometheus-tradeops-prometheus-0",
                volume_bytes=50 * GIB),
            Pod("tradeops-data", "postgres-0", 0.5, 1 * GIB, 0.6, 0.8 * GIB, volume_claim="data-postgres-0",
                volume_bytes=20 * GIB),
            Pod("tradeops-data", "redis-0", 0.1, 256 * MIB, 0.05, 100 * MIB, volume_claim="data-redis-0",
                volume_bytes=5 * GIB),
        ]
        self.other_pods = [Pod("kube-system", "coredns-0", 0.1, 70 * MIB, 0.02, 30 * MIB)]
        self.symbol_pods = {s: Pod(NAMESPACE, f"{s.lower()}-0", 0.25, 256 * MIB, 0.4 if k % 2 == 0 else 0.1,
                                   200 * MIB if k % 2 == 0 else 300 * MIB, s)
                            for k, s in enumerate(world.symbols)}
        self.rows_per_step = {s: 100 * (k + 1) for k, s in enumerate(world.symbols)}
        self.events_every = {s: 72 // (k + 1) for k, s in enumerate(world.symbols)}
        """Steps between two operator Events of the symbol."""
        self.usage: dict[str, dict[str, float]] = {"operator": {}, "prometheus": {}, "postgresql": {}}
        """What the shared services' splits follow, per symbol, as Prometheus will compute it."""

    def add(self, name: str, kind: str, labels: dict[str, str], values: np.ndarray) -> None:
        self.families.setdefault(name, Family(name, kind)).series.append(Series(labels, values))

    # --- the runtimes ---------------------------------------------------------------------------------

    def incidents(self, k: int, symbol: str) -> tuple[list[tuple[float, float]], list[Interval]]:
        """(outages as (start, end)), halts of symbol number k."""
        w = self.world
        outages = {0: [(w.at(5, 10, 5), w.at(5, 10, 30))], 1: [(w.at(15, 14, 0), w.at(15, 14, 10))]}.get(k, [])
        halts = {0: [Interval(symbol, w.at(12, 9), 1800, "kill-switch")],
                 2: [Interval(symbol, w.at(22, 13), 3600, "black-swan")]}.get(k, [])
        return [(a, b) for a, b in outages if a >= w.start.timestamp()], halts

    def runtime(self, k: int, symbol: str) -> None:
        w, t = self.world, self.grid
        labels = {"namespace": NAMESPACE, "symbol": symbol, "job": "tradeops", "instance": f"{symbol.lower()}-0:9102"}
        outages, halts = self.incidents(k, symbol)
        up = np.ones(len(t))
        for a, b in outages:
            up[(t >= a) & (t <= b)] = 0
        alive = up == 1
        # a restart after each outage: counters start again from 0
        segment = np.cumsum(np.r_[0, np.diff(up) > 0])
        self.truth.restarts[symbol] = int(segment[-1])
        self.truth.outages += [Interval(symbol, a, b - a + w.step, "down") for a, b in outages]
        self.add("up", "gauge", labels, up)
        day = ((t - w.at(0, 0)) // DAY).astype(int)

        def counter(per_step: np.ndarray) -> np.ndarray:
            per_step = np.where(alive, per_step, 0.0)
            out = np.zeros(len(t))
            for s in np.unique(segment):
                mask = segment == s
                out[mask] = np.cumsum(per_step[mask]) - per_step[mask][0]
            return np.where(alive, out, np.nan)

        ticks = np.full(len(t), float(TICKS_PER_STEP))
        median = 0.002 * (1 + 0.3 * k) * np.where(day % 7 == 3, 1.5, 1.0)
        if k == 0:
            median = np.where(day == 10, 0.03, median)
        cumulative = {le: np.round(ticks * _lognormal_cdf(le, median, 0.8)) for le in BUCKETS}
        for le, per_step in cumulative.items():
            self.add("tradeops_tick_to_signal_seconds", "histogram", labels | {"le": _le(le)}, counter(per_step))
        self.add("tradeops_tick_to_signal_seconds", "histogram", labels | {"le": "+Inf"}, counter(ticks))
        self.add("tradeops_tick_to_signal_seconds", "histogram", labels | {"__suffix": "count"}, counter(ticks))
        self.add("tradeops_tick_to_signal_seconds", "histogram", labels | {"__suffix": "sum"},
                 counter(ticks * median * 1.4))
        error_rate = np.where((k == 1) & (day == 20), 0.03, 0.001)
        errors = np.round(ticks * error_rate)
        self.add("tradeops_ticks", "counter", labels | {"kind": "quote"}, counter(ticks))
        self.add("tradeops_errors", "counter", labels | {"stage": "process"}, counter(errors))
        self.add("tradeops_feed_messages", "counter", labels, counter(ticks))
        rows = counter(np.full(len(t), float(self.rows_per_step[symbol])))
        self.add("tradeops_db_rows_written", "counter", labels, rows)
        self.usage["postgresql"][symbol] = _increase(rows)
        calls = np.full(len(t), 4.0)
        hits = self.rng.binomial(4, 0.56 if k == 0 else 0.50 if k == 1 else 0.53, len(t)).astype(float)
        scored = np.full(len(t), 8.0)
        for name, per_step in (("calls", calls), ("hits", hits), ("scored", scored),
                               ("persistence_hits", self.rng.binomial(4, 0.5, len(t)).astype(float)),
                               ("majority_hits", self.rng.binomial(4, 0.51, len(t)).astype(float))):
            self.add(f"tradeops_signal_{name}", "counter", labels, counter(per_step))
        self.add("tradeops_signals", "counter", labels | {"direction": "long"}, counter(np.ones(len(t))))
        pnl = np.where(alive, self.rng.normal(0, 200, len(t)), 0.0)
        realized = np.zeros(len(t))
        for s in np.unique(segment):
            mask = segment == s
            realized[mask] = np.cumsum(pnl[mask]) - pnl[mask][0]
        self.add("tradeops_pnl", "gauge", labels | {"kind": "realized"}, np.where(alive, realized, np.nan))
        drawdown = np.abs(self.rng.normal(0, 0.01, len(t)))
        self.add("tradeops_drawdown_ratio", "gauge", labels, np.where(alive, drawdown, np.nan))
        self.truth.drawdown_max[symbol] = float(np.max(drawdown[alive]))
        for reason in ("kill-switch", "black-swan"):
            halted = np.zeros(len(t))
            for h in halts:
                if h.what == reason:
                    halted[(t >= h.start) & (t < h.start + h.seconds)] = 1
            self.add("tradeops_trading_halted", "gauge", labels | {"reason": reason}, np.where(alive, halted, np.nan))
        self.truth.halts += halts
        scraped = np.where(alive, 200.0 + 20 * k, np.nan)
        self.add("scrape_samples_scraped", "gauge", labels, scraped)
        self.usage["prometheus"][symbol] = float(np.nansum(scraped))
        events = np.where(np.arange(len(t)) % self.events_every[symbol] == 0, 1.0, 0.0)
        operator_events = np.cumsum(events) - events[0]
        self.add("tradeops_operator_events", "counter", {"namespace": NAMESPACE, "symbol": symbol,
                                                         "reason": "ChildUpdated", "type": "Normal"}, operator_events)
        self.usage["operator"][symbol] = _increase(operator_events)
        self._truth_runtime(symbol, counter(ticks), counter(errors), {le: counter(c) for le, c in cumulative.items()},
                            up, counter(hits), counter(calls))

    def _truth_runtime(self, symbol: str, ticks: np.ndarray, errors: np.ndarray, buckets: dict[float, np.ndarray],
                       up: np.ndarray, hits: np.ndarray, calls: np.ndarray) -> None:
        w, t, truth = self.world, self.grid, self.truth
        truth.day_ends = [e for e in (w.at(d, 0) for d in range(1, w.days + 1)) if e <= t[-1]]
        truth.latency[symbol], truth.error_ratio[symbol] = {}, {}
        for end in truth.day_ends:
            inside = (t >= end - DAY) & (t <= end)
            total = _increase(ticks[inside])
            per_bucket = [(le, _increase(buckets[le][inside])) for le in BUCKETS]
            truth.latency[symbol][end] = {q: _quantile(q, per_bucket, total) for q in (0.5, 0.95, 0.99)}
            truth.error_ratio[symbol][end] = _increase(errors[inside]) / total
        truth.availability[symbol] = float(np.mean(up))
        window_ticks = _increase(ticks)
        slow = window_ticks - _increase(buckets[0.05])
        truth.budget_spent[symbol, "tick-to-signal-latency"] = slow / window_ticks / 0.05
        truth.budget_spent[symbol, "error-ratio"] = _increase(errors) / window_ticks / 0.01
        truth.budget_spent[symbol, "availability"] = (1 - float(np.mean(up))) / 0.0005
        truth.hit_rate[symbol] = (int(_increase(hits)), int(_increase(calls)))

    # --- the cluster: pods, nodes, volumes, drills ---------------------------------------------------

    def cluster(self) -> None:
        t = self.grid
        ones = np.ones(len(t))
        for pod in [*self.symbol_pods.values(), *self.shared_pods, *self.other_pods]:
            where = {"namespace": pod.namespace, "pod": pod.name, "container": "main"}
            self.add("kube_pod_container_resource_requests", "gauge", where | {"resource": "cpu", "unit": "core"},
                     ones * pod.cpu_request)
            self.add("kube_pod_container_resource_requests", "gauge", where | {"resource": "memory", "unit": "byte"},
                     ones * pod.memory_request)
            self.add("container_cpu_usage_seconds", "counter", where,
                     (t - t[0]) * pod.cpu_used)
            self.add("container_memory_working_set_bytes", "gauge", where, ones * pod.memory_used)
            if pod.symbol:
                self.add("kube_pod_labels", "gauge", {"namespace": pod.namespace, "pod": pod.name,
                                                      "label_trading_tradeops_io_symbol": pod.symbol}, ones)
            if pod.volume_claim:
                self.add("kube_persistentvolumeclaim_resource_requests_storage_bytes", "gauge",
                         {"namespace": pod.namespace, "persistentvolumeclaim": pod.volume_claim},
                         ones * pod.volume_bytes)
        for node in ("node-a", "node-b"):
            self.add("kube_node_status_capacity", "gauge", {"node": node, "resource": "cpu", "unit": "core"}, ones * 4)
            self.add("kube_node_status_capacity", "gauge", {"node": node, "resource": "memory", "unit": "byte"},
                     ones * 16 * GIB)

    def drills(self) -> None:
        w, t = self.world, self.grid
        runs = [DrillRun("restore-latest", w.at(d, 3, 10), 40.0, d != 17, 35.0 if d != 17 else 150.0)
                for d in (3, 10, 17, 24) if d < w.days]
        runs += [DrillRun("pod-kill", w.at(d, 4, 5), 12.0, True, 7.4) for d in (7, 21) if d < w.days]
        self.truth.drills = sorted(runs, key=lambda r: r.finished)
        for drill, kind in (("restore-latest", "postgres"), ("pod-kill", "cluster")):
            mine = [r for r in runs if r.drill == drill]
            if not mine:
                continue
            values = {name: np.full(len(t), np.nan) for name in ("success", "duration_seconds",
                                                                 "last_run_timestamp_seconds", "rto_seconds")}
            for run in mine:
                after = t >= run.finished
                values["success"][after] = float(run.success)
                values["duration_seconds"][after] = run.duration
                values["last_run_timestamp_seconds"][after] = run.finished
                values["rto_seconds"][after] = run.rto
            for name, series in values.items():
                self.add(f"tradeops_drill_{name}", "gauge", {"drill": drill, "kind": kind, "job": "tradeops-drill"},
                         series)

    def cost_truth(self, prices: dict[str, float], hours_per_month: float, shares: dict[str, dict[str, float]],
                   hours: float, month_hours: int) -> None:
        """Each symbol's cost over `hours` hours: its pod (max(request, use)) and its shares of the shared pods
        and volumes; the projection runs the same hourly cost over the month."""
        def pod_hourly(pod: Pod) -> float:
            return (pod.cpu_charged() * prices["cpu"] + pod.memory_charged() / GIB * prices["memory"]
                    + pod.volume_bytes / GIB * prices["storage"] / hours_per_month)

        services = dict(zip(("operator", "prometheus", "postgresql", "redis"), self.shared_pods, strict=True))
        for symbol, pod in self.symbol_pods.items():
            hourly = pod_hourly(pod) + sum(pod_hourly(services[name]) * shares[name][symbol] for name in services)
            self.truth.cost[symbol] = hourly * hours
            self.truth.projection[symbol] = hourly * month_hours

    def usage_shares(self) -> dict[str, dict[str, float]]:
        """How each shared service splits, from the generated usage (the default CostPolicy's split keys)."""
        def normalise(values: dict[str, float]) -> dict[str, float]:
            total = sum(values.values())
            return {s: v / total for s, v in values.items()}

        return {**{name: normalise(values) for name, values in self.usage.items()},
                "redis": normalise({s: self.symbol_pods[s].cpu_charged() for s in self.world.symbols})}

    def build(self) -> History:
        for k, symbol in enumerate(self.world.symbols):
            self.runtime(k, symbol)
        self.cluster()
        self.drills()
        return self

    # --- writing ------------------------------------------------------------------------------------

    def openmetrics_chunks(self) -> Iterator[tuple[int, str]]:
        """(block start, OpenMetrics text) per 2-hour block."""
        t = self.grid
        first = int(t[0]) - int(t[0]) % BLOCK
        for block in range(first, int(t[-1]) + 1, BLOCK):
            inside = np.nonzero((t >= block) & (t < block + BLOCK))[0]
            if not len(inside):
                continue
            lines = []
            for family in self.families.values():
                lines.append(f"# TYPE {family.name} {family.type}")
                for series in family.series:
                    name = _sample_name(family, series.labels)
                    labels = _labels(series.labels)
                    lines += [f"{name}{labels} {series.values[i]:.17g} {int(t[i])}" for i in inside
                              if not math.isnan(series.values[i])]
            lines.append("# EOF")
            yield block, "\n".join(lines) + "\n"

    def write_blocks(self, data_dir: pathlib.Path, workers: int = 2) -> int:
        """Backfill every block into a Prometheus data directory; returns the number of samples."""
        data_dir.mkdir(parents=True, exist_ok=True)
        samples = sum(int(np.count_nonzero(~np.isnan(s.values))) for f in self.families.values() for s in f.series)
        with tempfile.TemporaryDirectory(prefix="tradeops-history-") as scratch, \
                concurrent.futures.ThreadPoolExecutor(workers) as pool:
            def backfill(item: tuple[int, str]) -> None:
                block, text = item
                path = pathlib.Path(scratch) / f"{block}.om"
                path.write_text(text)
                result = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(path),
                                         str(data_dir)], capture_output=True, text=True, timeout=300, check=False)
                path.unlink()
                if result.returncode != 0:
                    raise RuntimeError(f"promtool refused block {block}: {result.stderr[-2000:]}")
            list(pool.map(backfill, self.openmetrics_chunks()))
        return samples

    # --- PostgreSQL -----------------------------------------------------------------------------------

    def populate(self, dsn: str) -> None:
        """The runtimes' orders, fills, rejections and risk events (which enter the audit log by trigger) and
        the recorder's entries: symbol changes and who made them, revisions, a rollback, a promotion, the
        kill-switch test, a tuning step and a self-healing restart."""
        ensure_schema(dsn)
        w, truth = self.world, self.truth
        orders, fills, rejections, risks = [], [], [], []
        for k, symbol in enumerate(w.symbols):
            truth.orders_per_day[symbol] = {}
            for end in truth.day_ends:
                n = 5 + k
                truth.orders_per_day[symbol][end] = n
                for i in range(n):
                    ts = _utc(end - DAY + 3600 * (1 + i * 20 / n))
                    order = uuid.uuid4()
                    orders.append((order, ts, symbol, f"{symbol}-20991218-C-100", "buy" if i % 2 == 0 else "sell", 2.0,
                                   "filled"))
                    fills.append((uuid.uuid4(), ts, order, 2.0 if i % 2 == 0 else -2.0, 3.1, 0.01))
            truth.rejections[symbol] = 0
            if k == 0:
                for d, end in enumerate(truth.day_ends):
                    rejections.append((uuid.uuid4(), _utc(end - DAY / 2), symbol, f"{symbol}-20991218-C-100", "buy",
                                       5000.0, 3.1, "max-quantity" if d % 2 == 0 else "price-collar"))
                truth.rejections[symbol] = len(truth.day_ends)
        for halt in truth.halts:
            if halt.what == "kill-switch":
                risks.append((_utc(halt.start + 20), halt.symbol, "kill-switch", "warning", "{}"))
            else:
                risks.append((_utc(halt.start), halt.symbol, halt.what, "critical", "{}"))
        with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
            cursor.executemany("INSERT INTO orders (id, ts, symbol, instrument, side, quantity, status) "
                               "VALUES (%s, %s, %s, %s, %s, %s, %s)", orders)
            cursor.executemany("INSERT INTO fills (id, ts, order_id, quantity, price, fee) "
                               "VALUES (%s, %s, %s, %s, %s, %s)", fills)
            cursor.executemany("INSERT INTO order_rejections (id, ts, symbol, instrument, side, quantity, price, "
                               "reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rejections)
            cursor.executemany("INSERT INTO risk_events (ts, symbol, kind, severity, detail) "
                               "VALUES (%s, %s, %s, %s, %s::jsonb)", risks)
        recorded = self.recorded_entries()
        append(dsn, recorded)
        truth.changes = [(e.kind.value, e.actor, e.subject) for e in recorded]
        truth.kill_switch_tests = sum(1 for e in recorded if e.kind is Kind.HALT and "test" in str(e.detail["reason"]))

    def recorded_entries(self) -> list[NewEntry]:
        w = self.world
        entries = []

        def entry(when: float, actor: str, kind: Kind, symbol: str, **detail: object) -> None:
            key = f"history/{len(entries)}"
            entries.append(NewEntry(_utc(when), actor, kind, symbol, {"namespace": NAMESPACE,
                                                                      "name": symbol.lower(), **detail}, key))

        alice, bob = "alice@ops via opsctl (kube user alice)", "unknown user via kubectl-client-side-apply"
        first = w.start.timestamp() + 600
        for symbol in w.symbols:
            entry(first, alice, Kind.SYMBOL_CREATED, symbol, diff=[], state={})
            entry(first + 5, "tradeops-operator", Kind.REVISION, symbol, revision=1)
        lead = w.symbols[0]
        entry(w.at(9, 15), bob, Kind.SYMBOL_CHANGED, lead,
              diff=[{"path": "spec.image", "before": "trading-runtime:1.0", "after": "trading-runtime:1.1"}])
        entry(w.at(9, 15, 1), "tradeops-operator", Kind.REVISION, lead, revision=2)
        entry(w.at(9, 15, 20), "tradeops-operator", Kind.ROLLBACK, lead, reason="RolledBack",
              message="Rolled back from revision 2 to 1: tick-to-signal-latency 0.2425 s not below 0.05 s")
        entry(w.at(11, 10), "tradeops-operator", Kind.PROMOTION, lead, reason="Promoted", message="Revision 3 promoted")
        entry(w.at(5, 10, 30), "tradeops-operator", Kind.SELF_HEALING, lead, reason="SelfHealingRestart",
              message="Restarted the stable revision")
        entry(w.at(14, 12), "tradeops-operator", Kind.TUNING, lead, reason="TuningKept", message="entryScore 0.6 → 0.7")
        for halt in self.truth.halts:
            if halt.what == "kill-switch":
                entry(halt.start, alice, Kind.HALT, halt.symbol, reason="kill-switch test",
                      change={"path": "spec.tradingEnabled", "before": True, "after": False})
                entry(halt.start + halt.seconds, alice, Kind.UNHALT, halt.symbol,
                      change={"path": "spec.tradingEnabled", "before": False, "after": True})
        entries.sort(key=lambda e: e.occurred_at)
        return [dataclasses.replace(e, source_key=f"history/{i}") for i, e in enumerate(entries)]


def backfilled_prometheus(history: History) -> ThrowawayPrometheus:
    """A Prometheus started on the backfilled history (no scrape targets: nothing else enters it)."""
    server = ThrowawayPrometheus(scrape_interval="15s")
    server.args = [f"--storage.tsdb.retention.time={history.world.days + 30}d"]
    history.write_blocks(server.dir / "data")
    return server.start()


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


def _le(bound: float) -> str:
    return f"{bound:g}"


def _sample_name(family: Family, labels: dict[str, str]) -> str:
    if family.type == "counter":
        return f"{family.name}_total"
    if family.type == "histogram":
        return f"{family.name}_{labels.get('__suffix', 'bucket')}"
    return family.name


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items() if k != "__suffix") + "}"


def _lognormal_cdf(x: float, median: np.ndarray, sigma: float) -> np.ndarray:
    z = (math.log(x) - np.log(median)) / (sigma * math.sqrt(2))
    return 0.5 * (1 + np.vectorize(math.erf)(z))


def _increase(values: np.ndarray) -> float:
    """A counter's increase over samples (NaN: no sample), a drop counting as a reset to 0."""
    present = values[~np.isnan(values)]
    if len(present) < 2:
        return 0.0
    deltas = np.diff(present)
    return float(np.sum(np.where(deltas >= 0, deltas, present[1:])))


def _quantile(q: float, buckets: list[tuple[float, float]], total: float) -> float:
    """histogram_quantile as Prometheus documents it: linear interpolation inside the bucket the rank falls
    in (the first bucket starting at 0); a rank in +Inf gives the largest finite bound."""
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower + (bound - lower) * (rank - below) / (count - below) if count > below else bound
        lower, below = bound, count
    return buckets[-1][0]
