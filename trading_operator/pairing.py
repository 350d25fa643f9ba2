"""Pairing two revisions' signal calls on the same points, pure: the counts a paired comparison is judged on.

Each runtime scores its calls at the first tick at or after every multiple of its horizon in market time
(`trading_runtime/signals/accuracy.py`) and answers the latest ones on `/decisions` as
`{"horizonSeconds": H, "points": [[slot, direction, actual], ...]}`. Two revisions on the same feed take
the same ticks, so a slot names the same point for both. A pair is a point both scored and both called
(a direction, not flat); a point whose realised sign differs between the two (one of them missed a tick)
is not a pair, and is counted.

Pairs are judged one after another on an anytime-valid confidence sequence, which needs each pair settled
before the next call is made. The runtime scores a point on the move up to the next grid point, so the points'
horizons tile market time: no two calls share any part of a price move, and every point is a pair to keep
(thinning to one call per horizon is what the grid already does).

A runtime that warmed up from market-data history (`trading_runtime/warmup.py`) answers `retrospectiveBefore`:
its points on earlier slots were called on replayed history — the same code on the same ticks the other
revision took live, scored on the same moves, but never traded. A pair is retrospective when either side's
point is. The table counts every pair, and also the live pairs alone (`live`): a failure may be judged on all
of them, a pass only on the live ones (`analysis.judge_paired`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Calls:
    """One pod's scored points: slot → (direction called, realised sign)."""

    horizon_seconds: float
    points: dict[int, tuple[int, int]]
    retrospective_before: int | None = None
    """Slots below it were called on replayed history (None: every point was called live)."""

    def live(self, slot: int) -> bool:
        return self.retrospective_before is None or slot >= self.retrospective_before


def parse_calls(body: Any) -> Calls:
    """A `/decisions` answer, validated; ValueError when it is not one."""
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    horizon = body.get("horizonSeconds")
    points = body.get("points")
    if not isinstance(horizon, int | float) or horizon <= 0 or not isinstance(points, list):
        raise ValueError("needs horizonSeconds > 0 and a list of points")
    parsed: dict[int, tuple[int, int]] = {}
    for point in points:
        if not (isinstance(point, list) and len(point) == 3 and all(isinstance(x, int) for x in point)
                and point[1] in (-1, 0, 1) and point[2] in (-1, 1)):
            raise ValueError(f"not a point [slot, direction, actual]: {point!r}")
        parsed[point[0]] = (point[1], point[2])
    before = body.get("retrospectiveBefore")
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        raise ValueError(f"retrospectiveBefore must be a slot (an integer), not {before!r}")
    return Calls(float(horizon), parsed, before)


@dataclass(frozen=True)
class PairedCounts:
    """The 2×2 table of the paired calls: who of the two was right on each pair."""

    both: int
    candidate_only: int
    stable_only: int
    neither: int
    mismatched: int = 0
    """Points both scored whose realised sign differs between them (not pairs)."""
    live: PairedCounts | None = None
    """The same table over the pairs both sides called live; None when every pair is live."""

    @property
    def live_table(self) -> PairedCounts:
        """The live pairs' table (this one when none is retrospective)."""
        return self.live if self.live is not None else self

    @property
    def retrospective(self) -> int:
        """Pairs on a point either side called on replayed history."""
        return self.pairs - self.live_table.pairs

    @property
    def pairs(self) -> int:
        return self.both + self.candidate_only + self.stable_only + self.neither

    @property
    def discordant(self) -> int:
        """Pairs where exactly one was right: the only ones that tell the two apart."""
        return self.candidate_only + self.stable_only


def pair(candidate: Calls, stable: Calls) -> PairedCounts:
    """The paired table over the points both scored and both called. Revisions with different horizons
    score different points: ValueError."""
    if candidate.horizon_seconds != stable.horizon_seconds:
        raise ValueError(f"horizons differ ({candidate.horizon_seconds:g}s vs {stable.horizon_seconds:g}s): "
                         "the two score different points")
    table = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    live = dict(table)
    mismatched = 0
    for slot, (direction, actual) in candidate.points.items():
        other = stable.points.get(slot)
        if other is None:
            continue
        if other[1] != actual:
            mismatched += 1
            continue
        if direction and other[0]:
            cell = (direction == actual, other[0] == actual)
            table[cell] += 1
            if candidate.live(slot) and stable.live(slot):
                live[cell] += 1
    live_counts = PairedCounts(live[(True, True)], live[(True, False)], live[(False, True)], live[(False, False)])
    whole = PairedCounts(table[(True, True)], table[(True, False)], table[(False, True)], table[(False, False)],
                         mismatched)
    return whole if live_counts.pairs == whole.pairs else replace(whole, live=live_counts)
