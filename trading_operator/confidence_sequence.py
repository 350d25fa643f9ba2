"""An anytime-valid confidence sequence for the mean of values in [-1, 1], pure: what a growing sample says
however often it is looked at.

A fixed-sample interval (Wilson, Newcombe) keeps its coverage at one sample size set in advance; judged again
every second on a growing sample, it is crossed by chance far more often than its level says. A confidence
sequence keeps it at every sample size at once: the chance that it *ever* excludes the true mean, over all
looks, is at most alpha. This one is the betting construction of Waudby-Smith and Ramdas (2023, "Estimating
means of bounded random variables by betting", JRSS-B): for each candidate mean m, one gambler bets that the
mean is above m and one that it is below; m is excluded once either has multiplied their capital by 2/alpha
(Ville's inequality, alpha/2 a side: the hedged capital process). Each gambler splits their capital evenly
among GRID constant bets, risking from MAX_STAKE/GRID up to MAX_STAKE of it on the worst value (WSR's
diversified Kelly), so the capital is close to that of the best constant bet in hindsight: a run of
identical values (every call flipped) multiplies it geometrically and is decided in about ten values, a
small difference takes hundreds. With constant bets the capital depends only on how often each value was
seen, not on their order.

The values need not be independent, only no better than m on average given the ones before (a martingale
condition): each must be settled before the next is drawn, which the runtime's scoring ensures for signal
calls (their horizons tile market time and never overlap: `pairing.py`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

MAX_STAKE = 0.9
"""The largest share of the capital a bet risks on the worst value: near 1 wins faster on a run of identical
values and loses nearly everything on one value that goes the other way."""

GRID = 20
"""How many constant bets, evenly spaced up to MAX_STAKE, share the capital."""

_BISECTIONS = 40
_STAKES = tuple(MAX_STAKE * (j + 1) / GRID for j in range(GRID))


def _log_capital(counts: Mapping[float, int], mean: float, side: int) -> float:
    """log of the capital of the gambler betting that the mean is above (`side` 1) or below (-1) `mean`:
    the average over the constant bets, each sized so the worst value (-side) leaves 1 - stake of it."""
    worst = 1 + side * mean
    logs = [
        sum(n * math.log1p(stake * side * (value - mean) / worst) for value, n in counts.items()) for stake in _STAKES
    ]
    top = max(logs)
    return top + math.log(sum(math.exp(log - top) for log in logs) / len(logs))


def mean_sequence(counts: Mapping[float, int], alpha: float) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the values seen (`counts`: how often each value in [-1, 1] was) and the
    (1 - alpha) confidence sequence's interval at this sample size; (0, -1, 1) with none.

    The gambler betting above m loses capital as m rises (the one betting below gains), and neither can win at
    its own end of [-1, 1]; so each bound is where one of them crosses log(2 / alpha), found by bisection."""
    n = sum(counts.values())
    if n <= 0:
        return 0.0, -1.0, 1.0
    barrier = math.log(2 / alpha)

    def bound(side: int) -> float:
        inside, excluded = float(side), -float(side)
        for _ in range(_BISECTIONS):
            middle = (inside + excluded) / 2
            if _log_capital(counts, middle, side) >= barrier:
                excluded = middle
            else:
                inside = middle
        return inside

    return sum(v * c for v, c in counts.items()) / n, bound(1), bound(-1)
