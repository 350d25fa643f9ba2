"""opsctl slo: error budgets of the SLOs per symbol, measured in Prometheus.

The report queries the SLIs directly (the same expressions the recording rules use), so it works on a
Prometheus without the generated rules."""

from __future__ import annotations

import pathlib
import re
from typing import Annotated

import typer
from rich.console import Console

from opsctl import render
from opsctl.errors import ExitCode, OpsctlError
from opsctl.prometheus import Prometheus
from opsctl.subapp import FormatOpt, emit, exits_on_error, output_format
from policies.budgets import BudgetRow, Key, rows
from policies.loader import DEFAULTS_DIR, PolicyLoadError, load_dir
from policies.models import SLOPolicySpec
from policies.rules import DEFAULT_SELECTOR, error_ratio_query
from policies.templates import selector

app = typer.Typer(help="Error budgets per symbol and SLO, measured in Prometheus.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)
COLUMNS = ["NAMESPACE", "SYMBOL", "SLO", "OBJECTIVE", "WINDOW", "ERROR RATIO", "BUDGET LEFT", "BURN 1H"]


def _slo_policy(directory: pathlib.Path, name: str) -> SLOPolicySpec:
    try:
        policies = load_dir(directory)
    except (PolicyLoadError, FileNotFoundError) as error:
        raise OpsctlError(ExitCode.REJECTED, f"policies in {directory} do not load: {error}") from None
    if name not in policies.slo:
        raise OpsctlError(ExitCode.NOT_FOUND, f"no SLOPolicy named {name!r} in {directory}")
    return policies.slo[name]


def _by_symbol(prometheus: Prometheus, query: str) -> dict[Key, float]:
    return {(labels.get("namespace", ""), labels.get("symbol", "")): value
            for labels, value in prometheus.vector(query)}


def measure(prometheus: Prometheus, spec: SLOPolicySpec, scope: str, window: str | None) -> list[BudgetRow]:
    """Budget rows of every SLO with an SLI, for every symbol Prometheus has the SLI's series of."""
    out: list[BudgetRow] = []
    for slo in spec.slos:
        if slo.sli is None:
            continue
        over = window or slo.period
        out += rows(slo, over, _by_symbol(prometheus, error_ratio_query(slo.sli, scope, over)),
                    _by_symbol(prometheus, error_ratio_query(slo.sli, scope, "1h")))
    return out


def _cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.2f}%" if percent else f"{value:.2f}"


@app.command()
@exits_on_error
def report(
    ctx: typer.Context,
    prometheus_url: Annotated[str, typer.Option(envvar="TRADEOPS_PROMETHEUS_URL", help="Prometheus base URL")]
    = "http://127.0.0.1:9090",
    symbol: Annotated[str | None, typer.Option(help="Only this symbol, as the metrics label it (SPY)")] = None,
    policies: Annotated[pathlib.Path, typer.Option(help="Policy directory", show_default="the shipped policies")]
    = DEFAULTS_DIR,
    policy: Annotated[str, typer.Option(help="SLOPolicy name")] = "default",
    window: Annotated[str | None, typer.Option(help="Measure over this range (e.g. 7d) instead of each SLO's "
                                                    "period")] = None,
    output: FormatOpt = None,
) -> None:
    """Error budget left per symbol and SLO: objective, error ratio over the SLO period (or --window), budget
    remaining = 1 - ratio / (1 - objective), and the burn rate over the last hour. -o json|yaml: a list of
    {namespace, symbol, slo, objective, window, errorRatio, budgetRemaining, burnRate1h} (null: no events)."""
    if window is not None and not re.fullmatch(r"[0-9]+[smhdwy]", window):
        raise typer.BadParameter(f"not a Prometheus range: {window!r}", param_hint="--window")
    spec = _slo_policy(policies, policy)
    scope = selector({"symbol": symbol}) if symbol else DEFAULT_SELECTOR
    with Prometheus(prometheus_url) as prometheus:
        measured = measure(prometheus, spec, scope, window)
    fmt = output_format(ctx, output)
    if emit([row.as_dict() for row in measured], fmt):
        return
    if not measured:
        print(f"No SLI series{f' for {symbol}' if symbol else ''} in Prometheus at {prometheus_url}.")
        return
    table = [[r.namespace or "-", r.symbol, r.slo, f"{r.objective * 100:g}%", r.window, _cell(r.error_ratio, True),
              _cell(r.budget_remaining, True), _cell(r.burn_rate_1h)] for r in measured]
    render.print_table(Console(highlight=False, emoji=False, width=200), COLUMNS, table)
