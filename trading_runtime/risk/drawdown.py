"""Drawdown protection in tiers: past each threshold of drawdown from the equity peak, position size is
multiplied down; past the last tier trading halts until an operator resets it (a new peak alone does not
un-halt: the kill switch is a human decision)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DrawdownState:
    drawdown: float
    size_multiplier: float
    halted: bool


@dataclass
class DrawdownGuard:
    tiers: tuple[tuple[float, float], ...] = ((0.03, 0.5), (0.06, 0.25))
    halt_at: float = 0.10
    peak: float = field(default=0.0)
    halted: bool = False

    def update(self, equity: float) -> DrawdownState:
        self.peak = max(self.peak, equity)
        drawdown = 0.0 if self.peak <= 0 else (self.peak - equity) / self.peak
        if drawdown >= self.halt_at:
            self.halted = True
        multiplier = 1.0
        for threshold, scale in self.tiers:
            if drawdown >= threshold:
                multiplier = scale
        return DrawdownState(drawdown, 0.0 if self.halted else multiplier, self.halted)

    def reset(self, equity: float) -> None:
        self.peak, self.halted = equity, False
