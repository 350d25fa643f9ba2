"""Labels without look-ahead: a decision's label is the move of the mid over the strategy horizon, and it is
joined only once a tick at or after `ts + horizon` has arrived — never earlier, whatever the caller holds.

The label is the sign of the move when |move| exceeds the spread at the decision (else 0: no tradable
information), and the meta-label says whether the primary direction got that sign right. A decision whose
horizon ends in a gap (no tick within one more horizon, or a session break) gets no label and is counted."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from trading_runtime.ml.features import Decision


@dataclass(frozen=True, slots=True)
class Labelled:
    decision: Decision
    labelled_at: float
    """Exchange time of the tick that closed the horizon (≥ decision.ts + horizon)."""
    move: float
    outcome: int
    """Sign of the move beyond the spread (−1, 0, 1)."""

    @property
    def hit(self) -> bool:
        """The meta-label: the primary direction was right."""
        return self.outcome != 0 and self.outcome == self.decision.features.direction


@dataclass
class LabelJoiner:
    horizon: float
    pending: collections.deque[Decision] = field(default_factory=collections.deque)
    dropped: int = 0
    """Decisions that could not be labelled (a gap after their horizon, a session break)."""

    def add(self, decision: Decision) -> None:
        self.pending.append(decision)

    def new_period(self) -> None:
        self.dropped += len(self.pending)
        self.pending.clear()

    def update(self, ts: float, mid: float) -> list[Labelled]:
        """The decisions whose horizon has passed at `ts`, labelled with the mid at `ts`."""
        out: list[Labelled] = []
        while self.pending and self.pending[0].ts + self.horizon <= ts:
            decision = self.pending.popleft()
            if ts - decision.ts > 2 * self.horizon:
                self.dropped += 1
                continue
            move = mid - decision.mid
            outcome = 0 if abs(move) <= decision.spread else (1 if move > 0 else -1)
            out.append(Labelled(decision, ts, move, outcome))
        return out
