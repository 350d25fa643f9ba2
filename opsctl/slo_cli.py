"""opsctl slo: error budgets of the SLOs per TradingSymbol, measured in Prometheus.

The report queries the SLIs directly (the same expressions the recording rules use), so it works on a
Prometheus without the generated rules."""

from __future__ import annotations

import os
import pathlib
import re
from typing import Annotated

import typer

from opsctl import kit, printing
from opsctl.completion import NAME_HELP, complete_names
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Cluster, Output
from opsctl.prometheus import WHERE, Prometheus
from opsctl.tables import Column
from policies.budgets import BudgetRow, Key, rows
from policies.loader import DEFAULTS_DIR, PolicyLoadError, load_dir
from policies.models import SLOPolicySpec
from policies.rules import DEFAULT_SELECTOR, error_ratio_query
from policies.templates import selector

app = kit.group("Error budgets per TradingSymbol and SLO, measured in Prometheus.")
COLUMNS = [Column("NAMESPACE"), Column("SYMBOL"), Column("SLO"), Column("OBJECTIVE"), Column("WINDOW"),
           Column("ERROR RATIO"), Column("BUDGET LEFT"), Column("BURN 1H")]
DEFAULT_URL = "http://127.0.0.1:9090"


def _slo_policy(directory: pathlib.Path, name: str) -> SLOPolicySpec:
    try:
        policies = load_dir(directory)
    except (PolicyLoadError, FileNotFoundError) as error:
        raise OpsctlError(ExitCode.REJECTED, f"policies in {directory} do not load: {error}") from None
    if name not in policies.slo:
        raise OpsctlError(ExitCode.NOT_FOUND, f"no SLOPolicy named {name!r} in {directory} (have: "
                                              f"{', '.join(sorted(policies.slo)) or 'none'}; --policy names one)")
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


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def budget_cell(remaining: float | None) -> str:
    """Budget left as a person reads it: `62.50%`; once spent, `exhausted (−45%)`, or in budgets once more
    than one is overspent: `exhausted (−39×)`."""
    if remaining is None:
        return "-"
    if remaining > 0:
        return percent(remaining)
    if remaining > -1:
        return f"exhausted (−{abs(remaining) * 100:.0f}%)"
    return f"exhausted (−{abs(remaining):.0f}×)"


def table_rows(measured: list[BudgetRow]) -> list[list[str]]:
    return [[r.namespace or "-", r.symbol, r.slo, f"{r.objective * 100:g}%", r.window, percent(r.error_ratio),
             budget_cell(r.budget_remaining), "-" if r.burn_rate_1h is None else f"{r.burn_rate_1h:.2f}"]
            for r in measured]


@verb(app)
def report(
    cluster: Cluster,
    out: Output,
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="Only this TradingSymbol (default: every symbol Prometheus has); " + NAME_HELP,
        autocompletion=complete_names)] = None,
    prometheus_url: Annotated[str | None, typer.Option(
        help=f"Prometheus base URL [env TRADEOPS_PROMETHEUS_URL, else {DEFAULT_URL}]")] = None,
    policies: Annotated[pathlib.Path, typer.Option(help="Policy directory", show_default="the shipped policies")]
    = DEFAULTS_DIR,
    policy: Annotated[str | None, typer.Option(
        help="SLOPolicy name", show_default="the TradingSymbol's spec.policies.slo, else default")] = None,
    window: Annotated[str | None, typer.Option(help="Measure over this range (e.g. 7d) instead of each SLO's "
                                                    "period")] = None,
) -> None:
    """Error budget left per symbol and SLO: objective, error ratio over the SLO period (or --window), budget
    left = 1 - ratio / (1 - objective) (`exhausted` once spent), and the burn rate over the last hour. NAME is
    looked up in the cluster (its namespace and ticker select the series). -o json|yaml: a list of
    {namespace, symbol, slo, objective, window, errorRatio, budgetRemaining, burnRate1h} (null: no events).
    No series at all is exit code 3."""
    if window is not None and not re.fullmatch(r"[0-9]+[smhdwy]", window):
        raise typer.BadParameter(f"not a Prometheus range: {window!r}", param_hint="--window")
    scope, what = DEFAULT_SELECTOR, ""
    if name is not None:
        from opsctl.client import get_symbol

        target = cluster.connect()
        ts = get_symbol(target, name)
        ticker, namespace = str(ts["spec"]["symbol"]), str(ts["metadata"].get("namespace") or target.namespace)
        scope, what = selector({"namespace": namespace, "symbol": ticker}), f" of {ticker} in namespace {namespace}"
        policy = policy or ((ts.get("spec") or {}).get("policies") or {}).get("slo")
    spec = _slo_policy(policies, policy or "default")
    url = prometheus_url or os.environ.get("TRADEOPS_PROMETHEUS_URL") or DEFAULT_URL
    with Prometheus(url, cluster.timeout) as prometheus:
        measured = measure(prometheus, spec, scope, window)
    if not measured:
        raise OpsctlError(ExitCode.NOT_FOUND, f"no SLI series{what} in Prometheus at {url}: is the runtime "
                                              f"scraped there (`up{{symbol!=\"\"}}`)? If not this Prometheus, {WHERE}")
    if not printing.emit(out, [row.as_dict() for row in measured]):
        printing.table(COLUMNS, table_rows(measured))
