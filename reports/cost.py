"""Cost per symbol (pure): the OpenCost method on hourly allocations.

Every hour a container is charged max(its request, its average use) of CPU and memory at the policy's
prices; a symbol pays for its own pods, plus a share of each shared service (its pods and volumes) and of
the S3 backups in proportion to what it makes them do; what the cluster's nodes offer beyond every
container's allocation is the idle line, and containers that are neither a symbol's nor a shared
service's are `other workloads`. Monthly figures scale the window to `hoursPerMonth`; the month's projection
runs at the average hourly cost of the policy's projection window over the hours of the window's month."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from policies.models import CostPolicySpec, SplitBy, duration_seconds
from reports.window import HOUR, Window, hours_in_month

GIB = 2**30
Hourly = Mapping[float, float]
"""Unix time of an hour's end → the hour's average (cores, bytes)."""


@dataclass(frozen=True)
class ServiceUse:
    cpu: Hourly
    memory: Hourly
    volume: Hourly


@dataclass(frozen=True)
class S3Use:
    bytes_stored: int
    put_requests: int
    """Write requests of the objects written in the window (parts of multipart uploads included)."""


@dataclass(frozen=True)
class CostInputs:
    symbol_cpu: Mapping[str, Hourly]
    symbol_memory: Mapping[str, Hourly]
    services: Mapping[str, ServiceUse]
    all_cpu: Hourly
    all_memory: Hourly
    node_cpu: Hourly
    node_memory: Hourly
    usage: Mapping[str, Mapping[str, float]]
    """Shared service → symbol → its usage over the window (what the split follows)."""
    s3: S3Use | None
    s3_usage: Mapping[str, float]
    """Symbol → rows it wrote to PostgreSQL (what backups hold) over the window."""


@dataclass(frozen=True)
class Split:
    shares: dict[str, float]
    method: str


@dataclass
class SymbolCost:
    symbol: str
    cpu: float
    memory: float
    shared: dict[str, float] = field(default_factory=dict)
    s3: float = 0.0
    recent_hourly: float = 0.0
    monthly: float = 0.0
    projection: float = 0.0
    budget: float = 0.0

    @property
    def total(self) -> float:
        return self.cpu + self.memory + sum(self.shared.values()) + self.s3

    @property
    def within_budget(self) -> bool:
        return self.projection < self.budget


@dataclass
class CostResult:
    window: Window
    currency: str
    symbols: list[SymbolCost]
    services: dict[str, float | None]
    """Shared service → its cost over the window (None: no data)."""
    splits: dict[str, Split]
    s3: float | None
    other: float
    idle: float | None
    hours_in_month: int

    @property
    def max_monthly(self) -> float | None:
        return max((s.monthly for s in self.symbols), default=None)

    @property
    def all_within_budget(self) -> bool:
        return all(s.within_budget for s in self.symbols)


def _dollars(hourly: Hourly, price: float, unit: float = 1.0, since: float = -math.inf) -> float:
    return sum(value / unit * price for t, value in hourly.items() if t > since)


def split(usage: Mapping[str, float], symbols: list[str], method: SplitBy) -> Split:
    """Shares of a shared cost: by usage; equally when the split is equal or nothing was measured."""
    measured = {s: max(0.0, usage.get(s, 0.0)) for s in symbols}
    total = sum(measured.values())
    if method is SplitBy.EQUAL or total <= 0:
        why = "equal" if method is SplitBy.EQUAL else f"equal (no {method.value} measured)"
        return Split({s: 1 / len(symbols) for s in symbols} if symbols else {}, why)
    return Split({s: v / total for s, v in measured.items()}, f"by {method.value}")


def _service_cost(use: ServiceUse, policy: CostPolicySpec, since: float = -math.inf) -> float | None:
    if not use.cpu and not use.memory and not use.volume:
        return None
    prices = policy.prices
    return (_dollars(use.cpu, prices.cpu_core_hour, since=since)
            + _dollars(use.memory, prices.memory_gib_hour, GIB, since)
            + _dollars(use.volume, prices.storage_gib_month / policy.hours_per_month, GIB, since))


def compute(inputs: CostInputs, policy: CostPolicySpec, window: Window) -> CostResult:
    prices = policy.prices
    symbols = sorted(set(inputs.symbol_cpu) | set(inputs.symbol_memory))
    recent_since = window.end.timestamp() - duration_seconds(policy.projection_window)
    recent_hours = min(window.hours, duration_seconds(policy.projection_window) / HOUR)
    month_hours = hours_in_month(window.end)
    costs = {s: SymbolCost(s, _dollars(inputs.symbol_cpu.get(s, {}), prices.cpu_core_hour),
                           _dollars(inputs.symbol_memory.get(s, {}), prices.memory_gib_hour, GIB),
                           budget=policy.budget(s)) for s in symbols}
    recent = {s: _dollars(inputs.symbol_cpu.get(s, {}), prices.cpu_core_hour, since=recent_since)
              + _dollars(inputs.symbol_memory.get(s, {}), prices.memory_gib_hour, GIB, recent_since) for s in symbols}
    services: dict[str, float | None] = {}
    splits: dict[str, Split] = {}
    shared_cpu = shared_memory = 0.0
    for service in policy.shared_services:
        use = inputs.services.get(service.name, ServiceUse({}, {}, {}))
        services[service.name] = service_cost = _service_cost(use, policy)
        shared_cpu += sum(use.cpu.values())
        shared_memory += sum(use.memory.values())
        if service_cost is None:
            continue
        splits[service.name] = shares = split(inputs.usage.get(service.name, {}), symbols, service.split_by)
        recent_cost = _service_cost(use, policy, recent_since) or 0.0
        for symbol, share in shares.shares.items():
            costs[symbol].shared[service.name] = service_cost * share
            recent[symbol] += recent_cost * share
    s3_cost = None
    if inputs.s3 is not None:
        s3_cost = (inputs.s3.bytes_stored / GIB * prices.s3_storage_gib_month * window.hours / policy.hours_per_month
                   + inputs.s3.put_requests / 1000 * prices.s3_put_per_1000)
        splits["s3"] = shares = split(inputs.s3_usage, symbols, SplitBy.ROWS_WRITTEN)
        for symbol, share in shares.shares.items():
            costs[symbol].s3 = s3_cost * share
            recent[symbol] += s3_cost * share * recent_hours / window.hours
    all_cpu, all_memory = sum(inputs.all_cpu.values()), sum(inputs.all_memory.values())
    symbol_cpu = sum(sum(h.values()) for h in inputs.symbol_cpu.values())
    symbol_memory = sum(sum(h.values()) for h in inputs.symbol_memory.values())
    other = (max(0.0, all_cpu - symbol_cpu - shared_cpu) * prices.cpu_core_hour
             + max(0.0, all_memory - symbol_memory - shared_memory) / GIB * prices.memory_gib_hour)
    idle = None
    if inputs.node_cpu and inputs.node_memory:
        idle = (max(0.0, sum(inputs.node_cpu.values()) - all_cpu) * prices.cpu_core_hour
                + max(0.0, sum(inputs.node_memory.values()) - all_memory) / GIB * prices.memory_gib_hour)
    for symbol, cost in costs.items():
        cost.monthly = cost.total * policy.hours_per_month / window.hours
        cost.recent_hourly = recent[symbol] / recent_hours
        cost.projection = cost.recent_hourly * month_hours
    return CostResult(window, policy.currency, [costs[s] for s in symbols], services, splits, s3_cost, other, idle,
                      month_hours)
