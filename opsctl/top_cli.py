"""opsctl top: a live view of the fleet, like `kubectl top` — per symbol its phase (from the Kubernetes API),
revision, tick rate, tick-to-signal p95, error ratio, hit rate against the baseline, PnL, drawdown, exposure
and error budget left (from Prometheus), refreshed until Ctrl-C; `--once` prints one table for scripts.

The lines are computed by opsctl/top_view.py; this module only queries and draws. Rich and the Prometheus
client load when the verb runs, not with opsctl."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from opsctl import printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Cluster, Output
from opsctl.tables import Column
from opsctl.top_view import COLUMNS, QUERIES, Key, SymbolLine, cells, lines

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

    from opsctl.prometheus import Prometheus

app = typer.Typer()


@dataclass(frozen=True)
class Snapshot:
    lines: list[SymbolLine]
    notes: list[str]


def _phases(cluster: Cluster) -> tuple[dict[Key, str] | None, str | None]:
    """Phase of every TradingSymbol (of the namespace, if one is given) by (namespace, ticker), or why there
    are none."""
    from opsctl.client import list_symbols

    try:
        items, _ = list_symbols(cluster.connect(), all_namespaces=cluster.namespace is None)
    except OpsctlError as error:
        return None, f"phases unknown: {error.message}"
    return {(ts["metadata"].get("namespace", ""), (ts.get("spec") or {}).get("symbol", "")):
            (ts.get("status") or {}).get("phase") or "Pending" for ts in items}, None


def snapshot(prometheus: Prometheus, cluster: Cluster) -> Snapshot:
    """One reading of every query and of the phases; Prometheus being unreachable raises (exit 4)."""
    results = {name: prometheus.vector(query) for name, query in QUERIES.items()}
    phases, problem = _phases(cluster)
    shown = lines(results, phases)
    if cluster.namespace is not None:
        shown = [line for line in shown if line.namespace == cluster.namespace]
    return Snapshot(shown, [problem] if problem else [])


def _table(view: Snapshot) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(*COLUMNS, box=None, pad_edge=False, header_style="bold")
    for line in view.lines:
        table.add_row(*(Text(cell) for cell in cells(line)))
    return table


def _screen(url: str, interval: float, view: Snapshot | None, problem: str | None) -> Group:
    from rich.console import Group
    from rich.text import Text

    header = Text(f"opsctl top — {url} — {time.strftime('%H:%M:%S')} — every {interval:g}s, Ctrl-C to quit",
                  style="bold")
    parts: list[Text | Table] = [header]
    if problem is not None:
        parts.append(Text(f"{problem}; retrying", style="red"))
    if view is not None:
        parts += [Text(note, style="yellow") for note in view.notes]
        parts.append(_table(view) if view.lines else Text(f"No trading runtimes in Prometheus at {url}."))
    return Group(*parts)


@verb(app)
def top(
    cluster: Cluster,
    out: Output,
    prometheus_url: Annotated[str, typer.Option(envvar="TRADEOPS_PROMETHEUS_URL", help="Prometheus base URL")]
    = "http://127.0.0.1:9090",
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one table and exit (for scripts)")] = False,
) -> None:
    """Live view of every symbol (of -n NAMESPACE; default: all namespaces): phase, revision, tick rate,
    tick-to-signal p95, error ratio, hit rate vs the best baseline, PnL, drawdown, exposure, error budget left. A
    value Prometheus lacks shows as "no data". --once: one table; -o json|yaml (with --once): a list of
    {namespace, symbol, phase, revisions, tickRate...} with null for no data. Exit 3 when --once finds no
    runtime, 4 when Prometheus is unreachable."""
    from opsctl.prometheus import Prometheus

    if not once and not out.format.tabular:
        raise typer.BadParameter("-o json|yaml needs --once", param_hint="--output")
    with Prometheus(prometheus_url, cluster.timeout) as prometheus:
        if once:
            _print_once(prometheus, cluster, out, prometheus_url)
            return
        _live(prometheus, cluster, prometheus_url, interval)


def _print_once(prometheus: Prometheus, cluster: Cluster, out: Output, url: str) -> None:
    view = snapshot(prometheus, cluster)
    if not printing.emit(out, [line.as_dict() for line in view.lines]) and view.lines:
        for note in view.notes:
            printing.note(note)
        printing.table([Column(c) for c in COLUMNS], [cells(line) for line in view.lines])
    if not view.lines:  # nothing to show is not a success, in any output format
        raise OpsctlError(ExitCode.NOT_FOUND, f"no trading runtimes in Prometheus at {url}")


def _live(prometheus: Prometheus, cluster: Cluster, url: str, interval: float) -> None:
    from rich.console import Console
    from rich.live import Live

    screen = Console(highlight=False, emoji=False)
    view: Snapshot | None = None
    with Live(console=screen, auto_refresh=False, screen=False) as live:
        try:
            while True:
                problem = None
                try:
                    view = snapshot(prometheus, cluster)
                except OpsctlError as error:  # keep the last view on screen and say why it is old
                    problem = error.message
                live.update(_screen(url, interval, view, problem), refresh=True)
                time.sleep(interval)
        except KeyboardInterrupt:
            return

