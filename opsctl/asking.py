"""Ask the operator for something (promote, abort, retry, rollback, restart) and wait for its answer.

A request is an annotation whose value binds it to the revision and the spec generation opsctl saw, under a
fresh id (`trading_operator.user_requests`). The operator answers each request once, in
`status.requests`: accepted, or refused with a reason when it no longer applies. opsctl waits for that answer
(bounded by --timeout), prints it and exits 0 when accepted, 6 when refused, 5 when no answer came in time;
--no-wait only sends it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl import printing
from opsctl.client import patch_symbol, wait_for
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kube import Obj
from opsctl.options import Output, Target
from opsctl.render import symbol_name

if TYPE_CHECKING:  # the API models load only when a request is made (`opsctl get` stays light)
    from trading_operator.user_requests import RequestPayload

ANSWER_SECONDS = 10.0
"""How long a request waits for the operator's answer by default: it answers at once (a watch event), this
leaves room for a loaded cluster."""

NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Send the request and exit without waiting for the "
                                                           "operator's answer")]
AnswerTimeoutOpt = Annotated[float, typer.Option(min=0, help="Seconds to wait for the operator's answer (exit "
                                                             "code 5 when exceeded)")]


@dataclass(frozen=True)
class Request:
    """A request for the operator, bound to what opsctl saw."""

    action: str
    """promote, abort, retry, rollback or restart."""
    payload: RequestPayload

    @property
    def patch(self) -> Obj:
        from trading_operator.api import RequestAction
        from trading_operator.user_requests import ANNOTATIONS, encode

        return {"metadata": {"annotations": {ANNOTATIONS[RequestAction(self.action)]: encode(self.payload)}}}


def new_request(ts: Obj, action: str, revision: int, run: str | None = None,
                to_revision: int | None = None, force: bool = False) -> Request:
    """A request with a fresh id for the generation of `ts`."""
    from trading_operator.user_requests import RequestPayload

    generation = int(ts["metadata"].get("generation") or 1)
    payload = RequestPayload(id=f"{action}-{uuid.uuid4().hex[:12]}", revision=revision,
                             generation=generation, run=run, to_revision=to_revision, force=force)
    return Request(action, payload)


def answer_of(ts: Obj, request_id: str) -> Obj | None:
    """The operator's answer to a request, once recorded."""
    return next((r for r in (ts.get("status") or {}).get("requests") or [] if r.get("id") == request_id), None)


def ask(target: Target, out: Output, name: str, request: Request, wait: bool, timeout: float,
        extra: dict[str, Any] | None = None, show: bool = True) -> Obj | None:
    """Send the request; unless told not to, wait for the answer, print it (unless `show` is False: the caller
    goes on) and fail (exit 6) on a refusal. Returns the answer (None with --no-wait)."""
    patch_symbol(target, name, request.patch)
    payload = request.payload
    result: dict[str, Any] = {"name": name, "namespace": target.namespace, "action": request.action,
                              "revision": payload.revision, "request": payload.id, **(extra or {})}
    what = f"{request.action} of revision {payload.revision}" if payload.to_revision is None else \
        f"rollback from revision {payload.revision} to {payload.to_revision}"
    if not wait:
        if not printing.emit(out, {**result, "outcome": "Pending"}, [symbol_name(name)]):
            printing.say(f"{name}: {what} requested (request {payload.id}; --no-wait: not waiting for the answer)")
        return None
    try:
        ts = wait_for(target, name, lambda state: answer_of(state, payload.id) is not None, timeout,
                      lambda _: None, f"the operator's answer to request {payload.id}")
    except OpsctlError as error:
        if error.code is ExitCode.TIMEOUT:
            raise OpsctlError(ExitCode.TIMEOUT, f"{name}: no answer to the {what} within {timeout:g}s (request "
                                                f"{payload.id}); is the operator running? The request stays until "
                                                "it answers, and is refused then if it no longer applies") from None
        raise
    answer = answer_of(ts, payload.id) or {}
    accepted = answer.get("outcome") == "Accepted"
    result.update(outcome=answer.get("outcome"), reason=answer.get("reason"), message=answer.get("message"))
    if show and not printing.emit(out, result, [symbol_name(name)]) and accepted:
        printing.say(f"{name}: {what} accepted: {answer.get('message')}")
    if not accepted:
        raise OpsctlError(ExitCode.REJECTED, f"{name}: {what} refused by the operator ({answer.get('reason')}): "
                                             f"{answer.get('message')}")
    return answer
