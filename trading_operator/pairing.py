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
(thinning to one call per horizon is what the grid already does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Calls:
    """One pod's scored points: slot → (direction called, realised sign)."""

    horizon_seconds: float
    points: dict[int, tuple[int, int]]


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
    return Calls(float(horizon), parsed)


@dataclass(frozen=True)
class PairedCounts:
    """The 2×2 table of the paired calls: who of the two was right on each pair."""

    both: int
    candidate_only: int
    stable_only: int
    neither: int
    mismatched: int = 0
    """Points both scored whose realised sign differs between them (not pairs)."""

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
    mismatched = 0
    for slot, (direction, actual) in candidate.points.items():
        other = stable.points.get(slot)
        if other is None:
            continue
        if other[1] != actual:
            mismatched += 1
            continue
        if direction and other[0]:
            table[(direction == actual, other[0] == actual)] += 1
    return PairedCounts(table[(True, True)], table[(True, False)], table[(False, True)], table[(False, False)],
                        mismatched)
