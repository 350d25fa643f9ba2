"""Rollout commands: promote, abort or retry the revision under analysis, and show its measurements.

Each request is an annotation on the TradingSymbol that the operator acts on and removes (the spec in
git is never changed)."""

from __future__ import annotations

from typing import Any

import typer

from opsctl import render
from opsctl.cli_support import NameArg, NamespaceOpt, OutputOpt, _emit, _options, _say, console, handles_errors
from opsctl.client import get_symbol, patch_symbol
from opsctl.errors import ExitCode, OpsctlError
from trading_operator import naming

ANALYSIS_COLUMNS = ["TIME", "METRIC", "PHASE", "VALUE", "STABLE", "MESSAGE"]


def _request(ctx: typer.Context, name: str, action: str, annotation: str, namespace: str | None,
             output: Any, allowed: Any) -> None:
    options = _options(ctx, namespace, output)
    target = options.target()
    status = get_symbol(target, name).get("status") or {}
    problem = allowed(status)
    if problem:
        raise OpsctlError(ExitCode.REJECTED, f"{name}: {problem}")
    patch_symbol(target, name, {"metadata": {"annotations": {annotation: "true"}}})
    run = status.get("analysis") or {}
    result = {"name": name, "namespace": target.namespace, "action": action,
              "revision": run.get("revision") or status.get("updateRevision")}
    if not _emit(options, result):
        _say(f"{name}: {action} of revision {result['revision']} requested")


def _under_analysis(status: dict[str, Any]) -> str | None:
    """Why promote/abort make no sense now, or None."""
    if status.get("updateRevision") == status.get("stableRevision") and not (status.get("tuning") or {}).get(
            "candidate"):
        return f"no revision to promote or abort: revision {status.get('stableRevision')} is already stable"
    if status.get("abortedRevision") and status.get("abortedRevision") == status.get("updateRevision"):
        return f"revision {status['abortedRevision']} is aborted: use `opsctl retry`"
    return None


def promote(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Promote the revision under analysis to stable now (ends a running or inconclusive analysis)."""
    _request(ctx, name, "promote", naming.PROMOTE_ANNOTATION, namespace, output, _under_analysis)


def abort(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Abort the revision under analysis: back to stable, the revision marked aborted."""
    _request(ctx, name, "abort", naming.ABORT_ANNOTATION, namespace, output, _under_analysis)


def retry(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Roll the aborted revision out again with a fresh analysis."""
    def aborted(status: dict[str, Any]) -> str | None:
        if not status.get("abortedRevision"):
            return "nothing to retry: no aborted revision"
        return None

    _request(ctx, name, "retry", naming.RETRY_ANNOTATION, namespace, output, aborted)


def analysis(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """The latest analysis run: verdict, counts per metric and the measurements with their values."""
    options = _options(ctx, namespace, output)
    status = get_symbol(options.target(), name).get("status") or {}
    run = status.get("analysis")
    if run is None:
        raise OpsctlError(ExitCode.NOT_FOUND, f"{name} has no analysis run yet")
    if _emit(options, run):
        return
    baseline = f" against stable revision {run['baselineRevision']}" if run.get("baselineRevision") else ""
    _say(f"{name}: {run['kind']} analysis of revision {run['revision']}{baseline}: {run['phase']}", "bold")
    _say(f"started {run.get('startedAt')}" + (f", finished {run['finishedAt']}" if run.get("finishedAt") else ""))
    if run.get("message"):
        _say(run["message"])
    counts = ", ".join(f"{t['metric']} {t.get('successful', 0)} ok/{t.get('failed', 0)} failed/"
                       f"{t.get('inconclusive', 0)} inconclusive/{t.get('errors', 0)} errors"
                       for t in run.get("tallies", []))
    if counts:
        _say(counts)
    console.print()
    rows = [[m.get("time", ""), m.get("metric", ""), m.get("phase", ""), _number(m.get("value")),
             _number(m.get("baseline")), m.get("message", "")] for m in run.get("measurements", [])]
    render.print_table(console, ANALYSIS_COLUMNS, rows, title="Measurements")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def register(app: typer.Typer) -> None:
    for command in (promote, abort, retry, analysis):
        app.command()(handles_errors(command))
