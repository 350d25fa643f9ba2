"""Honest verdicts on proportions: Wilson score intervals, Newcombe's interval for a difference, and
"inconclusive" when there are too few samples or the interval spans no difference."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
MIN_SAMPLES = 30


@dataclass(frozen=True)
class Proportion:
    hits: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.trials if self.trials else None

    def interval(self, z: float = Z95) -> tuple[float, float] | None:
        """Wilson score interval (None without trials)."""
        if self.trials <= 0:
            return None
        n, p = self.trials, self.hits / self.trials
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(a: Proportion, b: Proportion, z: float = Z95) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval for rate(a) − rate(b) (from the two Wilson intervals)."""
    ia, ib = a.interval(z), b.interval(z)
    if ia is None or ib is None or a.rate is None or b.rate is None:
        return None
    d = a.rate - b.rate
    low = d - math.sqrt((a.rate - ia[0]) ** 2 + (ib[1] - b.rate) ** 2)
    high = d + math.sqrt((ia[1] - a.rate) ** 2 + (b.rate - ib[0]) ** 2)
    return low, high


def compare(a: Proportion, b: Proportion) -> str:
    """`better` / `worse` when the 95 % interval of the difference excludes 0, else `inconclusive` (with why)."""
    if min(a.trials, b.trials) < MIN_SAMPLES:
        return f"inconclusive (fewer than {MIN_SAMPLES} samples)"
    interval = difference_interval(a, b)
    assert interval is not None
    low, high = interval
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "inconclusive (the interval spans no difference)"
