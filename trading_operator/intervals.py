"""Confidence intervals of binomial proportions, pure: how sure a measured ratio is.

Wilson's score interval (Wilson 1927) keeps its coverage with few trials and ratios near 0 or 1, where
the textbook normal interval collapses to a point; the difference of two proportions uses Newcombe's
hybrid score interval (Newcombe 1998, method 10), built from the two Wilson intervals."""

from __future__ import annotations

import math
from statistics import NormalDist


def z_for(confidence: float) -> float:
    """The normal quantile of a two-sided interval at `confidence` (0.90 -> 1.645)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(events: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson score interval of events/trials; (0, 1) with no trials (nothing is known)."""
    if trials <= 0:
        return 0.0, 1.0
    p = min(max(events / trials, 0.0), 1.0)  # extrapolated counts (increase()) can overshoot a little
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference(events: float, trials: float, other_events: float, other_trials: float,
               z: float) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score interval: (difference, low, high).

    It treats the two proportions as independent; for the same trials scored two ways (a strategy and a
    baseline on the same calls) the correlation is positive, so the interval is wider than it needs to
    be — a verdict it reaches is safe, some it could reach are left Inconclusive."""
    p1 = min(max(events / trials, 0.0), 1.0) if trials > 0 else 0.0
    p2 = min(max(other_events / other_trials, 0.0), 1.0) if other_trials > 0 else 0.0
    l1, u1 = wilson(events, trials, z)
    l2, u2 = wilson(other_events, other_trials, z)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)
