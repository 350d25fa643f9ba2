"""Error budgets from measured error ratios: pure arithmetic for `opsctl slo report`.

Budget remaining = 1 - error ratio / (1 - objective): 1 untouched, 0 spent, below 0 overspent.
Burn rate = error ratio / (1 - objective): 1 spends the budget exactly over the SLO period."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from policies.models import SLO
from policies.rules import budget

Key = tuple[str, str]
"""(namespace, symbol) as Prometheus labels them; namespace is empty outside Kubernetes."""


@dataclass(frozen=True)
class BudgetRow:
    namespace: str
    symbol: str
    slo: str
    objective: float
    window: str
    error_ratio: float | None
    budget_remaining: float | None
    burn_rate_1h: float | None

    def as_dict(self) -> dict[str, object]:
        return {"namespace": self.namespace, "symbol": self.symbol, "slo": self.slo, "objective": self.objective,
                "window": self.window, "errorRatio": self.error_ratio, "budgetRemaining": self.budget_remaining,
                "burnRate1h": self.burn_rate_1h}


def _finite(value: float | None) -> float | None:
    """NaN (no events in the window: 0/0) and infinities are `unknown`, not numbers."""
    return value if value is not None and math.isfinite(value) else None


def burn_rate(error_ratio: float | None, slo: SLO) -> float | None:
    ratio = _finite(error_ratio)
    return None if ratio is None else ratio / budget(slo)


def budget_remaining(error_ratio: float | None, slo: SLO) -> float | None:
    rate = burn_rate(error_ratio, slo)
    return None if rate is None else 1.0 - rate


def rows(slo: SLO, window: str, over_window: Mapping[Key, float], over_hour: Mapping[Key, float]) -> list[BudgetRow]:
    """One row per symbol measured over the window (a symbol without events in the last hour has no burn rate)."""
    return [BudgetRow(namespace, symbol, slo.name, slo.objective, window, _finite(ratio),
                      budget_remaining(ratio, slo), burn_rate(over_hour.get((namespace, symbol)), slo))
            for (namespace, symbol), ratio in sorted(over_window.items())]
