"""opsctl: operate TradingSymbols — status, history, rollback, pause and the kill switch.

SYMBOL is the TradingSymbol's metadata.name (`spy` for the SPY manifest), not the ticker."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from opsctl import (
    audit_cli,
    backtest_cli,
    backup_cli,
    drill_cli,
    policy_cli,
    render,
    report_cli,
    rollout_cli,
    slo_cli,
    top_cli,
    tune_cli,
)
from opsctl.cli_support import (
    NameArg,
    NamespaceOpt,
    Options,
    Output,
    OutputOpt,
    _emit,
    _options,
    _say,
    console,
    handles_errors,
)
from opsctl.client import (
    as_revisions,
    events_of,
    get_symbol,
    list_symbols,
    patch_symbol,
    revision_objects,
    wait_until,
)
from opsctl.errors import EXIT_CODES_HELP, ExitCode, OpsctlError
from trading_operator import naming
from trading_operator.api import GROUP
from trading_operator.revisions import find_by_number, previous_of

HALT_REASON_ANNOTATION = f"{GROUP}/halt-reason"

EPILOG = (
    "Global options (--namespace/-n, --output/-o) go before the command; -n and -o are also accepted after it. "
    "-o json|yaml prints: get → a list of the TradingSymbol objects as the API returns them; describe → "
    "{object, revisions, events}; history → the ControllerRevision objects; other commands → a small result, "
    'e.g. {"name": "spy", "namespace": "default", "action": "rollback", "fromRevision": 2, "toRevision": 1, '
    '"waited": false}. ' + EXIT_CODES_HELP
)

app = typer.Typer(help=__doc__, epilog=EPILOG, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)


@app.callback()
def main(
    ctx: typer.Context,
    namespace: NamespaceOpt = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context (default: the current one)")] = None,
    kubeconfig: Annotated[str | None, typer.Option(
        envvar="KUBECONFIG", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table, json or yaml")] = Output.TABLE,
) -> None:
    ctx.obj = Options(kubeconfig=kubeconfig, context=context, namespace=namespace, output=output)


@app.command()
@handles_errors
def get(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        metavar="SYMBOL", help="One TradingSymbol's metadata.name (default: all)")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="List in every namespace")] = False,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
) -> None:
    """List TradingSymbols: phase, revisions, readiness and switches. -o json/yaml: a list of the objects."""
    options = _options(ctx, namespace, output)
    target = options.target()
    items = [get_symbol(target, name)] if name else list_symbols(target, all_namespaces)
    if _emit(options, items):
        return
    if not items:
        where = "any namespace" if all_namespaces else f'namespace "{target.namespace}"'
        print(f"No TradingSymbols found in {where}.", file=sys.stderr)
        return
    columns = (["NAMESPACE"] if all_namespaces else []) + render.SYMBOL_COLUMNS
    render.print_table(console, columns, [render.symbol_row(ts, with_namespace=all_namespaces) for ts in items])


def _history_rows(objects: list[dict[str, Any]], status: dict[str, Any]) -> list[list[str]]:
    """Table rows of a symbol's ControllerRevisions (describe shows the newest, history all)."""
    created = {int(o.get("revision", 0)): o["metadata"].get("creationTimestamp", "-") for o in objects}
    return render.history_rows(as_revisions(objects), created, status)


@app.command()
@handles_errors
def describe(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Spec summary, status, conditions, last rollback, revisions and recent events of one TradingSymbol."""
    options = _options(ctx, namespace, output)
    target = options.target()
    ts = get_symbol(target, name)
    objects = revision_objects(target, ts)
    events = events_of(target, ts)
    if _emit(options, {"object": ts, "revisions": objects, "events": events}):
        return
    meta, spec, status = ts["metadata"], ts.get("spec") or {}, ts.get("status") or {}
    _say(f"{meta.get('namespace', target.namespace)}/{name}  {spec.get('symbol')} ({spec.get('market')})", "bold")
    _say(f"image {spec.get('image')}  replicas {spec.get('replicas', 1)}  "
         f"trading {'on' if spec.get('tradingEnabled', True) else 'HALTED'}  "
         f"paused {'yes' if spec.get('paused') else 'no'}")
    halt_reason = (meta.get("annotations") or {}).get(HALT_REASON_ANNOTATION)
    if halt_reason and not spec.get("tradingEnabled", True):
        _say(f"halt reason: {halt_reason}")
    _say(f"phase {status.get('phase', 'Pending')}  revision {status.get('currentRevision', '-')}  "
         f"stable {status.get('stableRevision', '-')}  update {status.get('updateRevision', '-')}  "
         f"ready {status.get('readyReplicas', 0)}/{status.get('replicas', 0)}  "
         f"observed generation {status.get('observedGeneration', '-')}/{meta.get('generation', '-')}")
    if status.get("abortedRevision"):
        _say(f"aborted revision {status['abortedRevision']} (not retried until the spec changes)")
    rollback = status.get("lastRollback")
    if rollback:
        _say(f"last rollback {rollback.get('fromRevision')} → {rollback.get('toRevision')} "
             f"at {rollback.get('time')}: {rollback.get('reason')}")
    pending = (meta.get("annotations") or {}).get(naming.ROLLBACK_ANNOTATION)
    if pending:
        _say(f"rollback to {pending} requested, not yet acted on")
    console.print()
    render.print_table(console, render.CONDITION_COLUMNS, render.condition_rows(status), title="Conditions")
    console.print()
    render.print_table(console, render.HISTORY_COLUMNS, _history_rows(objects, status)[-5:], title="Revisions")
    console.print()
    render.print_table(console, render.EVENT_COLUMNS, render.event_rows(events), title="Events")


@app.command()
@handles_errors
def history(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Revisions of a TradingSymbol, what each changed, and which is current, stable, update or aborted."""
    options = _options(ctx, namespace, output)
    target = options.target()
    ts = get_symbol(target, name)
    objects = revision_objects(target, ts)
    if _emit(options, objects):
        return
    render.print_table(console, render.HISTORY_COLUMNS, _history_rows(objects, ts.get("status") or {}))


@app.command()
@handles_errors
def rollback(
    ctx: typer.Context,
    name: NameArg,
    to_revision: Annotated[int | None, typer.Option(
        help="Revision to run (default: previous = the stable revision, or the newest older than current)")]
    = None,
    wait: Annotated[bool, typer.Option(help="Wait until the operator runs it")] = False,
    timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait (exit code 5 when exceeded)")] = 60.0,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
) -> None:
    """Run an earlier revision. The spec in git is not changed: the spec's revision is marked aborted
    until the spec changes."""
    options = _options(ctx, namespace, output)
    target = options.target()
    ts = get_symbol(target, name)
    status = ts.get("status") or {}
    revisions = as_revisions(revision_objects(target, ts))
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
            raise OpsctlError(ExitCode.NOT_FOUND, f"{name} has no revision {to_revision} (revisions: {known})")
    if chosen.number == current:
        raise OpsctlError(ExitCode.REJECTED, f"revision {current} of {name} is already running")
    patch_symbol(target, name, {"metadata": {"annotations": {naming.ROLLBACK_ANNOTATION: str(chosen.number)}}})
    if wait:
        def done() -> bool:
            now = get_symbol(target, name).get("status") or {}
            last = now.get("lastRollback") or {}
            return bool(now.get("currentRevision") == chosen.number and last.get("toRevision") == chosen.number)

        wait_until(done, timeout, f"{name} to run revision {chosen.number}")
    result = {"name": name, "namespace": target.namespace, "action": "rollback",
              "fromRevision": current, "toRevision": chosen.number, "waited": wait}
    if not _emit(options, result):
        _say(f"{name}: rollback from revision {current} to {chosen.number} {'done' if wait else 'requested'}")


def _switch(ctx: typer.Context, name: str, action: str, spec: dict[str, Any], namespace: str | None,
            output: Output | None, annotations: dict[str, str | None] | None = None) -> None:
    """Merge-patch spec switches (and annotations) of a TradingSymbol and report the result."""
    options = _options(ctx, namespace, output)
    target = options.target()
    patch: dict[str, Any] = {"spec": spec}
    if annotations:
        patch["metadata"] = {"annotations": annotations}
    patch_symbol(target, name, patch)
    result: dict[str, Any] = {"name": name, "namespace": target.namespace, "action": action, **spec}
    if annotations and annotations.get(HALT_REASON_ANNOTATION):
        result["reason"] = annotations[HALT_REASON_ANNOTATION]
    if not _emit(options, result):
        _say(f"{name}: {action} ({', '.join(f'{key}={str(value).lower()}' for key, value in spec.items())})")


@app.command()
@handles_errors
def pause(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Hold spec changes (spec.paused=true): the running revision stays."""
    _switch(ctx, name, "pause", {"paused": True}, namespace, output)


@app.command()
@handles_errors
def resume(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Release held spec changes (spec.paused=false)."""
    _switch(ctx, name, "resume", {"paused": False}, namespace, output)


@app.command()
@handles_errors
def halt(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str | None, typer.Option(help=f"Why (kept as annotation {HALT_REASON_ANNOTATION})")] = None,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
) -> None:
    """Kill switch (spec.tradingEnabled=false): pods keep running, no new positions are opened."""
    _switch(ctx, name, "halt", {"tradingEnabled": False}, namespace, output,
            {HALT_REASON_ANNOTATION: reason or "opsctl halt"})


@app.command()
@handles_errors
def unhalt(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Switch trading back on (spec.tradingEnabled=true) and drop the halt reason."""
    _switch(ctx, name, "unhalt", {"tradingEnabled": True}, namespace, output, {HALT_REASON_ANNOTATION: None})


rollout_cli.register(app)
top_cli.register(app)
app.add_typer(tune_cli.app, name="tune")
app.add_typer(policy_cli.app, name="policy")
app.add_typer(slo_cli.app, name="slo")
app.add_typer(backup_cli.app, name="backup")
app.add_typer(drill_cli.app, name="drill")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(report_cli.app, name="report")
app.add_typer(backtest_cli.app, name="backtest")
