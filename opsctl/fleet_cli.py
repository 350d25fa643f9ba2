"""`opsctl fleet`: FleetRollouts — one change rolled out over many TradingSymbols in waves.

abort and retry are requests the operator answers, bound to the spec generation opsctl saw (a retry also to the
failed wave) and answered once in status.requests: exit 0 accepted, 6 refused, 5 no answer in time. pause and
resume set spec.paused, as `opsctl pause` does for a TradingSymbol and Argo Rollouts' pause does for a Rollout,
in a JSON patch that first tests the generation opsctl saw: a spec changed meanwhile refuses it (exit 6)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

import typer

from audit.identity import stamp
from opsctl import kit, printing
from opsctl.asking import ANSWER_SECONDS, AnswerTimeoutOpt, NoWaitOpt
from opsctl.errors import ExitCode, OpsctlError
from opsctl.follow import now
from opsctl.kit import verb
from opsctl.kube import Obj
from opsctl.options import Cluster, Output, Target
from opsctl.tables import Column, age
from trading_operator.fleet_api import (
    FLEET_ABORT_ANNOTATION,
    FLEET_API_VERSION,
    FLEET_PLURAL,
    FLEET_RETRY_ANNOTATION,
    FLEET_SINGULAR,
    AbortRequest,
    RetryRequest,
)

app = kit.group("FleetRollouts: list, status, pause, resume, abort, retry.")
TERMINAL = {"Completed", "Failed", "Aborted", "Invalid"}
POLL_SECONDS = 0.25
FleetArg = Annotated[str, typer.Argument(metavar="NAME", help="The FleetRollout's name.")]
LIST_COLUMNS = [Column("NAME"), Column("PHASE"), Column("WAVE"), Column("SYMBOLS"), Column("CHANGE", wrap=True),
                Column("AGE")]
SYMBOL_COLUMNS = [Column("WAVE"), Column("NAME"), Column("STATE"), Column("FROM"), Column("TO"),
                  Column("MESSAGE", wrap=True)]
CONDITION_COLUMNS = [Column("TYPE"), Column("STATUS"), Column("REASON"), Column("MESSAGE", wrap=True)]


def _path(namespace: str | None, name: str | None = None) -> str:
    path = f"/apis/{FLEET_API_VERSION}" + (f"/namespaces/{namespace}" if namespace else "") + f"/{FLEET_PLURAL}"
    return path + (f"/{name}" if name else "")


def _what(target: Target, name: str) -> str:
    return f'FleetRollout "{name}" in namespace "{target.namespace}"'


def _get(target: Target, name: str) -> Obj:
    return dict(target.kube.get(_path(target.namespace, name), what=_what(target, name)))


def _change(rollout: Obj) -> str:
    change = (rollout.get("spec") or {}).get("change") or {}
    parts = [f"image {change['image']}"] if change.get("image") else []
    if change.get("config"):
        parts.append(f"config {json.dumps(change['config'], separators=(',', ':'))}")
    return ", ".join(parts) or "-"


def _tally(symbols: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for symbol in symbols:
        counts[symbol.get("state", "Pending")] = counts.get(symbol.get("state", "Pending"), 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "0"


def _name(name: str) -> str:
    return f"{FLEET_SINGULAR}.{FLEET_API_VERSION.split('/')[0]}/{name}"


@verb(app, name="list")
def list_(cluster: Cluster, out: Output) -> None:
    """The FleetRollouts of the namespace: phase, wave, symbols by state, the change."""
    target = cluster.connect()
    listed = target.kube.get(_path(target.namespace),
                             what="the FleetRollout API (is the CRD installed? kubectl apply -f deploy/crds/)")
    items = sorted((dict(i) for i in listed.get("items") or []), key=lambda o: o["metadata"]["name"])
    if printing.emit(out, {"apiVersion": "v1", "kind": "List", "items": items},
                     [_name(i["metadata"]["name"]) for i in items]):
        return
    if not items:
        printing.note(f"No FleetRollouts in namespace {target.namespace}.")
        return
    moment = now()
    rows = []
    for item in items:
        state = item.get("status") or {}
        rows.append([item["metadata"]["name"], state.get("phase", "Pending"),
                     f"{state.get('currentWave', 0)}/{state.get('waves', 0)}", _tally(state.get("symbols") or []),
                     _change(item), age(item["metadata"].get("creationTimestamp"), moment)])
    printing.table(LIST_COLUMNS, rows)


@verb(app)
def status(cluster: Cluster, out: Output, name: FleetArg) -> None:
    """One FleetRollout: its change, waves, conditions and every symbol's state and revisions."""
    target = cluster.connect()
    rollout = _get(target, name)
    state = rollout.get("status") or {}
    if printing.emit(out, rollout, [_name(name)]):
        return
    steps = (rollout.get("spec") or {}).get("steps") or []
    printing.say(f"{name}: {state.get('phase', 'Pending')}, wave {state.get('currentWave', 0)}/"
                 f"{state.get('waves', 0)} (steps {', '.join(steps)})")
    printing.say(f"change: {_change(rollout)}")
    if (rollout.get("spec") or {}).get("paused"):
        printing.say(f"paused: no further wave starts (opsctl fleet resume {name})")
    if state.get("message"):
        printing.say(f"now: {state['message']}")
    if state.get("requests"):
        last = state["requests"][-1]
        printing.say(f"last request: {last.get('action')} of wave {last.get('wave')} {last.get('outcome')} "
                     f"({last.get('reason')}): {last.get('message')}")
    printing.table(CONDITION_COLUMNS, [[c.get("type", ""), c.get("status", ""), c.get("reason", ""),
                                        c.get("message", "")] for c in state.get("conditions") or []],
                   title="Conditions")
    rows = [[str(s.get("wave", "")), s.get("name", ""), s.get("state", "Pending"), str(s.get("fromRevision") or "-"),
             str(s.get("toRevision") or "-"), s.get("message", "")] for s in state.get("symbols") or []]
    printing.table(SYMBOL_COLUMNS, rows, title="Symbols")


def plan_abort(rollout: Obj) -> AbortRequest:
    """An abort bound to the generation opsctl saw; refused (exit 6) when the rollout has already stopped."""
    name, state = rollout["metadata"]["name"], rollout.get("status") or {}
    phase = state.get("phase", "Pending")
    if phase in TERMINAL:
        raise OpsctlError(ExitCode.REJECTED, f"{name}: nothing to abort: the rollout is already {phase}")
    return AbortRequest(id=f"abort-{uuid.uuid4().hex[:12]}", generation=_generation(rollout),
                        wave=int(state.get("currentWave") or 0))


@verb(app)
def abort(cluster: Cluster, out: Output, name: FleetArg, no_wait: NoWaitOpt = False,
          timeout: AnswerTimeoutOpt = ANSWER_SECONDS) -> None:
    """Stop a FleetRollout: no further wave starts and the change is taken back from every symbol it reached.
    Waits for the operator's answer (exit 6 when refused: the spec changed meanwhile, or the rollout stopped)."""
    target = cluster.connect()
    request = plan_abort(_get(target, name))
    _ask(target, out, name, "abort", request, no_wait, timeout,
         f"the operator takes the change back from every symbol it reached (follow with: opsctl fleet status "
         f"{name})")


def _generation(rollout: Obj) -> int:
    return int(rollout["metadata"].get("generation") or 1)


def _switch(cluster: Cluster, out: Output, name: str, action: str, paused: bool) -> None:
    target = cluster.connect()
    rollout = _get(target, name)
    phase = (rollout.get("status") or {}).get("phase", "Pending")
    changed = bool((rollout.get("spec") or {}).get("paused", False)) != paused
    if paused and phase in TERMINAL:  # resuming is always allowed: a stopped rollout must be resumed to retry
        raise OpsctlError(ExitCode.REJECTED, f"{name}: pause refused: the rollout is {phase}, nothing to pause")
    if changed:
        _patch_paused(target, rollout, paused, action)
    if printing.emit(out, {"name": name, "namespace": target.namespace, "action": action, "paused": paused,
                           "changed": changed}, [_name(name)]):
        return
    if not changed:
        printing.say(f"{name} unchanged: {'already paused' if paused else 'not paused'}")
    elif paused:
        printing.say(f"{name}: paused (spec.paused=true): no further wave starts; symbols already handed the "
                     "change finish their rollout, and a failure still rolls back")
    else:
        printing.say(f"{name}: resumed (spec.paused=false)")


def paused_patch(rollout: Obj, paused: bool, stamped: dict[str, str]) -> list[Obj]:
    """The JSON patch of a pause or resume: applied only to the generation opsctl saw (its first operation
    tests it), setting spec.paused and opsctl's stamp without touching other annotations."""
    meta = rollout["metadata"]
    operations: list[Obj] = [{"op": "test", "path": "/metadata/generation", "value": meta.get("generation")},
                             {"op": "add", "path": "/spec/paused", "value": paused}]
    if meta.get("annotations") is None:
        return [*operations, {"op": "add", "path": "/metadata/annotations", "value": stamped}]
    escaped = {key.replace("~", "~0").replace("/", "~1"): value for key, value in stamped.items()}
    return [*operations, *({"op": "add", "path": f"/metadata/annotations/{k}", "value": v}
                           for k, v in escaped.items())]


def _patch_paused(target: Target, rollout: Obj, paused: bool, action: str) -> None:
    name = rollout["metadata"]["name"]
    try:
        target.kube.json_patch(_path(target.namespace, name), paused_patch(rollout, paused, stamp(target.actor)),
                               what=_what(target, name))
    except OpsctlError as error:
        if error.code is not ExitCode.REJECTED:
            raise
        now_generation = _generation(_get(target, name))
        if now_generation == _generation(rollout):
            raise
        raise OpsctlError(ExitCode.REJECTED, f"{name}: {action} refused: the spec changed since opsctl read it "
                                             f"(generation {_generation(rollout)} → {now_generation}); look at "
                                             f"`opsctl fleet status {name}` and ask again") from error


@verb(app)
def pause(cluster: Cluster, out: Output, name: FleetArg) -> None:
    """Hold a FleetRollout (spec.paused=true): no further wave starts until `opsctl fleet resume`."""
    _switch(cluster, out, name, "pause", True)


@verb(app)
def resume(cluster: Cluster, out: Output, name: FleetArg) -> None:
    """Release a paused FleetRollout (spec.paused=false): the waves go on."""
    _switch(cluster, out, name, "resume", False)


def plan_retry(rollout: Obj) -> RetryRequest:
    """A retry of the wave that stopped the rollout, bound to the generation and that wave; refused (exit 6)
    when the rollout is not Failed or Aborted, or is paused."""
    name, state = rollout["metadata"]["name"], rollout.get("status") or {}
    phase = state.get("phase", "Pending")
    if phase not in ("Failed", "Aborted"):
        raise OpsctlError(ExitCode.REJECTED, f"{name}: nothing to retry: the rollout is {phase} (only a Failed or "
                                             "Aborted one can be retried)")
    if (rollout.get("spec") or {}).get("paused"):
        raise OpsctlError(ExitCode.REJECTED, f"{name}: the rollout is paused: `opsctl fleet resume {name}` first")
    returning = [s.get("name", "") for s in state.get("symbols") or [] if s.get("state") == "RollingBack"]
    if returning:
        raise OpsctlError(ExitCode.REJECTED, f"{name}: the change is still being taken back from "
                                             f"{', '.join(returning)}: retry once it is rolled back "
                                             f"(opsctl fleet status {name})")
    return RetryRequest(id=f"retry-{uuid.uuid4().hex[:12]}", generation=_generation(rollout),
                        wave=int(state["currentWave"]))


def _answer(target: Target, name: str, action: str, request_id: str, timeout: float) -> Obj:
    """The operator's answer to a request (polled: it answers within a second of the request)."""
    deadline = time.monotonic() + timeout
    while True:
        state = _get(target, name).get("status") or {}
        found = next((r for r in state.get("requests") or [] if r.get("id") == request_id), None)
        if found is not None:
            return dict(found)
        if time.monotonic() >= deadline:
            raise OpsctlError(ExitCode.TIMEOUT, f"{name}: no answer to the {action} within {timeout:g}s (request "
                                                f"{request_id}); is the operator running? The request stays "
                                                "until it answers, and is refused then if it no longer applies")
        time.sleep(POLL_SECONDS)


def _ask(target: Target, out: Output, name: str, action: str, request: RetryRequest | AbortRequest, no_wait: bool,
         timeout: float, follow: str) -> None:
    """Write the request's annotation; unless told not to, wait for the answer, print it, and fail (exit 6) on a
    refusal."""
    annotation = FLEET_RETRY_ANNOTATION if action == "retry" else FLEET_ABORT_ANNOTATION
    value = json.dumps(request.model_dump(by_alias=True, mode="json"), separators=(",", ":"))
    target.kube.merge_patch(_path(target.namespace, name),
                            {"metadata": {"annotations": {annotation: value, **stamp(target.actor)}}},
                            what=_what(target, name))
    result: dict[str, Any] = {"name": name, "namespace": target.namespace, "action": action, "wave": request.wave,
                              "request": request.id}
    if no_wait:
        if not printing.emit(out, {**result, "outcome": "Pending"}, [_name(name)]):
            printing.say(f"{name}: {action} of wave {request.wave} requested (request {request.id}; --no-wait: not "
                         "waiting for the answer)")
        return
    answer = _answer(target, name, action, request.id, timeout)
    accepted = answer.get("outcome") == "Accepted"
    result.update(outcome=answer.get("outcome"), reason=answer.get("reason"), message=answer.get("message"))
    if not printing.emit(out, result, [_name(name)]) and accepted:
        printing.say(f"{name}: {action} accepted: {answer.get('message')}; {follow}")
    if not accepted:
        raise OpsctlError(ExitCode.REJECTED, f"{name}: {action} refused by the operator ({answer.get('reason')}): "
                                             f"{answer.get('message')}")


@verb(app)
def retry(cluster: Cluster, out: Output, name: FleetArg, no_wait: NoWaitOpt = False,
          timeout: AnswerTimeoutOpt = ANSWER_SECONDS) -> None:
    """Start a Failed or Aborted FleetRollout again from the wave that stopped it: the change goes back to the
    symbols of that wave and the waves before it, each analysed afresh. Waits for the operator's answer (exit 6
    when refused: the spec or the wave changed meanwhile, or the rollout is no longer stopped)."""
    target = cluster.connect()
    request = plan_retry(_get(target, name))
    _ask(target, out, name, "retry", request, no_wait, timeout, f"follow with: opsctl fleet status {name}")
