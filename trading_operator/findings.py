"""What the analysis loop found, waiting for the planner: measurements and nothing else.

The analysis loop records findings here and asks for a reconcile; the planner (`rollout.fold_findings`)
turns them into verdicts, status and actions. A finding stays pending until a status write planned from it
has gone through, so a conflict (409) or an API outage loses no measurement; it is dropped only once
consumed, or when its symbol goes away."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from trading_operator.api import Measurement


@dataclass(frozen=True)
class RunMeasured:
    """One measurement of the analysis run of `revision` (the run that started at `started_at`)."""

    revision: int
    started_at: str
    measurements: tuple[Measurement, ...]
    time: str
    seq: int = 0


@dataclass(frozen=True)
class StableMeasured:
    """One background measurement of the stable revision."""

    revision: int
    measurements: tuple[Measurement, ...]
    time: str
    seq: int = 0


@dataclass(frozen=True)
class ObjectiveMeasured:
    """The tuning objective of the stable revision, before a proposal (None: no value yet)."""

    revision: int
    value: float | None
    time: str
    seq: int = 0


@dataclass(frozen=True)
class ModelServingMeasured:
    """The running revision's pods: how many report `tradeops_model_serving`, and how many serve the model
    (model_health.py folds it into the ModelFallback condition)."""

    revision: int
    pods: float | None
    serving: float | None
    time: str
    error: str = ""
    seq: int = 0


@dataclass(frozen=True)
class RegimeMeasured:
    """The running revision's regime detectors: how many pods report one, how many watch (past their warm-up),
    and the latest change any of them detected (epoch seconds; None: none yet). regime_watch.py folds it."""

    revision: int
    pods: float | None
    watching: float | None
    last_change: float | None
    time: str
    error: str = ""
    seq: int = 0


Finding = RunMeasured | StableMeasured | ObjectiveMeasured | ModelServingMeasured | RegimeMeasured
Key = tuple[str, str]
"""(namespace, name) of a TradingSymbol."""


class FindingStore:
    """Pending findings per TradingSymbol, in the order they were made (in memory: a restarted operator
    measures again)."""

    def __init__(self) -> None:
        self._pending: dict[Key, list[Finding]] = {}
        self._seq = itertools.count(1)

    def add(self, key: Key, finding: Finding) -> Finding:
        """Keep a finding until the planner has consumed it; returns it with its sequence number."""
        numbered = dataclasses.replace(finding, seq=next(self._seq))
        self._pending.setdefault(key, []).append(numbered)
        return numbered

    def pending(self, key: Key) -> tuple[Finding, ...]:
        return tuple(self._pending.get(key, ()))

    def consume(self, key: Key, findings: tuple[Finding, ...]) -> None:
        """Drop the findings a committed status was planned from (later ones stay)."""
        if not findings:
            return
        last = max(f.seq for f in findings)
        left = [f for f in self._pending.get(key, []) if f.seq > last]
        if left:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)

    def forget(self, key: Key) -> None:
        self._pending.pop(key, None)

