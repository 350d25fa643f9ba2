"""The operator's view of every TradingSymbol as gauges, for the alerts a runtime cannot raise about itself:
`tradeops_operator_symbol_replicas` (how many runtimes should run: a symbol with replicas > 0 and no
runtime scraped is `TradeopsRuntimeAbsent`) and `tradeops_operator_symbol_phase` (1 for the current phase,
0 for the others, as kube-state-metrics does: `TradeopsSymbolPaused`).

Kept from the watch (every event of a TradingSymbol, deletions remove its series) and read at scrape
time, so the series always say what the operator last saw."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kopf
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trading_operator import api
from trading_operator.metrics import REGISTRY

LABELS = ["namespace", "symbol", "tradingsymbol"]


@dataclass(frozen=True)
class SymbolState:
    symbol: str
    replicas: int
    phase: str


class SymbolGauges(Collector):
    """The last seen state of every TradingSymbol, by (namespace, name)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], SymbolState] = {}

    def observe(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "default")), str(meta.get("name", "")))
        if event_type == "DELETED":
            self.states.pop(key, None)
            return
        spec, status = body.get("spec") or {}, body.get("status") or {}
        replicas = spec.get("replicas", 1)
        self.states[key] = SymbolState(symbol=str(spec.get("symbol", key[1])),
                                       replicas=replicas if isinstance(replicas, int) else 0,
                                       phase=str(status.get("phase") or api.Phase.PENDING.value))

    def collect(self) -> Iterator[Metric]:
        replicas = GaugeMetricFamily("tradeops_operator_symbol_replicas",
                                     "Runtimes a TradingSymbol asks for (spec.replicas)", labels=LABELS)
        phase = GaugeMetricFamily("tradeops_operator_symbol_phase",
                                  "1 for the TradingSymbol's current status.phase, 0 for the others",
                                  labels=[*LABELS, "phase"])
        for (namespace, name), state in sorted(self.states.items()):
            labels = [namespace, state.symbol, name]
            replicas.add_metric(labels, state.replicas)
            for value in api.Phase:
                phase.add_metric([*labels, value.value], 1.0 if state.phase == value.value else 0.0)
        yield replicas
        yield phase


GAUGES = SymbolGauges()
REGISTRY.register(GAUGES)


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def track_symbol(type: str | None, body: kopf.Body, **_: Any) -> None:
    GAUGES.observe(type, dict(body))
