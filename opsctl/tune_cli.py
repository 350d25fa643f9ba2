"""`opsctl tune`: the auto-tuner's state and history, and freezing it."""

from __future__ import annotations

import typer

from opsctl import render
from opsctl.cli_support import NameArg, NamespaceOpt, OutputOpt, _emit, _options, _say, console, handles_errors
from opsctl.client import get_symbol, patch_symbol
from trading_operator import naming

app = typer.Typer(help="The auto-tuner: status, freeze, unfreeze.", no_args_is_help=True, rich_markup_mode=None)
HISTORY_COLUMNS = ["TIME", "PARAMETER", "FROM", "TO", "REVISION", "BASELINE", "OBJECTIVE", "OUTCOME"]


@app.command()
@handles_errors
def status(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Policy, accepted values, the proposal under analysis, budgets and the history of proposals."""
    options = _options(ctx, namespace, output)
    ts = get_symbol(options.target(), name)
    tuning = (ts.get("status") or {}).get("tuning") or {}
    frozen = naming.TUNING_FROZEN_ANNOTATION in (ts["metadata"].get("annotations") or {})
    if _emit(options, {**tuning, "frozen": frozen}):
        return
    if not tuning:
        _say(f"{name}: no tuning (its tuning policy {ts.get('spec', {}).get('policies', {}).get('tuning', 'default')!r}"
             " is disabled or not yet applied)")
        return
    state = "frozen" if frozen else "converged" if tuning.get("converged") else "searching"
    _say(f"{name}: tuning policy {tuning.get('policy')}, {state}", "bold")
    _say(f"accepted values: {tuning.get('overrides') or 'none (the spec values)'}")
    if tuning.get("candidate"):
        _say(f"under analysis: {tuning['candidate']} (baseline objective {tuning.get('baselineObjective')})")
    _say(f"last proposal {tuning.get('lastChangeAt') or '-'}, {len(tuning.get('changeTimes') or [])} in the last hour")
    console.print()
    rows = [[h.get("time", ""), h.get("parameter", ""), f"{h.get('fromValue'):g}", f"{h.get('toValue'):g}",
             str(h.get("revision", "")), _number(h.get("baseline")), _number(h.get("objective")), h.get("outcome", "")]
            for h in tuning.get("history") or []]
    render.print_table(console, HISTORY_COLUMNS, rows, title="Proposals")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _freeze(ctx: typer.Context, name: str, frozen: bool, namespace: str | None, output: OutputOpt) -> None:
    options = _options(ctx, namespace, output)
    target = options.target()
    patch_symbol(target, name, {"metadata": {"annotations": {naming.TUNING_FROZEN_ANNOTATION: "true" if frozen
                                                              else None}}})
    action = "freeze" if frozen else "unfreeze"
    if not _emit(options, {"name": name, "namespace": target.namespace, "action": action}):
        _say(f"{name}: tuning {'frozen: no new proposals (one under analysis finishes)' if frozen else 'unfrozen'}")


@app.command()
@handles_errors
def freeze(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Stop new tuning proposals."""
    _freeze(ctx, name, True, namespace, output)


@app.command()
@handles_errors
def unfreeze(ctx: typer.Context, name: NameArg, namespace: NamespaceOpt = None, output: OutputOpt = None) -> None:
    """Allow tuning proposals again."""
    _freeze(ctx, name, False, namespace, output)
