"""Requests a person makes through opsctl (promote, abort, retry, rollback, restart) — pure.

A request is an annotation on the TradingSymbol whose value says what it was made for: the revision it is
about (for promote and abort, also the analysis run) and the spec generation the requester saw. Every
request is answered once, at the first reconcile that sees it: accepted when it still applies to the
moment observed, refused with a reason when that moment has passed (the analysis concluded, another
revision runs, the spec changed). A request is never kept for later, where it would act on a moment that
is gone: that is how a promote made while an analysis failed once turned a later retry into "promoted by
request". The answer is recorded in `status.requests` under the request's id (opsctl waits for it there),
and a request whose id is already answered is not acted on again."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field, ValidationError

from trading_operator import naming
from trading_operator.api import (
    AnalysisPhase,
    AnalysisRun,
    ConditionStatus,
    RequestAction,
    RequestOutcome,
    RequestRecord,
    TradingSymbolStatus,
)
from trading_operator.conditions import Reason
from trading_operator.plans import NORMAL, WARNING, Plan, RemoveAnnotation
from trading_operator.revisions import Revision
from trading_runtime.config import CamelModel

ANNOTATIONS: dict[RequestAction, str] = {
    RequestAction.ROLLBACK: naming.ROLLBACK_ANNOTATION,
    RequestAction.ABORT: naming.ABORT_ANNOTATION,
    RequestAction.PROMOTE: naming.PROMOTE_ANNOTATION,
    RequestAction.RETRY: naming.RETRY_ANNOTATION,
    RequestAction.RESTART: naming.RESTART_ANNOTATION,
}
"""Each action's annotation, in precedence order: when two accepted requests conflict, the earlier wins."""
RECORDS_KEPT = 10
"""Answered requests kept in status (newest last): enough for a requester to find its answer."""
ACCEPTED = "Accepted"


class Refusal(enum.StrEnum):
    """Why a request no longer applies (CamelCase: the condition's and the record's reason)."""

    MALFORMED = "Malformed"
    GENERATION_MOVED = "GenerationMoved"
    REVISION_CHANGED = "RevisionChanged"
    ANALYSIS_CONCLUDED = "AnalysisConcluded"
    RUN_CHANGED = "RunChanged"
    NOTHING_UNDER_WAY = "NothingUnderWay"
    NOT_ABORTED = "NotAborted"
    PAUSED = "Paused"
    NO_SUCH_REVISION = "NoSuchRevision"
    ALREADY_RUNNING = "AlreadyRunning"
    ABORTED_NEEDS_FORCE = "AbortedNeedsForce"
    NO_STABLE = "NoStableRevision"
    UNDER_ANALYSIS = "UnderAnalysis"
    SUPERSEDED = "Superseded"
    SPEC_INVALID = "SpecInvalid"


class RequestPayload(CamelModel):
    """The annotation's value (JSON), written by opsctl."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    """Chosen by the requester; the answer is recorded under it."""
    revision: Annotated[int, Field(ge=0)]
    """promote/abort: the revision under way; retry: the aborted one; rollback/restart: the running one."""
    generation: Annotated[int, Field(ge=0)]
    """metadata.generation the requester saw."""
    run: str | None = None
    """promote/abort: startedAt of the analysis run the request was made for (None: still rolling out)."""
    to_revision: int | None = None
    """rollback: the revision to run."""
    force: bool = False
    """rollback: run an aborted revision again (with a fresh analysis)."""


def encode(payload: RequestPayload) -> str:
    """The annotation value."""
    return json.dumps(payload.model_dump(by_alias=True, mode="json", exclude_none=True), separators=(",", ":"))


def decode(value: str) -> RequestPayload | str:
    """The payload, or why the value is not one."""
    try:
        return RequestPayload.model_validate_json(value)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in error.errors())
        return f"not a request opsctl writes ({problems})"


@dataclass(frozen=True)
class Moment:
    """What the operator observes when it answers: the state a request is judged against."""

    generation: int
    current: int
    """The revision running (0: none)."""
    stable: int
    under_way: int | None
    """The revision rolling out or under analysis to replace stable (None: none)."""
    run: AnalysisRun | None
    """The latest analysis run."""
    aborted: int | None
    """The spec's revision, when it is aborted."""
    paused: bool
    revisions: frozenset[int]
    answered: frozenset[str]
    """Ids of the requests already answered."""
    failed: Mapping[int, str] = field(default_factory=dict)
    """Revisions that failed (or were rolled back from), with why: `status.failedRevisions`."""


@dataclass(frozen=True)
class Answer:
    action: RequestAction
    annotation: str
    payload: RequestPayload | None
    """None when the value was malformed."""
    accepted: bool
    reason: str
    """`Accepted` or a Refusal."""
    message: str
    forced_retry: bool = False
    """An accepted `rollback --force` to the aborted revision: it runs again analysed, as a retry would."""
    forced_analysis: bool = False
    """An accepted `rollback --force` to an older failed revision: it runs under analysis against stable."""


@dataclass(frozen=True)
class Answers:
    """This reconcile's answers: the new ones (to act on, announce and record) and the stale ones."""

    new: list[Answer]
    repeated: list[str]
    """Annotations of requests answered before (removal failed or raced): removed, not acted on again."""

    def accepted(self, action: RequestAction) -> Answer | None:
        return next((a for a in self.new if a.accepted and a.action is action), None)

    def annotations(self) -> list[str]:
        """Every request annotation seen: all are removed."""
        return [a.annotation for a in self.new] + self.repeated


def _refused(action: RequestAction, payload: RequestPayload | None, why: Refusal, message: str) -> Answer:
    return Answer(action, ANNOTATIONS[action], payload, False, why.value, message)


def _accepted(action: RequestAction, payload: RequestPayload, message: str, forced_retry: bool = False,
              forced_analysis: bool = False) -> Answer:
    return Answer(action, ANNOTATIONS[action], payload, True, ACCEPTED, message, forced_retry, forced_analysis)


def _generation_moved(action: RequestAction, payload: RequestPayload, moment: Moment) -> Answer | None:
    if payload.generation == moment.generation:
        return None
    return _refused(action, payload, Refusal.GENERATION_MOVED,
                    f"the spec changed since the request (generation {payload.generation} → {moment.generation})")


def _judge_decision(action: RequestAction, p: RequestPayload, moment: Moment) -> Answer:
    """promote or abort of the revision under way."""
    if moment.paused:
        return _refused(action, p, Refusal.PAUSED, "changes are held (spec.paused): resume first")
    if moment.under_way is None:
        if moment.aborted == p.revision:
            return _refused(action, p, Refusal.ANALYSIS_CONCLUDED,
                            f"revision {p.revision} was rolled back and is aborted (retry runs it again)")
        return _refused(action, p, Refusal.NOTHING_UNDER_WAY,
                        f"nothing is under way: revision {moment.stable} is stable")
    if moment.under_way != p.revision:
        return _refused(action, p, Refusal.REVISION_CHANGED,
                        f"revision {moment.under_way} is under way now, not {p.revision}")
    run = moment.run if moment.run is not None and moment.run.revision == p.revision else None
    if run is not None and run.phase in (AnalysisPhase.SUCCESSFUL, AnalysisPhase.FAILED):
        return _refused(action, p, Refusal.ANALYSIS_CONCLUDED,
                        f"the analysis of revision {p.revision} already concluded {run.phase.value} "
                        f"({run.message})")
    # A request made before the run started applies to it; one made for a run applies to that run only.
    if p.run is not None and (run.started_at if run else None) != p.run:
        return _refused(action, p, Refusal.RUN_CHANGED,
                        f"the analysis run of revision {p.revision} the request was made for is over"
                        + (f"; another started at {run.started_at}" if run else ""))
    return _accepted(action, p, f"{action.value} of revision {p.revision}")


def _judge_retry(p: RequestPayload, moment: Moment) -> Answer:
    if moment.paused:
        return _refused(RequestAction.RETRY, p, Refusal.PAUSED, "changes are held (spec.paused): resume first")
    if moment.aborted != p.revision:
        now = f"revision {moment.aborted} is" if moment.aborted else "no revision is"
        return _refused(RequestAction.RETRY, p, Refusal.NOT_ABORTED,
                        f"revision {p.revision} is not aborted ({now})")
    return _accepted(RequestAction.RETRY, p, f"retry of revision {p.revision} with a fresh analysis")


def _judge_rollback(p: RequestPayload, moment: Moment) -> Answer:
    action, to = RequestAction.ROLLBACK, p.to_revision
    if to is None or to not in moment.revisions:
        have = ", ".join(str(n) for n in sorted(moment.revisions))
        return _refused(action, p, Refusal.NO_SUCH_REVISION, f"no revision {to} (have {have})")
    if moment.current != p.revision:
        return _refused(action, p, Refusal.REVISION_CHANGED,
                        f"revision {moment.current} runs now, not {p.revision}")
    if to == moment.current:
        return _refused(action, p, Refusal.ALREADY_RUNNING, f"revision {to} is already running")
    if to == moment.aborted or to in moment.failed:
        why = f" ({moment.failed[to]})" if to in moment.failed else ""
        if not p.force:
            return _refused(action, p, Refusal.ABORTED_NEEDS_FORCE,
                            f"revision {to} is marked failed{why}; --force runs it again, with a fresh analysis")
        if moment.paused:
            return _refused(action, p, Refusal.PAUSED, "changes are held (spec.paused): resume first")
        if to == moment.aborted:
            return _accepted(action, p, f"rollback to aborted revision {to} forced: it runs with a fresh analysis",
                             forced_retry=True)
        if not moment.stable:
            return _refused(action, p, Refusal.NO_STABLE,
                            f"revision {to} failed{why} and there is no stable revision to analyse it against "
                            "or return to")
        return _accepted(action, p, f"rollback to failed revision {to} forced: it runs with a fresh analysis, "
                                    f"revision {moment.stable} stays stable until it passes",
                         forced_analysis=True)
    return _accepted(action, p, f"rollback from revision {p.revision} to {to}")


def _judge_restart(p: RequestPayload, moment: Moment) -> Answer:
    action = RequestAction.RESTART
    if moment.current != p.revision or moment.current == 0:
        return _refused(action, p, Refusal.REVISION_CHANGED,
                        f"revision {moment.current or 'none'} runs now, not {p.revision}")
    if moment.under_way == moment.current:
        return _refused(action, p, Refusal.UNDER_ANALYSIS,
                        f"revision {p.revision} is under analysis: a restart would skew it (promote or abort "
                        "first)")
    return _accepted(action, p, f"restart of the pods of revision {p.revision}")


def judge(action: RequestAction, value: str, moment: Moment) -> Answer | None:
    """The answer to one request, or None when it was answered before."""
    payload = decode(value)
    if isinstance(payload, str):
        return _refused(action, None, Refusal.MALFORMED, payload)
    if payload.id in moment.answered:
        return None
    moved = _generation_moved(action, payload, moment)
    if moved is not None:
        return moved
    if action in (RequestAction.PROMOTE, RequestAction.ABORT):
        return _judge_decision(action, payload, moment)
    if action is RequestAction.RETRY:
        return _judge_retry(payload, moment)
    if action is RequestAction.ROLLBACK:
        return _judge_rollback(payload, moment)
    return _judge_restart(payload, moment)


def answer(annotations: dict[str, str], moment: Moment) -> Answers:
    """Answer every request present; of accepted requests that conflict, the first in `ANNOTATIONS` wins
    (a rollback over everything, an abort over a promote), the others are refused as superseded."""
    new: list[Answer] = []
    repeated: list[str] = []
    winner: Answer | None = None
    for action, key in ANNOTATIONS.items():
        if key not in annotations:
            continue
        found = judge(action, annotations[key], moment)
        if found is None:
            repeated.append(key)
            continue
        if found.accepted and winner is not None and _conflicts(winner.action, action):
            found = _refused(action, found.payload, Refusal.SUPERSEDED,
                             f"superseded by the {winner.action.value} request answered with it")
        elif found.accepted and winner is None and action is not RequestAction.RESTART:
            winner = found
        new.append(found)
    return Answers(new, repeated)


def _conflicts(first: RequestAction, then: RequestAction) -> bool:
    """A restart only conflicts with a rollback (its pods are being replaced)."""
    return then is not RequestAction.RESTART or first is RequestAction.ROLLBACK


def records(previous: list[RequestRecord], answers: Answers, now: str) -> list[RequestRecord]:
    """status.requests with this reconcile's answers added (malformed ones have no id to record)."""
    added = [RequestRecord(id=a.payload.id, action=a.action, revision=a.payload.revision,
                           to_revision=a.payload.to_revision, generation=a.payload.generation,
                           outcome=RequestOutcome.ACCEPTED if a.accepted else RequestOutcome.REFUSED,
                           reason=a.reason, message=a.message, time=now)
             for a in answers.new if a.payload is not None]
    return [*previous, *added][-RECORDS_KEPT:]


def describe(answer_: Answer) -> str:
    """One line for the Event and the condition."""
    who = f" (request {answer_.payload.id})" if answer_.payload else ""
    verdict = "accepted" if answer_.accepted else "refused"
    return f"{answer_.action.value.capitalize()}{who} {verdict}: {answer_.message}"


def moment_of(generation: int, status: TradingSymbolStatus, next_number: int, aborted: int | None, paused: bool,
              revisions: list[Revision], failed: Mapping[int, str] | None = None) -> Moment:
    """The moment a reconcile observes: `next_number` is the revision to take over from stable (the spec's,
    a tuning candidate or a failed revision rolled back to by force), `aborted` the spec's revision when it is
    aborted, `failed` the revisions that failed and why."""
    stable = status.stable_revision
    under_way = next_number if stable and next_number not in (stable, aborted) and not paused else None
    return Moment(generation=generation, current=status.current_revision, stable=stable, under_way=under_way,
                  run=status.analysis, aborted=aborted, paused=paused,
                  revisions=frozenset(r.number for r in revisions),
                  answered=frozenset(r.id for r in status.requests), failed=dict(failed or {}))


def respond(result: Plan, answers: Answers) -> None:
    """Remove every request annotation seen (each is answered once); announce refusals and restarts."""
    for key in answers.annotations():
        result.actions.append(RemoveAnnotation(key))
    for found in answers.new:
        if not found.accepted:
            result.event(WARNING, Reason.REQUEST_REFUSED, describe(found))
        elif found.action is RequestAction.RESTART:
            result.event(NORMAL, Reason.RESTARTING, describe(found))


def last_request_condition(answers: Answers) -> tuple[ConditionStatus, Reason, str] | None:
    """The LastRequest condition for this reconcile's answers (None: no new answer, keep the old one)."""
    if not answers.new:
        return None
    refused = [describe(a) for a in answers.new if not a.accepted]
    if refused:
        return ConditionStatus.FALSE, Reason.REQUEST_REFUSED, "; ".join(refused)
    return ConditionStatus.TRUE, Reason.REQUEST_ACCEPTED, "; ".join(describe(a) for a in answers.new)


def refuse_all(annotations: dict[str, str], answered: frozenset[str], why: str) -> Answers:
    """Every request present refused with `SpecInvalid`: while the spec is rejected nothing is acted on, and a
    request never waits for a later spec (it would be answered for a moment it was not made for)."""
    new: list[Answer] = []
    repeated: list[str] = []
    for action, key in ANNOTATIONS.items():
        if key not in annotations:
            continue
        payload = decode(annotations[key])
        if isinstance(payload, RequestPayload) and payload.id in answered:
            repeated.append(key)
            continue
        new.append(_refused(action, payload if isinstance(payload, RequestPayload) else None, Refusal.SPEC_INVALID,
                            f"the spec is rejected ({why}): fix it first"))
    return Answers(new, repeated)
