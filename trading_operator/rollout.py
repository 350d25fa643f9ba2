"""Which revision runs, which is stable, and what analysis decides about a new one — pure.

A new revision (a spec change, a tuning proposal, a retry) runs, or runs as a shadow beside stable, and
gets an analysis run once it is rolled out. The run's verdict (written by the analysis loop) decides:
Successful → promoted to stable; Failed → back to stable, the revision aborted until the spec changes
or a retry; Inconclusive → held where it is with a condition saying why, never rolled back. A revision whose
pods cannot become ready (a crash loop, a progress deadline passed) fails whatever its run says, even while
held or paused: waiting cannot fix it. The first revision of a symbol has nothing to compare with and becomes
stable once rolled out; a stable revision that crash loops is reported (Degraded, one Event), not rolled
back, since there is no known-good revision to go to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from policies.loader import PolicySet
from policies.models import AnalysisPolicySpec, SLOPolicySpec, TuningPolicySpec
from trading_operator import failures, naming, tuner, user_requests
from trading_operator.analysis import OBJECTIVE, AnalysisSettings, measured_mean, record, settings_for
from trading_operator.api import (
    AnalysisKind,
    AnalysisPhase,
    AnalysisRun,
    BackgroundState,
    ConditionStatus,
    FailedRevision,
    ForcedRollback,
    RequestAction,
    RollbackRecord,
    TradingSymbolSpec,
    TradingSymbolStatus,
    TuningState,
)
from trading_operator.conditions import ConditionType, Reason
from trading_operator.findings import ObjectiveMeasured, RunMeasured, StableMeasured
from trading_operator.healing import Action, Outcome, answered, assess
from trading_operator.plans import NORMAL, WARNING, Observed, Plan, RemoveAnnotation
from trading_operator.progress import NotReady
from trading_operator.revisions import Revision, find_by_number
from trading_operator.timestamps import seconds_between
from trading_operator.user_requests import Answers, RequestPayload


@dataclass(frozen=True)
class Policies:
    """The policies a TradingSymbol names, resolved."""

    slo: SLOPolicySpec
    analysis: AnalysisSettings
    analysis_policy: AnalysisPolicySpec
    tuning: TuningPolicySpec | None
    """None when the named tuning policy is disabled."""
    tuning_name: str


def resolve_policies(policy_set: PolicySet, spec: TradingSymbolSpec) -> Policies:
    """The named policies; a KeyError naming the missing one (the spec is then invalid)."""
    refs = spec.policies
    problems = []
    found: dict[str, Any] = {}
    for field, kind in (("slo", SLOPolicySpec), ("analysis", AnalysisPolicySpec), ("tuning", TuningPolicySpec)):
        try:
            found[field] = policy_set.get(kind, getattr(refs, field))
        except KeyError as error:
            problems.append(f"spec.policies.{field}: {error.args[0]}")
    if problems:
        raise KeyError("; ".join(problems))
    tuning: TuningPolicySpec = found["tuning"]
    return Policies(
        slo=found["slo"],
        analysis=settings_for(found["analysis"], spec.rollout),
        analysis_policy=found["analysis"],
        tuning=tuning if tuning.enabled else None,
        tuning_name=refs.tuning,
    )


def fold_findings(result: Plan, observed: Observed, spec: TradingSymbolSpec, status: TradingSymbolStatus,
                  policies: Policies) -> TradingSymbolStatus:
    """The analysis loop's findings, in order, as verdicts and status: a run's measurements are tallied into
    its verdict, a background breach becomes a restart or a rollback, a measured objective a tuning proposal.
    A finding about a run or revision that is no longer current is dropped."""
    for finding in observed.findings:
        if isinstance(finding, RunMeasured):
            status = _fold_run(result, status, policies, finding)
        elif isinstance(finding, StableMeasured):
            status = _fold_background(result, status, policies, finding)
            _answer_analysis_request(result, observed.annotations, finding)
        elif isinstance(finding, ObjectiveMeasured):
            status = _fold_objective(result, spec, status, policies, finding)
    return status


def _fold_run(result: Plan, status: TradingSymbolStatus, policies: Policies,
              finding: RunMeasured) -> TradingSymbolStatus:
    run = status.analysis
    if run is None or run.revision != finding.revision or run.started_at != finding.started_at \
            or run.phase is not AnalysisPhase.RUNNING:
        return status
    updated = record(run, list(finding.measurements), policies.analysis, finding.time)
    if updated.phase is AnalysisPhase.INCONCLUSIVE:
        result.event(WARNING, Reason.ANALYSIS_INCONCLUSIVE,
                     f"Analysis of revision {run.revision} inconclusive: {updated.message}; "
                     "not rolled back, held until promote, abort or retry")
    elif updated.phase is AnalysisPhase.FAILED:
        result.event(WARNING, Reason.ANALYSIS_FAILED, f"Analysis of revision {run.revision} failed: {updated.message}")
    return status.model_copy(update={"analysis": updated})


def _fold_background(result: Plan, status: TradingSymbolStatus, policies: Policies,
                     finding: StableMeasured) -> TradingSymbolStatus:
    if status.stable_revision != finding.revision or status.current_revision != finding.revision:
        return status
    outcome = assess(status, list(finding.measurements), policies.analysis_policy.background, finding.time)
    if outcome.action is Action.ROLLBACK:
        result.event(WARNING, Reason.ROLLED_BACK, outcome.message)
        return _background_rollback(status, outcome, finding.time)
    if outcome.action is Action.RESTART:
        result.event(WARNING, Reason.SELF_HEALING_RESTART, outcome.message)
    elif outcome.action is Action.EXHAUSTED:
        result.event(WARNING, Reason.SELF_HEALING_EXHAUSTED, outcome.message)
    elif outcome.background == (status.background or BackgroundState()):
        return status  # a measurement that changes nothing is not written (not even a first, empty record)
    return status.model_copy(update={"background": outcome.background})


def _answer_analysis_request(result: Plan, annotations: dict[str, str], finding: StableMeasured) -> None:
    """An analysis request (a firing alert's, or a drill's) is removed once a measurement made after it was
    answered by Prometheus: whoever asked sees it answered, though a healthy measurement writes no status."""
    requested = annotations.get(naming.ANALYSIS_REQUESTED_ANNOTATION)
    if requested is None or not answered(list(finding.measurements)):
        return
    try:
        after = seconds_between(requested, finding.time) >= 0
    except ValueError:
        return  # not a time: the analysis loop ignores it (and says so)
    if after:
        result.actions.append(RemoveAnnotation(naming.ANALYSIS_REQUESTED_ANNOTATION))


def _background_rollback(status: TradingSymbolStatus, outcome: Outcome, now: str) -> TradingSymbolStatus:
    """A breach soon after a promotion: the previous stable revision is stable again, the breaching one
    aborted (the decision below then runs stable)."""
    rollback = RollbackRecord(from_revision=status.stable_revision, to_revision=status.previous_stable_revision,
                              reason=f"SLOBreach: {outcome.background.last_breach}", time=now)
    return status.model_copy(update={
        "background": outcome.background,
        "failed_revisions": failures.remember(status.failed_revisions, status.stable_revision, rollback.reason, now),
        "aborted_revision": status.stable_revision,
        "stable_revision": status.previous_stable_revision,
        "previous_stable_revision": 0,
        "stable_since": now,
        "last_rollback": rollback,
    })


def _fold_objective(result: Plan, spec: TradingSymbolSpec, status: TradingSymbolStatus, policies: Policies,
                    finding: ObjectiveMeasured) -> TradingSymbolStatus:
    state, policy = status.tuning, policies.tuning
    if state is None or policy is None or state.candidate or status.stable_revision != finding.revision:
        return status
    if finding.value is None:
        return status  # no objective yet (e.g. the hit rate needs its horizon): measured again later
    search = tuner.propose(state, policy, spec.config.model_dump(by_alias=True, mode="json"), finding.time)
    for skipped in search.skipped:
        result.event(WARNING, Reason.TUNING_SKIPPED, f"Tuning proposal skipped, its config would be invalid: {skipped}")
    proposal = search.proposal
    if proposal is None:
        result.event(NORMAL, Reason.TUNING_PROPOSED, "Tuning converged: every parameter searched to its minimum step")
        return status.model_copy(update={"tuning": search.state})
    result.event(NORMAL, Reason.TUNING_PROPOSED,
                 f"Proposing {proposal.parameter.path} {proposal.from_value:g} -> {proposal.to_value:g} "
                 f"(objective of stable revision {status.stable_revision}: {finding.value:.6g})")
    return status.model_copy(update={"tuning": tuner.started(state, proposal, finding.value, finding.time)})


@dataclass
class Decision:
    """What runs and what the status records about it."""

    target: Revision | None
    shadow: Revision | None
    stable: int
    previous_stable: int
    stable_since: str | None
    aborted: int | None
    last_rollback: RollbackRecord | None
    analysis: AnalysisRun | None
    tuning: TuningState | None
    hold_reason: str | None = None
    """Set while an Inconclusive run holds the rollout (the Paused condition)."""
    never_ready: NotReady | None = None
    """Set when a first revision (no stable one to return to) cannot become ready: Degraded, nothing else."""
    stable_failing: NotReady | None = None
    """Set while the stable revision's own pods crash loop or cannot become ready: Degraded, not rolled back."""
    requests: Answers = dataclasses.field(default_factory=lambda: Answers([], []))
    """This reconcile's answers to requests (promote, abort, retry, rollback, restart)."""
    restarted_at: str | None = None
    """Set when a restart request was accepted: the new pod-template stamp."""
    failed: list[FailedRevision] = dataclasses.field(default_factory=list)
    """Revisions that failed or were rolled back from (`failures.py`)."""
    forced: ForcedRollback | None = None
    """A failed revision rolled back to by force, under analysis."""


def decide(
    result: Plan,
    observed: Observed,
    spec: TradingSymbolSpec,
    status: TradingSymbolStatus,
    revisions: list[Revision],
    update: Revision,
    candidate: Revision | None,
    policies: Policies,
    tuning: TuningState | None,
    running: dict[str, int | None],
    failing: dict[str, tuple[int, NotReady]] | None = None,
) -> Decision:
    """The rollout decision. `running` maps `main`/`shadow` to the revision fully rolled out there, `failing`
    to the revision there whose pods cannot become ready, and why (`progress.not_ready`)."""
    failing = failing or {}
    decision = _decide(result, observed, spec, status, revisions, update, candidate, policies, tuning, running,
                       failing)
    _stable_failing(result, status, decision, failing)
    return decision


def _decide(
    result: Plan,
    observed: Observed,
    spec: TradingSymbolSpec,
    status: TradingSymbolStatus,
    revisions: list[Revision],
    update: Revision,
    candidate: Revision | None,
    policies: Policies,
    tuning: TuningState | None,
    running: dict[str, int | None],
    failing: dict[str, tuple[int, NotReady]],
) -> Decision:
    aborted = status.aborted_revision if status.aborted_revision == update.number else None
    decision = Decision(
        target=None, shadow=None, stable=status.stable_revision, previous_stable=status.previous_stable_revision,
        stable_since=status.stable_since, aborted=aborted, last_rollback=status.last_rollback,
        analysis=status.analysis, tuning=tuning, failed=list(status.failed_revisions),
        forced=_still_forced(status, observed, revisions),
    )
    current = find_by_number(revisions, status.current_revision)
    stable = find_by_number(revisions, decision.stable)
    forced = find_by_number(revisions, decision.forced.revision) if decision.forced else None
    nxt = forced or candidate or update
    decision.requests = user_requests.answer(observed.annotations, user_requests.moment_of(
        observed.generation, status, nxt.number, aborted, spec.paused, revisions, failures.reasons(decision.failed)))
    user_requests.respond(result, decision.requests)
    if decision.requests.accepted(RequestAction.RESTART):
        decision.restarted_at = observed.now
    rollback = decision.requests.accepted(RequestAction.ROLLBACK)
    if rollback is not None and rollback.forced_analysis:
        forced = _force(result, observed, revisions, update, rollback.payload, decision) or forced
    elif rollback is not None and not rollback.forced_retry and _manual_rollback(
            result, observed, revisions, update, current, rollback.payload, decision):
        return decision
    if stable is None:
        decision.target = current if spec.paused else nxt
        if decision.target is not None and running["main"] == decision.target.number:
            decision.stable, decision.stable_since = decision.target.number, observed.now
        elif decision.target is not None and failing.get("main", (0, None))[0] == decision.target.number:
            _first_never_ready(result, observed, decision.target, failing["main"][1], decision)
        return decision
    if spec.paused:
        decision.target = current or stable
        if decision.analysis and decision.analysis.revision == nxt.number and nxt.number != stable.number \
                and decision.analysis.phase is not AnalysisPhase.FAILED:
            decision.shadow = nxt if decision.analysis.kind is AnalysisKind.SHADOW else None
        _fail_stuck_while_paused(result, observed, stable, decision, failing)
        return decision
    if forced is not None:
        held = decision.aborted
        decide_new(result, observed, spec, stable, forced, None, policies, decision, running, failing)
        _conclude_forced(decision, forced, update, held, observed.now)
        return decision
    if nxt.number == stable.number:
        decision.target = stable
        _retry(result, observed, decision, update)
        return decision
    if nxt.number == decision.aborted:
        decision.target = stable
        if _retry(result, observed, decision, update):
            return decide_new(result, observed, spec, stable, nxt, candidate, policies, decision, running, failing)
        return decision
    return decide_new(result, observed, spec, stable, nxt, candidate, policies, decision, running, failing)


def _first_never_ready(result: Plan, observed: Observed, target: Revision, why: NotReady,
                       decision: Decision) -> None:
    """A first revision that cannot become ready has nothing to return to: it stays (a fix is a new spec),
    the symbol is Degraded with the pod-level reason, and the Event is sent once, not on every reconcile."""
    decision.never_ready = why
    if target.number not in failures.reasons(decision.failed):
        decision.failed = failures.remember(decision.failed, target.number, why.describe(), observed.now)
    run = decision.analysis
    if run is None or run.revision != target.number or run.phase is not AnalysisPhase.FAILED:
        decision.analysis = AnalysisRun(revision=target.number, kind=AnalysisKind.ROLLOUT, phase=AnalysisPhase.FAILED,
                                        started_at=observed.now, finished_at=observed.now,
                                        message=f"never ready: {why.describe()}")
        result.event(WARNING, why.reason,
                     f"Revision {target.number} never became ready and there is no stable revision to return to "
                     f"({why.describe()}); fix the spec to roll out a new one")


def _retry(result: Plan, observed: Observed, decision: Decision, update: Revision) -> bool:
    """Act on an accepted retry (or forced rollback to the aborted revision): True when the aborted revision is
    to be rolled out again, with a fresh analysis."""
    forced = decision.requests.accepted(RequestAction.ROLLBACK)
    if decision.requests.accepted(RequestAction.RETRY) is None and not (forced and forced.forced_retry):
        return False
    result.event(NORMAL, Reason.RETRYING, f"Retrying revision {update.number} with a fresh analysis")
    decision.aborted = None
    decision.analysis = None
    return True


def decide_new(
    result: Plan,
    observed: Observed,
    spec: TradingSymbolSpec,
    stable: Revision,
    nxt: Revision,
    candidate: Revision | None,
    policies: Policies,
    decision: Decision,
    running: dict[str, int | None],
    failing: dict[str, tuple[int, NotReady]] | None = None,
) -> Decision:
    """A revision other than stable is to take over: run it (or shadow it), analyse it, act on the verdict. A
    revision whose pods cannot become ready fails like an analysis would, with the pod-level reason."""
    kind = AnalysisKind.TUNING if candidate else (AnalysisKind.SHADOW if spec.rollout.shadow else AnalysisKind.ROLLOUT)
    if decision.analysis and decision.analysis.revision == nxt.number \
            and failures.acted_on(decision.failed, decision.analysis):
        decision.analysis = None  # its rollback happened: this rollout of the revision is analysed afresh
    run = decision.analysis if decision.analysis and decision.analysis.revision == nxt.number else None
    shadowed = kind is AnalysisKind.SHADOW
    decision.target, decision.shadow = (stable, nxt) if shadowed else (nxt, None)
    now = observed.now
    if decision.requests.accepted(RequestAction.ABORT):
        run = _finished(run, nxt, kind, stable, AnalysisPhase.FAILED, "aborted by request", now)
    elif decision.requests.accepted(RequestAction.PROMOTE):
        run = _finished(run, nxt, kind, stable, AnalysisPhase.SUCCESSFUL, "promoted by request", now)
    stuck = (failing or {}).get("shadow" if shadowed else "main")
    # Pods that cannot become ready fail the revision over any verdict short of Failed (an Inconclusive hold, a
    # Successful run not yet acted on); only a person's explicit promote outranks them.
    if stuck is not None and stuck[0] == nxt.number and (run is None or run.phase is not AnalysisPhase.FAILED) \
            and decision.requests.accepted(RequestAction.PROMOTE) is None:
        run = _finished(run, nxt, kind, stable, AnalysisPhase.FAILED, _never_ready_message(run, stuck[1]), now)
    if run is None and kind is not AnalysisKind.TUNING and not any(s.analysis for s in policies.slo.slos):
        if running["shadow" if shadowed else "main"] == nxt.number:
            _promote(result, observed, stable, nxt, decision, "the SLO policy has no analysis metrics")
        return decision
    if run is None:
        if running["shadow" if shadowed else "main"] == nxt.number:
            settings = policies.analysis
            decision.analysis = AnalysisRun(revision=nxt.number, kind=kind, started_at=now,
                                            baseline_revision=stable.number if shadowed else None)
            where = f" as a shadow beside stable revision {stable.number}" if shadowed else ""
            result.event(NORMAL, Reason.ANALYSIS_STARTED,
                         f"Analysing revision {nxt.number}{where}: {settings.count} measurements "
                         f"every {settings.interval_seconds}s after {settings.initial_delay_seconds}s")
        return decision
    decision.analysis = run
    if kind is AnalysisKind.TUNING and run.phase is not AnalysisPhase.RUNNING:
        return _conclude_tuning(result, observed, spec, stable, nxt, run, policies, decision)
    if run.phase is AnalysisPhase.SUCCESSFUL:
        _promote(result, observed, stable, nxt, decision, f"analysis successful: {run.message}")
    elif run.phase is AnalysisPhase.FAILED:
        why = stuck[1].describe() if stuck and stuck[0] == nxt.number else f"AnalysisFailed: {run.message}"
        _roll_back(result, now, stable, nxt, run, why, decision)
    elif run.phase is AnalysisPhase.INCONCLUSIVE:
        decision.hold_reason = (f"Analysis of revision {nxt.number} inconclusive ({run.message}); held, not rolled "
                                "back: promote, abort or retry")
    return decision


def _roll_back(result: Plan, now: str, stable: Revision, failed: Revision, run: AnalysisRun, why: str,
               decision: Decision) -> None:
    """Run stable again and abort the failed revision (until the spec changes or a retry), with the Event."""
    shadowed = run.kind is AnalysisKind.SHADOW
    decision.target, decision.shadow, decision.aborted, decision.analysis = stable, None, failed.number, run
    decision.last_rollback = RollbackRecord(from_revision=failed.number, to_revision=stable.number, reason=why,
                                            time=now)
    decision.failed = failures.remember(decision.failed, failed.number, why, now)
    what = "Shadow analysis" if shadowed else "Analysis"
    back = "kept" if shadowed else "rolled back to"
    result.event(WARNING, Reason.ROLLED_BACK,
                 f"{what} of revision {failed.number} failed ({run.message}); {back} stable revision "
                 f"{stable.number}; revision {failed.number} is aborted until the spec changes or a retry")


def _never_ready_message(run: AnalysisRun | None, why: NotReady) -> str:
    held = f" (analysis was {run.phase}: {run.message})" if run and run.phase is not AnalysisPhase.RUNNING \
        and run.message else ""
    return f"never ready: {why.describe()}{held}"


def _fail_stuck_while_paused(result: Plan, observed: Observed, stable: Revision, decision: Decision,
                             failing: dict[str, tuple[int, NotReady]]) -> None:
    """Paused holds changes, not a revision whose pods cannot become ready: that one is rolled back to stable
    as it would be unpaused (running it longer only lengthens the outage)."""
    for where, running in (("main", decision.target), ("shadow", decision.shadow)):
        stuck = failing.get(where)
        if running is None or running.number == stable.number or stuck is None or stuck[0] != running.number:
            continue
        run = decision.analysis if decision.analysis and decision.analysis.revision == running.number else None
        kind = run.kind if run else (AnalysisKind.SHADOW if where == "shadow" else AnalysisKind.ROLLOUT)
        finished = _finished(run, running, kind, stable, AnalysisPhase.FAILED,
                             _never_ready_message(run, stuck[1]), observed.now)
        _roll_back(result, observed.now, stable, running, finished, stuck[1].describe(), decision)
        return


def _stable_failing(result: Plan, status: TradingSymbolStatus, decision: Decision,
                    failing: dict[str, tuple[int, NotReady]]) -> None:
    """The stable revision's own pods crash looping (in the background, long after its rollout): Degraded with
    the pod-level reason and one Event when it starts, never a rollback (no known-good revision to go to;
    a new spec or `opsctl rollback` is a person's call)."""
    stuck = failing.get("main")
    target = decision.target
    if stuck is None or target is None or stuck[0] != target.number or target.number != decision.stable \
            or decision.never_ready is not None:
        return
    decision.stable_failing = stuck[1]
    if not any(c.type == ConditionType.DEGRADED and c.status is ConditionStatus.TRUE and c.reason == stuck[1].reason
               for c in status.conditions):
        result.event(WARNING, stuck[1].reason,
                     f"Stable revision {target.number} cannot stay ready ({stuck[1].describe()}); not rolled back: "
                     "fix the cause, change the spec or roll back by request")


def _finished(run: AnalysisRun | None, nxt: Revision, kind: AnalysisKind, stable: Revision, phase: AnalysisPhase,
              message: str, now: str) -> AnalysisRun:
    base = run or AnalysisRun(revision=nxt.number, kind=kind, started_at=now,
                              baseline_revision=stable.number if kind is AnalysisKind.SHADOW else None)
    return base.model_copy(update={"phase": phase, "message": message, "finished_at": now})


def _promote(result: Plan, observed: Observed, stable: Revision, nxt: Revision, decision: Decision,
             why: str) -> None:
    decision.previous_stable, decision.stable, decision.stable_since = stable.number, nxt.number, observed.now
    decision.failed = failures.forget(decision.failed, nxt.number)
    decision.target, decision.shadow = nxt, None
    result.event(NORMAL, Reason.PROMOTED, f"Revision {nxt.number} promoted to stable ({why})")


def _conclude_tuning(
    result: Plan, observed: Observed, spec: TradingSymbolSpec, stable: Revision, nxt: Revision, run: AnalysisRun,
    policies: Policies, decision: Decision,
) -> Decision:
    state = decision.tuning
    if state is None or policies.tuning is None:  # the policy went away mid-proposal: back to stable
        decision.target = stable
        return decision
    base_config = spec.config.model_dump(by_alias=True, mode="json")
    objective = measured_mean(run, OBJECTIVE)
    outcome = tuner.outcome_of(run.phase, objective, state.baseline_objective, policies.tuning)
    detail = (f"objective {objective if objective is None else round(objective, 6)} vs baseline "
              f"{state.baseline_objective if state.baseline_objective is None else round(state.baseline_objective, 6)}")
    decision.tuning = tuner.conclude(state, policies.tuning, outcome, objective, nxt.number, base_config,
                                     observed.now)
    if outcome == "Kept":
        _promote(result, observed, stable, nxt, decision, f"tuning kept: {detail}; {run.message}")
        result.event(NORMAL, Reason.TUNING_KEPT, f"Tuning proposal (revision {nxt.number}) kept: {detail}")
        return decision
    decision.target = stable
    if outcome == "SLOBreach":
        decision.last_rollback = RollbackRecord(from_revision=nxt.number, to_revision=stable.number,
                                                reason=f"TuningSLOBreach: {run.message}", time=observed.now)
        decision.failed = failures.remember(decision.failed, nxt.number, decision.last_rollback.reason, observed.now)
        result.event(WARNING, Reason.TUNING_REVERTED,
                     f"Tuning proposal (revision {nxt.number}) breached an SLO ({run.message}); reverted to "
                     f"revision {stable.number}")
    else:
        result.event(NORMAL, Reason.TUNING_REVERTED,
                     f"Tuning proposal (revision {nxt.number}) reverted ({outcome}: {detail}); back to revision "
                     f"{stable.number}")
    return decision


def _manual_rollback(
    result: Plan, observed: Observed, revisions: list[Revision], update: Revision, current: Revision | None,
    request: RequestPayload | None, decision: Decision,
) -> bool:
    """Act on an accepted rollback request (`user_requests` checked that the revision exists and is not running,
    and that running an aborted one was forced: that one runs analysed, through `_retry`)."""
    chosen = find_by_number(revisions, request.to_revision or 0) if request else None
    if chosen is None:
        return False
    from_number = current.number if current else 0
    decision.last_rollback = RollbackRecord(from_revision=from_number, to_revision=chosen.number,
                                            reason=f"ManualRollback: requested revision {chosen.number}",
                                            time=observed.now)
    decision.aborted = update.number if update.number != chosen.number else None
    if decision.aborted is not None and decision.aborted not in failures.reasons(decision.failed):
        decision.failed = failures.remember(decision.failed, decision.aborted,
                                            f"ManualRollback: rolled back to revision {chosen.number} by request",
                                            observed.now)
    if decision.analysis is not None and decision.analysis.phase is AnalysisPhase.RUNNING:
        decision.analysis = decision.analysis.model_copy(update={
            "phase": AnalysisPhase.FAILED, "message": f"aborted: manual rollback to {chosen.number}",
            "finished_at": observed.now})
    if decision.tuning is not None and decision.tuning.candidate is not None:
        decision.tuning = decision.tuning.model_copy(update={"candidate": None})
    if chosen.number != decision.stable:
        decision.previous_stable = decision.stable
    decision.stable, decision.stable_since, decision.target = chosen.number, observed.now, chosen
    held = f"; revision {decision.aborted} from the spec is aborted until the spec changes" if decision.aborted else ""
    result.event(NORMAL, Reason.ROLLED_BACK,
                 f"Rolled back from revision {from_number} to {chosen.number} (manual){held}")
    return True



def _still_forced(status: TradingSymbolStatus, observed: Observed, revisions: list[Revision]) -> ForcedRollback | None:
    """The forced rollback under way, unless the spec changed since (its revision rolls out instead), the
    revision is gone, or it already became stable."""
    forced = status.forced_rollback
    if forced is None or forced.generation != observed.generation or forced.revision == status.stable_revision \
            or find_by_number(revisions, forced.revision) is None:
        return None
    return forced


def _force(result: Plan, observed: Observed, revisions: list[Revision], update: Revision,
           request: RequestPayload | None, decision: Decision) -> Revision | None:
    """Act on an accepted `rollback --force` to an older failed revision: it is to run with a fresh analysis
    while stable stays stable; what was under way is ended and the spec's revision held (aborted) as any
    rollback by request holds it."""
    chosen = find_by_number(revisions, request.to_revision or 0) if request else None
    if chosen is None:
        return None
    if decision.analysis is not None and decision.analysis.phase is AnalysisPhase.RUNNING:
        decision.analysis = decision.analysis.model_copy(update={
            "phase": AnalysisPhase.FAILED, "message": f"aborted: forced rollback to {chosen.number}",
            "finished_at": observed.now})
    if decision.analysis is not None and decision.analysis.revision == chosen.number:
        decision.analysis = None  # its old verdict is not this run's: a fresh analysis
    if decision.tuning is not None and decision.tuning.candidate is not None:
        decision.tuning = decision.tuning.model_copy(update={"candidate": None})
    if update.number not in (decision.stable, chosen.number):
        decision.aborted = update.number
    decision.forced = ForcedRollback(revision=chosen.number, generation=observed.generation)
    result.event(NORMAL, Reason.RETRYING,
                 f"Rolling back to failed revision {chosen.number} by request (forced): it runs with a fresh "
                 f"analysis; revision {decision.stable} stays stable until it passes")
    return chosen


def _conclude_forced(decision: Decision, forced: Revision, update: Revision, held: int | None, now: str) -> None:
    """A forced rollback's verdict: promoted (`decide_new` did it, and forgot the failure; the spec's revision is
    then held, as after any rollback by request), or failed again and back to stable with the spec's revision
    held as before; either way it is over."""
    if decision.stable == forced.number:
        if update.number != forced.number:
            decision.aborted = update.number
            if update.number not in failures.reasons(decision.failed):
                why = f"ManualRollback: rolled back to revision {forced.number} by request"
                decision.failed = failures.remember(decision.failed, update.number, why, now)
        decision.forced = None
        return
    run = decision.analysis
    if run is not None and run.revision == forced.number and run.phase is AnalysisPhase.FAILED:
        decision.aborted = held
        decision.forced = None
