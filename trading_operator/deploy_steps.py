"""Which steps of a revision's deploy a committed plan took — an analysis run reaching its verdict, a
promotion, a rollback — traced as spans in that revision's deploy trace (`tracing.deploy_span`), the trace its
runtimes' decisions link to. So one trace shows a deploy's analysis verdicts and how it ended.

Read from the committed plan (status before and after, its Events), after the commit: a plan that lost its
status write took no step. `deploy_steps` is pure; `record` is the thin edge that names the revisions and
writes the spans."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from trading_operator import api, tracing
from trading_operator.conditions import Reason
from trading_operator.planner import parse_status
from trading_operator.plans import EmitEvent, Plan
from trading_operator.revisions import Revision
from trading_operator.timestamps import parse_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployStep:
    step: str
    """`analysis`, `promotion` or `rollback` (the span's name)."""
    revision: int
    """The revision whose deploy took the step (the one analysed, promoted or rolled back from)."""
    attributes: dict[str, str | int]
    started_at: str | None = None
    """When the step began (an analysis run's start); None: at the commit."""


def _ended_run(before: api.TradingSymbolStatus, after: api.TradingSymbolStatus) -> api.AnalysisRun | None:
    """The analysis run this plan ended, if it ended one (counted once, like the verdict metric)."""
    run, old = after.analysis, before.analysis
    if run is None or run.phase is api.AnalysisPhase.RUNNING:
        return None
    if old is None or (old.revision, old.started_at) != (run.revision, run.started_at):
        return run
    return run if old.phase is api.AnalysisPhase.RUNNING else None


def deploy_steps(before: api.TradingSymbolStatus, after: api.TradingSymbolStatus,
                 actions: Sequence[object]) -> list[DeployStep]:
    steps = []
    run = _ended_run(before, after)
    if run is not None:
        steps.append(DeployStep("analysis", run.revision, {"kind": run.kind.value, "verdict": run.phase.value,
                                                           "reason": run.message}, run.started_at))
    for action in actions:
        if not isinstance(action, EmitEvent):
            continue
        if action.reason == Reason.PROMOTED.value:
            steps.append(DeployStep("promotion", after.stable_revision,
                                    {"verdict": "Promoted", "reason": action.message,
                                     "previous_stable_revision": before.stable_revision}))
        elif action.reason == Reason.ROLLED_BACK.value:
            rollback = after.last_rollback
            source = rollback.from_revision if rollback is not None else before.current_revision
            target = rollback.to_revision if rollback is not None else after.current_revision
            steps.append(DeployStep("rollback", source, {"verdict": "RolledBack", "reason": action.message,
                                                         "to_revision": target}))
    return steps


def record(namespace: str, revisions: Sequence[Revision], before: api.TradingSymbolStatus, plan: Plan) -> None:
    """Trace the deploy steps of a committed plan (a no-op when tracing is off)."""
    if plan.status is None:
        return
    names = {revision.number: revision.name for revision in revisions}
    for step in deploy_steps(before, parse_status(plan.status), plan.actions):
        name = names.get(step.revision)
        if name is None:  # a revision already pruned: its deploy trace can no longer be named
            log.debug("no revision %d to trace its %s under", step.revision, step.step)
            continue
        start = int(parse_time(step.started_at).timestamp() * 1e9) if step.started_at else None
        with tracing.deploy_span(step.step, namespace, name, revision_number=step.revision, start_time=start,
                                 **step.attributes):
            pass
