"""Rollout verbs: promote, abort or retry the revision under analysis, restart the running one, and show the
analysis run.

Each request is an annotation on the TradingSymbol, bound to the revision and generation opsctl saw, that the
operator answers once (the spec in git is never changed; `opsctl.asking`). Each verb is one pure function that
builds the request (or refuses it) from the object, and the same small I/O around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from opsctl import printing
from opsctl.asking import ANSWER_SECONDS, AnswerTimeoutOpt, NoWaitOpt, Request, ask, new_request
from opsctl.client import get_symbol
from opsctl.completion import NameArg, WatchOpt
from opsctl.errors import ExitCode, OpsctlError
from opsctl.follow import changes, now, redraw
from opsctl.kit import verb
from opsctl.kube import Obj
from opsctl.options import Cluster, Output
from opsctl.render import symbol_name
from opsctl.tables import Column, age, format_table

app = typer.Typer()
ANALYSIS_COLUMNS = [Column("AGE"), Column("METRIC"), Column("PHASE"), Column("VALUE"), Column("STABLE"),
                    Column("MESSAGE", wrap=True)]


def _under_analysis(status: Obj) -> str | None:
    """Why promote/abort make no sense now, or None."""
    if status.get("updateRevision") == status.get("stableRevision") and not (status.get("tuning") or {}).get(
            "candidate"):
        return f"no revision to promote or abort: revision {status.get('stableRevision')} is already stable"
    if status.get("abortedRevision") and status.get("abortedRevision") == status.get("updateRevision"):
        return f"revision {status['abortedRevision']} is aborted: use `opsctl retry`"
    return None


def _refuse(ts: Obj, problem: str | None) -> None:
    if problem:
        raise OpsctlError(ExitCode.REJECTED, f"{ts['metadata']['name']}: {problem}")


def _decision(ts: Obj, action: str) -> Request:
    """promote/abort, bound to the revision under way and, once its analysis runs, to that run."""
    status = ts.get("status") or {}
    _refuse(ts, _under_analysis(status))
    run = status.get("analysis") or {}
    if run.get("phase") in ("Running", "Inconclusive") and run.get("revision") != status.get("stableRevision"):
        return new_request(ts, action, int(run["revision"]), run=run.get("startedAt"))
    return new_request(ts, action, int(status.get("updateRevision") or 0))


def plan_promote(ts: Obj) -> Request:
    """Promote the revision under analysis, unless nothing is under analysis."""
    return _decision(ts, "promote")


def plan_abort(ts: Obj) -> Request:
    """Abort the revision under analysis, unless nothing is under analysis."""
    return _decision(ts, "abort")


def plan_retry(ts: Obj) -> Request:
    """Retry the aborted revision, unless there is none."""
    aborted = (ts.get("status") or {}).get("abortedRevision")
    _refuse(ts, None if aborted else "nothing to retry: no aborted revision")
    return new_request(ts, "retry", int(aborted or 0))


def plan_restart(ts: Obj) -> Request:
    """Restart the pods of the running revision, unless none runs or it is under analysis."""
    status = ts.get("status") or {}
    current = int(status.get("currentRevision") or 0)
    _refuse(ts, None if current else "nothing to restart: no revision runs yet")
    run = status.get("analysis") or {}
    _refuse(ts, f"revision {current} is under analysis: a restart would skew it (promote or abort first)"
            if run.get("phase") == "Running" and run.get("revision") == current else None)
    return new_request(ts, "restart", current)


def _send(cluster: Cluster, out: Output, name: str, plan: Callable[[Obj], Request], wait: bool,
          timeout: float) -> None:
    target = cluster.connect()
    ts = get_symbol(target, name)
    ask(target, out, ts["metadata"]["name"], plan(ts), wait, timeout)


@verb(app)
def promote(cluster: Cluster, out: Output, name: NameArg, no_wait: NoWaitOpt = False,
            timeout: AnswerTimeoutOpt = ANSWER_SECONDS) -> None:
    """Promote the revision under analysis to stable now (ends a running or inconclusive analysis). Waits for the
    operator's answer: refused (exit 6) when the analysis concluded meanwhile or another revision is under way."""
    _send(cluster, out, name, plan_promote, not no_wait, timeout)


@verb(app)
def abort(cluster: Cluster, out: Output, name: NameArg, no_wait: NoWaitOpt = False,
          timeout: AnswerTimeoutOpt = ANSWER_SECONDS) -> None:
    """Abort the revision under analysis: back to stable, the revision marked aborted. Waits for the operator's
    answer (exit 6 when refused)."""
    _send(cluster, out, name, plan_abort, not no_wait, timeout)


@verb(app)
def retry(cluster: Cluster, out: Output, name: NameArg, no_wait: NoWaitOpt = False,
          timeout: AnswerTimeoutOpt = ANSWER_SECONDS) -> None:
    """Roll the aborted revision out again with a fresh analysis. Waits for the operator's answer (exit 6 when
    refused)."""
    _send(cluster, out, name, plan_retry, not no_wait, timeout)


@verb(app)
def restart(cluster: Cluster, out: Output, name: NameArg, no_wait: NoWaitOpt = False,
            timeout: AnswerTimeoutOpt = ANSWER_SECONDS) -> None:
    """Restart the pods of the running revision (a new pod-template stamp, rolled like any change; no new
    revision). Waits for the operator's answer (exit 6 when refused)."""
    _send(cluster, out, name, plan_restart, not no_wait, timeout)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def analysis_text(ts: Obj, width: int | None) -> str:
    """The latest run: how far it is (or its verdict), counts per metric, the measurements with values."""
    from opsctl.progress import analysis_line
    from opsctl.run_plan import run_plan

    run, moment = (ts.get("status") or {}).get("analysis") or {}, now()
    lines = [f"{ts['metadata']['name']}: {analysis_line(run, run_plan(ts), moment)}"]
    baseline = f", against stable revision {run['baselineRevision']}" if run.get("baselineRevision") else ""
    lines.append(f"started {age(run.get('startedAt'), moment)} ago"
                 + (f", finished {age(run['finishedAt'], moment)} ago" if run.get("finishedAt") else "") + baseline)
    lines += [f"{t['metric']}: {t.get('successful', 0)} ok, {t.get('failed', 0)} failed, "
              f"{t.get('inconclusive', 0)} inconclusive, {t.get('errors', 0)} errors" for t in run.get("tallies", [])]
    rows = [[age(m.get("time"), moment), m.get("metric", ""), m.get("phase", ""), _number(m.get("value")),
             _number(m.get("baseline")), m.get("message", "")] for m in run.get("measurements", [])]
    lines.append("Measurements:")
    body = format_table(ANALYSIS_COLUMNS, rows, width - 2 if width else None)
    lines += ["  " + line for line in body] if rows else ["  <none>"]
    return "\n".join(lines)


@verb(app)
def analysis(cluster: Cluster, out: Output, name: NameArg, watch: WatchOpt = False) -> None:
    """Show the latest analysis run and how far it is. Measurement x of n, the latest measurement and about
    how long is left (or the verdict), counts per metric and the measurements with their values. -w redraws
    as it progresses. -o json|yaml: the run as status.analysis holds it."""
    target = cluster.connect()
    ts = get_symbol(target, name)
    name = ts["metadata"]["name"]
    run = (ts.get("status") or {}).get("analysis")
    if run is None and not watch:
        raise OpsctlError(ExitCode.NOT_FOUND, f"{name} has no analysis run yet (a spec change, a tuning "
                                              f"proposal or `opsctl retry` starts one)")
    if printing.emit(out, run, [symbol_name(name)]):
        return
    if not watch:
        printing.say(analysis_text(ts, printing.terminal_width()))
        return

    def view() -> tuple[Any, str]:
        state = get_symbol(target, name)
        if not (state.get("status") or {}).get("analysis"):
            return state["metadata"].get("resourceVersion"), f"{name}: no analysis run yet"
        return state["metadata"].get("resourceVersion"), analysis_text(state, printing.terminal_width())

    redraw(view, changes(target, name))
    printing.note(f"{name}: deleted")
