"""The TradingSymbol verbs: get, describe, history, rollback, and the switches (pause, resume, halt,
unhalt). Each verb reads, calls one pure function that decides (what to show, what to write, or why not),
then writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from opsctl import printing
from opsctl.asking import ANSWER_SECONDS, NoWaitOpt, Request, ask, new_request
from opsctl.client import (
    as_revisions,
    events_of,
    get_symbol,
    list_symbols,
    patch_symbol,
    revision_objects,
    wait_for,
)
from opsctl.completion import NAME_HELP, NameArg, WatchOpt, complete_names
from opsctl.errors import ExitCode, OpsctlError
from opsctl.follow import ProgressLines, Watched, changes, now, redraw, watch_objects, watch_rows
from opsctl.kit import verb
from opsctl.kube import ApiError, Obj
from opsctl.options import Cluster, Format, Output, Target
from opsctl.render import (
    CONDITION_COLUMNS,
    EVENT_COLUMNS,
    HISTORY_COLUMNS,
    HISTORY_WIDE_COLUMNS,
    SYMBOL_COLUMNS,
    SYMBOL_WIDE_COLUMNS,
    as_list,
    condition_rows,
    event_rows,
    history_rows,
    phase_of,
    resource_name,
    symbol_name,
    symbol_row,
)
from opsctl.tables import Column, format_table, natural_widths
from trading_operator import naming
from trading_operator.identity import GROUP
from trading_operator.revisions import Revision, find_by_number, previous_of

HALT_REASON_ANNOTATION = f"{GROUP}/halt-reason"

app = typer.Typer()


# get ---------------------------------------------------------------------------------------------------------


@verb(app)
def get(
    cluster: Cluster,
    out: Output,
    names: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME]...", help="TradingSymbols to show (default: all); " + NAME_HELP,
        autocompletion=complete_names)] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="List in every namespace")] = False,
    selector: Annotated[str | None, typer.Option(
        "--selector", "-l", help="Label selector, e.g. tier=core or 'env in (prod),team!=x'")] = None,
    watch: WatchOpt = False,
    no_headers: Annotated[bool, typer.Option("--no-headers", help="Table without its header line")] = False,
) -> None:
    """List TradingSymbols. Columns: symbol, phase, revision, stable revision, ready pods, trading, age; -o wide
    adds market, update revision, desired pods, paused, the conditions that hold and the image. -o json|yaml:
    the object when one NAME is given, else a List of them."""
    wanted = names or []
    if wanted and (all_namespaces or selector):
        raise OpsctlError(ExitCode.USAGE, "name TradingSymbols, or select them with -A / -l, not both")
    target = cluster.connect()
    version = ""
    if wanted:
        items = [get_symbol(target, name) for name in wanted]
        wanted = [i["metadata"]["name"] for i in items]
    else:
        items, version = list_symbols(target, all_namespaces, selector)
    data = items[0] if len(wanted) == 1 and not watch else as_list(items)
    watched = Watched(target, None if all_namespaces else target.namespace, selector, wanted,
                      version or _newest_version(items))
    if printing.emit(out, data, [resource_name(i) for i in items]):
        if watch:
            watch_objects(watched, out)
        return
    wide = out.format.format is Format.WIDE
    columns = ([Column("NAMESPACE")] if all_namespaces else []) + (SYMBOL_WIDE_COLUMNS if wide else SYMBOL_COLUMNS)

    def row_of(ts: Obj) -> list[str]:
        return symbol_row(ts, now(), wide=wide, with_namespace=all_namespaces)

    rows = [row_of(ts) for ts in items]
    if not rows and not watch:
        where = "any namespace" if all_namespaces else f'namespace "{target.namespace}"'
        printing.note(f"No TradingSymbols found in {where}" + (f" matching {selector}" if selector else "") + ".")
        return
    printing.table(columns, rows, header=not no_headers)
    if watch:
        watch_rows(watched, columns, row_of, natural_widths(columns, rows))


def _newest_version(items: list[Obj]) -> str:
    """Watch named objects from the newest version read (no list gave one)."""
    versions = [str(i["metadata"].get("resourceVersion") or "") for i in items]
    return max(versions, key=lambda v: (len(v), v), default="")


# describe and history ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Described:
    """What `describe` shows: the object, its revisions and its Events."""

    ts: Obj
    revisions: list[Obj]
    events: list[Obj]
    leader: str = "-"
    """Which pod trades: the holder of the symbol's Lease (docs/scaling.md)."""

    def key(self) -> tuple[Any, ...]:
        """Changes when anything shown changed (for redrawing)."""
        return (self.ts["metadata"].get("resourceVersion"), self.leader,
                tuple((e["metadata"].get("uid"), e["metadata"].get("resourceVersion")) for e in self.events))


def _read(target: Target, name: str) -> Described:
    ts = get_symbol(target, name)
    return Described(ts, revision_objects(target, ts), events_of(target, ts), leader_of(target, ts))


def leader_of(target: Target, ts: Obj) -> str:
    """The pod holding the symbol's Lease, since when and after how many handovers; read at display time
    (the Lease changes without the TradingSymbol changing)."""
    name = naming.lease_name(ts["metadata"]["name"])
    try:
        lease = target.kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{target.namespace}/leases/{name}")
    except ApiError as error:
        return {404: "none (no replica has taken the Lease)", 403: "unknown (no access to Leases)"}.get(
            error.status, f"unknown ({error})")
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if not holder:
        return "none (released)"
    return f"{holder} (since {spec.get('acquireTime', '?')}, {spec.get('leaseTransitions', 0)} handovers)"


def describe_text(found: Described, width: int | None) -> str:
    """The describe view: kubectl's `Key: value` lines, then Conditions, Revisions and Events."""
    ts, moment = found.ts, now()
    meta, spec, status = ts["metadata"], ts.get("spec") or {}, ts.get("status") or {}
    annotations = meta.get("annotations") or {}
    lines = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', '')}",
             f"Symbol:       {spec.get('symbol')} ({spec.get('market')})", f"Image:        {spec.get('image')}",
             f"Replicas:     {spec.get('replicas', 1)} desired, {status.get('readyReplicas', 0)} ready",
             f"Leader:       {found.leader}",
             f"Trading:      {'on' if spec.get('tradingEnabled', True) else 'HALTED'}"
             + (f" ({annotations[HALT_REASON_ANNOTATION]})" if not spec.get("tradingEnabled", True)
                and annotations.get(HALT_REASON_ANNOTATION) else ""),
             f"Paused:       {'yes' if spec.get('paused') else 'no'}",
             f"Phase:        {phase_of(ts)}",
             f"Revisions:    current {status.get('currentRevision') or '-'}, stable "
             f"{status.get('stableRevision') or '-'}, update {status.get('updateRevision') or '-'}"
             + (f", aborted {status['abortedRevision']} (not retried until the spec changes or `opsctl retry`)"
                if status.get("abortedRevision") else ""),
             f"Generation:   {meta.get('generation', '-')} (observed {status.get('observedGeneration', '-')})"]
    rollback = status.get("lastRollback")
    if rollback:
        lines.append(f"Last rollback: {rollback.get('fromRevision')} → {rollback.get('toRevision')} at "
                     f"{rollback.get('time')}: {rollback.get('reason')}")
    from trading_operator.user_requests import ANNOTATIONS, decode

    for action, key in ANNOTATIONS.items():
        if key in annotations:
            request = decode(annotations[key])
            what = request if isinstance(request, str) else (
                f"revision {request.to_revision}" if request.to_revision is not None else f"revision {request.revision}"
            ) + f" (request {request.id})"
            lines.append(f"Requested:    {action.value} {what}, not yet answered")
    answered = (status.get("requests") or [])[-1:]
    for last in answered:
        lines.append(f"Last request: {last.get('action')} of revision {last.get('revision')} "
                     f"{str(last.get('outcome', '')).lower()} at {last.get('time')}: {last.get('message')}")
    run = status.get("analysis")
    if run:
        from opsctl.progress import analysis_line
        from opsctl.run_plan import run_plan

        lines.append(f"Analysis:     {analysis_line(run, run_plan(ts), moment)}")
    if meta.get("deletionTimestamp"):
        lines.append(f"Deleting:     since {meta['deletionTimestamp']} (the Draining condition tells how far)")
    sections = [("Conditions", CONDITION_COLUMNS, condition_rows(status, moment)),
                ("Revisions", HISTORY_COLUMNS, _history(found.revisions, status)[-5:]),
                ("Events", EVENT_COLUMNS, event_rows(found.events, moment))]
    for title, columns, rows in sections:
        lines.append(f"{title}:")
        body = format_table(columns, rows, width - 2 if width else None)
        lines += ["  " + line for line in body] if rows else ["  <none>"]
    return "\n".join(lines)


def _history(objects: list[Obj], status: Obj, wide: bool = False) -> list[list[str]]:
    created = {int(o.get("revision", 0)): o["metadata"].get("creationTimestamp") for o in objects}
    return history_rows(as_revisions(objects), created, status, now(), wide)


@verb(app)
def describe(cluster: Cluster, out: Output, name: NameArg, watch: WatchOpt = False) -> None:
    """Show one TradingSymbol in detail. Spec summary, phase, revisions, the analysis run and its progress,
    every condition the operator wrote (Ready, Progressing, Degraded, Draining and any other), recent
    revisions and Events. -o json|yaml: {object, revisions, events}. -w redraws when the object or its Events
    change."""
    target = cluster.connect()
    if not out.format.tabular:
        found = _read(target, name)
        printing.emit(out, {"object": found.ts, "revisions": found.revisions, "events": found.events},
                 [resource_name(found.ts)])
        return
    if not watch:
        printing.say(describe_text(_read(target, name), printing.terminal_width()))
        return
    resolved = get_symbol(target, name)["metadata"]["name"]

    def view() -> tuple[Any, str]:
        found = _read(target, resolved)
        return found.key(), describe_text(found, printing.terminal_width())

    redraw(view, changes(target, resolved))
    printing.note(f"{resolved}: deleted")


@verb(app)
def history(cluster: Cluster, out: Output, name: NameArg) -> None:
    """Show the revisions of a TradingSymbol and what each changed. Marks: current, stable, update, aborted;
    -o wide adds the hash and image. -o json|yaml: a List of the ControllerRevision objects."""
    target = cluster.connect()
    ts = get_symbol(target, name)
    objects = revision_objects(target, ts)
    if printing.emit(out, as_list(objects), [resource_name(o) for o in objects]):
        return
    wide = out.format.format is Format.WIDE
    printing.table(HISTORY_WIDE_COLUMNS if wide else HISTORY_COLUMNS, _history(objects, ts.get("status") or {}, wide))


# rollback ----------------------------------------------------------------------------------------------------


def plan_rollback(ts: Obj, revisions: list[Revision], to_revision: int | None, force: bool = False) -> Request:
    """The request that asks the operator to run an earlier revision, or why not (OpsctlError)."""
    name, status = ts["metadata"]["name"], ts.get("status") or {}
    current = int(status.get("currentRevision") or 0)
    known = ", ".join(str(r.number) for r in revisions) or "none"
    if to_revision is None:
        chosen = previous_of(revisions, current, int(status.get("stableRevision") or 0))
        if chosen is None:
            raise OpsctlError(ExitCode.NOT_FOUND,
                              f"{name} has no revision before {current} to roll back to (revisions: {known})")
    else:
        chosen = find_by_number(revisions, to_revision)
        if chosen is None:
            raise OpsctlError(ExitCode.NOT_FOUND, f"{name} has no revision {to_revision} (revisions: {known}; "
                                                  f"`opsctl history {name}` shows them)")
    if chosen.number == current:
        raise OpsctlError(ExitCode.REJECTED, f"revision {current} of {name} is already running")
    aborted = status.get("abortedRevision") == chosen.number and status.get("updateRevision") == chosen.number
    failed = {f.get("revision"): f.get("reason", "") for f in status.get("failedRevisions") or []}
    if (aborted or chosen.number in failed) and not force:
        why = f" ({failed[chosen.number]})" if failed.get(chosen.number) else ""
        raise OpsctlError(ExitCode.REJECTED, f"revision {chosen.number} of {name} is marked failed{why}: --force "
                                             "runs it again, with a fresh analysis (it does not become stable "
                                             "without one)")
    return new_request(ts, "rollback", current, to_revision=chosen.number,
                       force=force and (aborted or chosen.number in failed))


def rolled_back_to(number: int, analysed: bool = False) -> Callable[[Obj], bool]:
    """Done: `number` runs (rolled back to; or, for a forced rollback to a failed revision, under analysis)."""
    def done(ts: Obj) -> bool:
        status = ts.get("status") or {}
        if analysed:
            return bool(status.get("currentRevision") == number and (status.get("analysis") or {}).get("revision")
                        == number)
        return bool(status.get("currentRevision") == number
                    and (status.get("lastRollback") or {}).get("toRevision") == number)
    return done


@verb(app)
def rollback(
    cluster: Cluster,
    out: Output,
    name: NameArg,
    to_revision: Annotated[int | None, typer.Option(
        help="Revision to run (default: previous = the stable revision, or the newest older than current)")]
    = None,
    force: Annotated[bool, typer.Option(
        help="Allow a revision that failed (the aborted one, or any in status.failedRevisions): it runs again with "
             "a fresh analysis, never straight to stable")] = False,
    wait: Annotated[bool, typer.Option(help="Wait until the operator runs it, showing progress on stderr")] = False,
    no_wait: NoWaitOpt = False,
    timeout: Annotated[float | None, typer.Option(
        min=0, help=f"Seconds to wait for the operator's answer (default {ANSWER_SECONDS:g}) or, with --wait, for "
                    "the revision to run (default 60); exit code 5 when exceeded")] = None,
) -> None:
    """Run an earlier revision. The spec in git is not changed: the spec's revision is marked aborted until the
    spec changes. Waits for the operator's answer: refused (exit 6) when the revision that ran or the spec
    changed meanwhile."""
    if wait and no_wait:
        raise OpsctlError(ExitCode.USAGE, "--wait and --no-wait exclude each other")
    target = cluster.connect()
    ts = get_symbol(target, name)
    name = ts["metadata"]["name"]
    request = plan_rollback(ts, as_revisions(revision_objects(target, ts)), to_revision, force)
    to, started = request.payload.to_revision or 0, time.monotonic()
    seconds = timeout if timeout is not None else (60.0 if wait else ANSWER_SECONDS)
    extra = {"fromRevision": request.payload.revision, "toRevision": to, "waited": wait}
    answer = ask(target, out, name, request, not no_wait, seconds, extra, show=not wait)
    if not wait:
        return
    from opsctl.progress import symbol_line
    from opsctl.run_plan import run_plan

    plan = run_plan(ts)
    left = max(0.0, seconds - (time.monotonic() - started))
    wait_for(target, name, rolled_back_to(to, request.payload.force), left,
             ProgressLines(lambda state: symbol_line(state, plan, now())), f"{name} to run revision {to}")
    result = {"name": name, "namespace": target.namespace, "action": "rollback", "revision": request.payload.revision,
              "request": request.payload.id, "outcome": (answer or {}).get("outcome"), **extra}
    if not printing.emit(out, result, [symbol_name(name)]):
        analysed = " (under analysis)" if request.payload.force else ""
        printing.say(f"{name}: rollback from revision {request.payload.revision} to {to} done{analysed}")


# switches ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    """A spec switch (and annotations) and how a person says it is already so."""

    action: str
    spec: Obj
    annotations: dict[str, str | None]
    already: str


def plan_switch(ts: Obj, switch: Switch) -> Obj | None:
    """The merge patch that sets the switch, or None when the object already says so (nothing to write)."""
    spec, annotations = ts.get("spec") or {}, ts["metadata"].get("annotations") or {}
    defaults = {"paused": False, "tradingEnabled": True}
    if all(spec.get(k, defaults.get(k)) == v for k, v in switch.spec.items()) and \
            all(annotations.get(k) == v for k, v in switch.annotations.items()):
        return None
    patch: Obj = {"spec": switch.spec}
    if switch.annotations:
        patch["metadata"] = {"annotations": switch.annotations}
    return patch


def halt_switch(ts: Obj, reason: str | None) -> Switch:
    """Halt with the reason given; without one, a halted symbol keeps the reason it was halted for."""
    halted = not (ts.get("spec") or {}).get("tradingEnabled", True)
    annotations: dict[str, str | None] = {} if reason is None and halted else \
        {HALT_REASON_ANNOTATION: reason or "opsctl halt"}
    return Switch("halt", {"tradingEnabled": False}, annotations, "already halted")


def _switch(cluster: Cluster, out: Output, name: str, switch_for: Callable[[Obj], Switch]) -> None:
    target = cluster.connect()
    ts = get_symbol(target, name)
    name, switch = ts["metadata"]["name"], switch_for(ts)
    patch = plan_switch(ts, switch)
    if patch is not None:
        patch_symbol(target, name, patch)
    result: Obj = {"name": name, "namespace": target.namespace, "action": switch.action, **switch.spec,
                   "changed": patch is not None}
    if switch.annotations.get(HALT_REASON_ANNOTATION):
        result["reason"] = switch.annotations[HALT_REASON_ANNOTATION]
    if printing.emit(out, result, [symbol_name(name)]):
        return
    settings = ", ".join(f"{key}={str(value).lower()}" for key, value in switch.spec.items())
    printing.say(f"{name}: {switch.action} ({settings})" if patch is not None else
                 f"{name} unchanged: {switch.already}")


@verb(app)
def pause(cluster: Cluster, out: Output, name: NameArg) -> None:
    """Hold spec changes (spec.paused=true): the running revision stays."""
    _switch(cluster, out, name, lambda _: Switch("pause", {"paused": True}, {}, "already paused"))


@verb(app)
def resume(cluster: Cluster, out: Output, name: NameArg) -> None:
    """Release held spec changes (spec.paused=false)."""
    _switch(cluster, out, name, lambda _: Switch("resume", {"paused": False}, {}, "not paused"))


@verb(app)
def halt(
    cluster: Cluster,
    out: Output,
    name: NameArg,
    reason: Annotated[str | None, typer.Option(help=f"Why (kept as annotation {HALT_REASON_ANNOTATION})")] = None,
) -> None:
    """Kill switch (spec.tradingEnabled=false): pods keep running, no new positions are opened."""
    _switch(cluster, out, name, lambda ts: halt_switch(ts, reason))


@verb(app)
def unhalt(cluster: Cluster, out: Output, name: NameArg) -> None:
    """Switch trading back on (spec.tradingEnabled=true) and drop the halt reason."""
    _switch(cluster, out, name, lambda _: Switch("unhalt", {"tradingEnabled": True}, {HALT_REASON_ANNOTATION: None},
                                                 "trading is on"))
