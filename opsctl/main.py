"""opsctl: operate TradingSymbols — status, history, rollback, pause and the kill switch."""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from opsctl import render
from opsctl.client import (
    Target,
    as_revisions,
    connect,
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

app = typer.Typer(help=__doc__, epilog=EXIT_CODES_HELP, no_args_is_help=True, add_completion=False)
# Scripts read the table from a pipe: do not squeeze it to the 80 columns rich assumes there.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

P = ParamSpec("P")
R = TypeVar("R")


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


@dataclass
class Options:
    kubeconfig: str | None
    context: str | None
    namespace: str | None
    output: Output

    def target(self) -> Target:
        return connect(self.kubeconfig, self.context, self.namespace)


@app.callback()
def main(
    ctx: typer.Context,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's)")]
    = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    kubeconfig: Annotated[str | None, typer.Option(envvar="KUBECONFIG", help="kubeconfig file")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="Output format")] = Output.TABLE,
) -> None:
    ctx.obj = Options(kubeconfig=kubeconfig, context=context, namespace=namespace, output=output)


def _fail(code: ExitCode, message: str) -> None:
    print(f"opsctl: error: {message}", file=sys.stderr)
    raise typer.Exit(int(code))


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Expected failures become one line on stderr and their exit code."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except OpsctlError as error:
            _fail(error.code, error.message)
            raise  # unreachable: _fail exits
    return wrapper


def _options(ctx: typer.Context) -> Options:
    options: Options = ctx.obj
    return options


def _emit(options: Options, data: Any) -> bool:
    """Print machine-readable output when asked; True if printed."""
    if options.output is Output.TABLE:
        return False
    print(render.dump(data, options.output.value))
    return True


NameArg = Annotated[str, typer.Argument(help="The TradingSymbol's metadata.name (e.g. spy)")]


@app.command()
@handles_errors
def get(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One TradingSymbol (default: all)")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
) -> None:
    """List TradingSymbols with their phase, revisions, readiness and switches."""
    options = _options(ctx)
    target = options.target()
    items = [get_symbol(target, name)] if name else list_symbols(target, all_namespaces)
    if _emit(options, items):
        return
    columns = (["NAMESPACE"] if all_namespaces else []) + render.SYMBOL_COLUMNS
    render.print_table(console, columns, [render.symbol_row(ts, with_namespace=all_namespaces) for ts in items])


@app.command()
@handles_errors
def describe(ctx: typer.Context, name: NameArg) -> None:
    """Spec, status, conditions, last rollback, revisions and recent events of one TradingSymbol."""
    options = _options(ctx)
    target = options.target()
    ts = get_symbol(target, name)
    objects = revision_objects(target, ts)
    revisions = as_revisions(objects)
    events = events_of(target, name)
    if _emit(options, {"object": ts, "revisions": objects, "events": events}):
        return
    spec, status = ts.get("spec") or {}, ts.get("status") or {}
    console.print(f"[bold]{ts['metadata']['namespace']}/{name}[/]  {spec.get('symbol')} ({spec.get('market')})")
    console.print(f"image {spec.get('image')}  replicas {spec.get('replicas', 1)}  "
                  f"trading {'on' if spec.get('tradingEnabled', True) else 'HALTED'}  "
                  f"paused {'yes' if spec.get('paused') else 'no'}")
    console.print(f"phase {status.get('phase', 'Pending')}  revision {status.get('currentRevision', '-')}  "
                  f"stable {status.get('stableRevision', '-')}  spec revision {status.get('updateRevision', '-')}  "
                  f"ready {status.get('readyReplicas', 0)}/{status.get('replicas', 0)}  "
                  f"observed generation {status.get('observedGeneration', '-')}/{ts['metadata'].get('generation')}")
    if status.get("abortedRevision"):
        console.print(f"aborted revision {status['abortedRevision']} (not retried until the spec changes)")
    rollback = status.get("lastRollback")
    if rollback:
        console.print(f"last rollback {rollback['fromRevision']} → {rollback['toRevision']} at {rollback['time']}: "
                      f"{rollback['reason']}")
    console.print()
    render.print_table(console, ["TYPE", "STATUS", "REASON", "MESSAGE", "SINCE"], render.condition_rows(status),
                       title="Conditions")
    console.print()
    render.print_table(console, render.HISTORY_COLUMNS, render.history_rows(revisions, {}, status)[-5:],
                       title="Revisions")
    console.print()
    render.print_table(console, ["TIME", "TYPE", "REASON", "MESSAGE"], render.event_rows(events), title="Events")


@app.command()
@handles_errors
def history(ctx: typer.Context, name: NameArg) -> None:
    """Revisions of a TradingSymbol, what each changed, and which is current, stable or aborted."""
    options = _options(ctx)
    target = options.target()
    ts = get_symbol(target, name)
    objects = revision_objects(target, ts)
    revisions = as_revisions(objects)
    if _emit(options, objects):
        return
    created = {int(o.get("revision", 0)): o["metadata"].get("creationTimestamp", "-") for o in objects}
    render.print_table(console, render.HISTORY_COLUMNS,
                       render.history_rows(revisions, created, ts.get("status") or {}))


@app.command()
@handles_errors
def rollback(
    ctx: typer.Context,
    name: NameArg,
    to_revision: Annotated[int | None, typer.Option(help="Revision to run (default: the previous stable one)")]
    = None,
    wait: Annotated[bool, typer.Option(help="Wait until the operator runs it")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 60.0,
) -> None:
    """Run an earlier revision. The spec in git is not changed: the spec's revision is marked aborted
    until the spec changes."""
    options = _options(ctx)
    target = options.target()
    ts = get_symbol(target, name)
    status = ts.get("status") or {}
    revisions = as_revisions(revision_objects(target, ts))
    current = int(status.get("currentRevision") or 0)
    if to_revision is None:
        chosen = previous_of(revisions, current, int(status.get("stableRevision") or 0))
        if chosen is None:
            raise OpsctlError(ExitCode.NOT_FOUND, f"{name} has no revision before {current} to roll back to")
    else:
        chosen = find_by_number(revisions, to_revision)
        if chosen is None:
            known = ", ".join(str(r.number) for r in revisions) or "none"
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
        done_text = "running" if wait else "requested"
        console.print(f"{name}: rollback from revision {current} to {chosen.number} {done_text}")


def _switch(ctx: typer.Context, name: str, action: str, spec: dict[str, Any],
            annotations: dict[str, str | None] | None = None) -> None:
    options = _options(ctx)
    target = options.target()
    patch: dict[str, Any] = {"spec": spec}
    if annotations:
        patch["metadata"] = {"annotations": annotations}
    patch_symbol(target, name, patch)
    if not _emit(options, {"name": name, "namespace": target.namespace, "action": action, **spec}):
        console.print(f"{name}: {action}")


@app.command()
@handles_errors
def pause(ctx: typer.Context, name: NameArg) -> None:
    """Hold spec changes: the running revision stays."""
    _switch(ctx, name, "paused", {"paused": True})


@app.command()
@handles_errors
def resume(ctx: typer.Context, name: NameArg) -> None:
    """Release held spec changes."""
    _switch(ctx, name, "resumed", {"paused": False})


@app.command()
@handles_errors
def halt(ctx: typer.Context, name: NameArg,
         reason: Annotated[str | None, typer.Option(help="Why (kept as an annotation)")] = None) -> None:
    """Kill switch: pods keep running, no new positions are opened."""
    _switch(ctx, name, "halted", {"tradingEnabled": False}, {HALT_REASON_ANNOTATION: reason or "opsctl halt"})


@app.command()
@handles_errors
def unhalt(ctx: typer.Context, name: NameArg) -> None:
    """Switch trading back on."""
    _switch(ctx, name, "unhalted", {"tradingEnabled": True}, {HALT_REASON_ANNOTATION: None})
