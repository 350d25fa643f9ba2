"""The revisions that failed, remembered — pure: what makes a rollback to any of them need `--force`.

`status.abortedRevision` names only the spec's revision while it is aborted; once the spec moves on, an
older failed revision would look like any other to `opsctl rollback --to-revision` and become stable with no
analysis. So every failure (a failed or aborted analysis, pods that never became ready, a breach soon after
promotion, a tuning proposal that breached an SLO, a revision rolled back from by request) is kept here with
its reason, newest last, bounded; a promotion (the revision proved good after all) forgets it."""

from __future__ import annotations

from trading_operator.api import AnalysisPhase, AnalysisRun, FailedRevision
from trading_operator.timestamps import seconds_between

KEPT = 10
"""Failed revisions remembered (the revision history limit's default)."""


def remember(history: list[FailedRevision], revision: int, reason: str, time: str) -> list[FailedRevision]:
    """`history` with `revision` failed now (an earlier entry of it is replaced)."""
    kept = [f for f in history if f.revision != revision]
    return [*kept, FailedRevision(revision=revision, reason=reason, time=time)][-KEPT:]


def forget(history: list[FailedRevision], revision: int) -> list[FailedRevision]:
    """`history` without `revision` (it was promoted)."""
    return [f for f in history if f.revision != revision]


def reasons(history: list[FailedRevision]) -> dict[int, str]:
    """Each failed revision's latest reason."""
    return {f.revision: f.reason for f in history}


def acted_on(history: list[FailedRevision], run: AnalysisRun) -> bool:
    """A Failed run whose revision was recorded failed at or after the run started: the rollback it caused has
    happened. When that revision is the one to roll out again (the spec left it and came back to it, or a
    FleetRollout hands its change back on retry), it is analysed afresh, not rolled back on the old verdict."""
    failed = failed_at(history).get(run.revision)
    return run.phase is AnalysisPhase.FAILED and failed is not None and seconds_between(run.started_at, failed) >= 0


def failed_at(history: list[FailedRevision]) -> dict[int, str]:
    """When each failed revision last failed."""
    return {f.revision: f.time for f in history}
