"""A contextual bandit that learns a size multiplier in [0, 1] of the risk-capped size.

Arms are multipliers; the context is the volatility regime (realised vol below or above the target) and
whether a regime change is recent. Each position's arm is rewarded, when the next sizing comes, with its
risk-adjusted outcome: r − λ·r² for r the equity change over the holding period as a share of capital
(so a larger multiplier pays only when the edge outweighs the variance it adds). UCB1 per context chooses.
The bandit can only shrink: `capped_size` clamps the multiplier to [0, 1] and never returns more than the
risk rules allow."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

ARMS = (0.0, 0.25, 0.5, 0.75, 1.0)
RISK_AVERSION = 50.0
REWARD_SCALE = 100.0
"""Rewards are in percent of capital: UCB's exploration bonus is sized for rewards of order one."""


def capped_size(multiplier: float, capped: float) -> float:
    """The size to trade: `multiplier` (clamped to [0, 1]; NaN is 0) × the risk-capped size, never above it."""
    if not capped > 0:
        return 0.0
    m = 0.0 if math.isnan(multiplier) else min(1.0, max(0.0, multiplier))
    return min(capped, m * capped)


@dataclass
class _Arms:
    counts: list[int] = field(default_factory=lambda: [0] * len(ARMS))
    means: list[float] = field(default_factory=lambda: [0.0] * len(ARMS))


@dataclass
class SizingBandit:
    contexts: dict[tuple[bool, bool], _Arms] = field(default_factory=dict)
    _open: tuple[tuple[bool, bool], int, float, float] | None = None
    """(context, arm, equity when chosen, capital) of the position being held."""

    def choose(self, high_vol: bool, recent_regime_change: bool, equity: float, capital: float) -> float:
        """Reward the previous choice with the equity since, then choose the multiplier of the next position."""
        self.settle(equity)
        context = (high_vol, recent_regime_change)
        arms = self.contexts.setdefault(context, _Arms())
        total = sum(arms.counts)
        untried = [i for i, n in enumerate(arms.counts) if n == 0]
        if untried:
            arm = untried[0]
        else:
            arm = max(range(len(ARMS)), key=lambda i: arms.means[i] + math.sqrt(2 * math.log(total) / arms.counts[i]))
        self._open = (context, arm, equity, capital)
        return ARMS[arm]

    def settle(self, equity: float) -> None:
        """Close the held position's arm with its risk-adjusted outcome."""
        if self._open is None:
            return
        context, arm, then, capital = self._open
        self._open = None
        r = (equity - then) / capital * REWARD_SCALE
        reward = r - RISK_AVERSION / REWARD_SCALE * r * r
        arms = self.contexts[context]
        arms.counts[arm] += 1
        arms.means[arm] += (reward - arms.means[arm]) / arms.counts[arm]
