"""Requests a person makes on a FleetRollout (`opsctl fleet retry`, `opsctl fleet abort`) — pure.

Like the TradingSymbol's requests (`user_requests`): the annotation's value binds the request to the moment
the requester saw (the spec generation, and for a retry the failed wave), and the operator answers it once, at the first
reconcile that sees it — accepted when it still applies, refused with a reason when it does not — and
records the answer in `status.requests`, where opsctl waits for it. A request is never kept for later."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydantic import ValidationError

from trading_operator.api import RequestOutcome
from trading_operator.fleet_api import (
    REQUESTS_KEPT,
    AbortRequest,
    FleetPhase,
    FleetRequestRecord,
    FleetRolloutStatus,
    RetryRequest,
    SymbolState,
)

ACCEPTED = "Accepted"
RETRYABLE = {FleetPhase.FAILED, FleetPhase.ABORTED}
STOPPED = {FleetPhase.COMPLETED, FleetPhase.FAILED, FleetPhase.ABORTED, FleetPhase.INVALID}


class FleetRefusal(enum.StrEnum):
    """Why a retry or an abort no longer applies."""

    MALFORMED = "Malformed"
    GENERATION_MOVED = "GenerationMoved"
    NOT_STOPPED = "NotFailed"
    NOT_RUNNING = "NotRunning"
    PAUSED = "Paused"
    WAVE_CHANGED = "WaveChanged"
    ROLLING_BACK = "RollingBack"
    SUPERSEDED = "Superseded"


@dataclass(frozen=True)
class RequestAnswer:
    action: str
    """retry or abort."""
    request: RetryRequest | AbortRequest | None
    """None when the value was malformed (nothing to record it under)."""
    accepted: bool
    reason: str
    """`Accepted` or a FleetRefusal."""
    message: str

    def describe(self) -> str:
        """One line for the Event."""
        who = f" (request {self.request.id})" if self.request else ""
        return f"{self.action.capitalize()}{who} {'accepted' if self.accepted else 'refused'}: {self.message}"


def _refused(action: str, request: RetryRequest | AbortRequest | None, why: FleetRefusal, message: str) \
        -> RequestAnswer:
    return RequestAnswer(action, request, False, why.value, message)


def _malformed(action: str, error: ValidationError) -> RequestAnswer:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in error.errors())
    return _refused(action, None, FleetRefusal.MALFORMED, f"not a request opsctl writes ({problems})")


def judge_abort(value: str, generation: int, status: FleetRolloutStatus) -> RequestAnswer | None:
    """The answer to an abort request against the observed rollout; None when it was answered before. An abort
    made for another spec generation, or reaching a rollout that has already stopped, does nothing."""
    try:
        request = AbortRequest.model_validate_json(value)
    except ValidationError as error:
        return _malformed("abort", error)
    if request.id in {r.id for r in status.requests}:
        return None
    if request.generation != generation:
        return _refused("abort", request, FleetRefusal.GENERATION_MOVED,
                        f"the spec changed since the request (generation {request.generation} → {generation}): "
                        "the rollout it was made for is not the one running")
    if status.phase in STOPPED:
        return _refused("abort", request, FleetRefusal.NOT_RUNNING,
                        f"the rollout is already {status.phase.value}: nothing to abort")
    return RequestAnswer("abort", request, True, ACCEPTED,
                         f"aborted in wave {status.current_wave}: the change is taken back from every symbol it "
                         "reached")


def judge_retry(value: str, generation: int, status: FleetRolloutStatus, paused: bool, aborting: bool) \
        -> RequestAnswer | None:
    """The answer to a retry request against the observed rollout; None when it was answered before."""
    try:
        request = RetryRequest.model_validate_json(value)
    except ValidationError as error:
        return _malformed("retry", error)
    if request.id in {r.id for r in status.requests}:
        return None
    if request.generation != generation:
        return _refused("retry", request, FleetRefusal.GENERATION_MOVED,
                        f"the spec changed since the request (generation {request.generation} → {generation})")
    if aborting:
        return _refused("retry", request, FleetRefusal.SUPERSEDED, "an abort was requested at the same time")
    if status.phase not in RETRYABLE:
        return _refused("retry", request, FleetRefusal.NOT_STOPPED,
                        f"the rollout is {status.phase.value}: only a Failed or Aborted one can be retried")
    if paused:
        return _refused("retry", request, FleetRefusal.PAUSED, "the rollout is paused (spec.paused): resume it first")
    if request.wave != status.current_wave:
        return _refused("retry", request, FleetRefusal.WAVE_CHANGED,
                        f"wave {status.current_wave} stopped the rollout, not wave {request.wave}")
    returning = [s.name for s in status.symbols if s.state is SymbolState.ROLLING_BACK]
    if returning:
        return _refused("retry", request, FleetRefusal.ROLLING_BACK,
                        f"the change is still being taken back from {', '.join(returning[:12])}: retry once every "
                        "symbol runs its own spec again (RolledBack=True)")
    return RequestAnswer("retry", request, True, ACCEPTED,
                       f"wave {request.wave} starts again: the change goes back to the symbols of waves 1–"
                       f"{request.wave}, each analysed afresh")


def record(previous: list[FleetRequestRecord], answer: RequestAnswer, now: str) -> list[FleetRequestRecord]:
    """status.requests with the answer added (a malformed request has no id to record)."""
    if answer.request is None:
        return previous
    added = FleetRequestRecord(id=answer.request.id, action=answer.action, generation=answer.request.generation,
                               wave=answer.request.wave,
                               outcome=RequestOutcome.ACCEPTED if answer.accepted else RequestOutcome.REFUSED,
                               reason=answer.reason, message=answer.message, time=now)
    return [*previous, added][-REQUESTS_KEPT:]
