"""opsctl report: the reports the business asks for — the production analysis (`performance`), the
compliance evidence (`compliance`) and cost per symbol (`cost`) — as Markdown on stdout, JSON/YAML with -o,
or files with --out DIR (Markdown, HTML, the charts as PNGs, and JSON).

Exit codes as opsctl's: 3 when the window holds nothing to report on, 4 when a source is unreachable; the
compliance report exits 7 when the audit chain does not verify (the report is still written)."""

from __future__ import annotations

import datetime
import pathlib
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from audit.chain import Anchor
from drills.s3 import S3Settings
from opsctl import kit, printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Output
from reports import building
from reports.document import Document, markdown, write
from reports.sources import SourceError
from reports.window import Window, parse_time

HELP = "Reports: the production analysis, compliance evidence, cost per symbol."
app = kit.group(HELP)

FromOpt = Annotated[str, typer.Option("--from", help="Start: ISO time (UTC unless an offset is given), or -30d/-12h")]
ToOpt = Annotated[str, typer.Option("--to", help="End: ISO time, `now`, or -1d")]
OutOpt = Annotated[pathlib.Path | None, typer.Option(
    "--out", help="Write <report>.md, .html, .json and the PNG charts into this directory")]
PrometheusOpt = Annotated[str, typer.Option(envvar="TRADEOPS_PROMETHEUS_URL", help="Prometheus base URL")]
PoliciesOpt = Annotated[pathlib.Path | None, typer.Option(
    help="Policy directory laid over the shipped policies", show_default="the shipped policies")]


def _window(start: str, end: str) -> Window:
    now = datetime.datetime.now(datetime.UTC)
    try:
        return Window.whole_hours(parse_time(start, now), parse_time(end, now))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--from/--to") from None


def _make(build: Callable[[], Document]) -> Document:
    try:
        return build()
    except SourceError as error:
        raise OpsctlError(ExitCode.UNREACHABLE if error.unreachable else ExitCode.ERROR, str(error)) from None
    except building.ReportError as error:
        raise OpsctlError(ExitCode.NOT_FOUND, str(error)) from None


def _deliver(doc: Document, directory: pathlib.Path | None, out: Output) -> None:
    if directory is not None:
        written = write(doc, directory)
        printing.note(f"wrote {len(written)} files to {directory}: " + ", ".join(p.name for p in written))
    if not printing.emit(out, doc.data) and directory is None:
        sys.stdout.write(markdown(doc))


DatabaseOpt = Annotated[str, typer.Option(envvar="TRADEOPS_DATABASE_URL",
                                          help="PostgreSQL conninfo of the runtimes' database")]


@verb(app)
def performance(
    fmt: Output,
    database_url: DatabaseOpt,
    start: FromOpt = "-30d",
    end: ToOpt = "now",
    prometheus_url: PrometheusOpt = "http://127.0.0.1:9090",
    policies: PoliciesOpt = None,
    policy: Annotated[str, typer.Option(help="SLOPolicy name")] = "default",
    resolution: Annotated[int, typer.Option(min=15, help="Seconds per step when finding outages and halts")] = 300,
    out: OutOpt = None,
) -> None:
    """The production analysis per symbol and for the fleet: latency p50/p95/p99 and errors by day,
    availability and error budgets, hit rate against baselines with intervals, signals, orders, fills, PnL,
    drawdown, every rollback, outage, halt and drill, the worst hours, and findings ranked by budget spent."""
    window = _window(start, end)
    try:
        chosen = building.slo_policy(policies, policy)
    except building.ReportError as error:
        raise OpsctlError(ExitCode.REJECTED, str(error)) from None
    doc = _make(lambda: building.performance_report(prometheus_url, database_url, chosen, window, resolution))
    _deliver(doc, out, fmt)


@verb(app)
def compliance(
    fmt: Output,
    database_url: DatabaseOpt,
    start: FromOpt = "-365d",
    end: ToOpt = "now",
    prometheus_url: PrometheusOpt = "http://127.0.0.1:9090",
    anchor: Annotated[list[str] | None, typer.Option(
        help="SEQ:HASH from an earlier `opsctl audit head` or report: must still be in the chain")] = None,
    out: OutOpt = None,
) -> None:
    """Evidence for the annual self-assessment: the audit chain's verification, changes and who made them,
    kill-switch tests and uses, limit breaches and rejected orders, incidents, drill results. Exits 7 when
    the chain does not verify (the report is still produced)."""
    window = _window(start, end)
    try:
        anchors = [Anchor.parse(a) for a in anchor or []]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--anchor") from None
    made: list[bool] = []

    def build() -> Document:
        doc, verified = building.compliance_report(prometheus_url, database_url, window, anchors)
        made.append(verified)
        return doc

    _deliver(_make(build), out, fmt)
    if not made[0]:
        raise OpsctlError(ExitCode.CHECK_FAILED, "the audit chain does not verify: the report says which entries "
                                                 "(`opsctl audit verify` lists them)")


@verb(app)
def cost(
    fmt: Output,
    start: FromOpt = "-30d",
    end: ToOpt = "now",
    prometheus_url: PrometheusOpt = "http://127.0.0.1:9090",
    policies: PoliciesOpt = None,
    policy: Annotated[str, typer.Option(help="CostPolicy name")] = "default",
    bucket: Annotated[str | None, typer.Option(envvar="TRADEOPS_BACKUP_BUCKET",
                                               help="Backups bucket (its size and writes are priced)")] = None,
    prefix: Annotated[str, typer.Option(envvar="TRADEOPS_BACKUP_PREFIX", help="Backups key prefix")] = "tradeops",
    s3_endpoint: Annotated[str | None, typer.Option(envvar="TRADEOPS_S3_ENDPOINT", help="S3 endpoint URL")] = None,
    out: OutOpt = None,
) -> None:
    """Cost per symbol per month (OpenCost method, prices from the CostPolicy), the month's projection, and
    whether each symbol stays within its budget (the seed's < $100/month)."""
    window = _window(start, end)
    try:
        chosen = building.cost_policy(policies, policy)
    except building.ReportError as error:
        raise OpsctlError(ExitCode.REJECTED, str(error)) from None
    s3 = S3Settings(bucket=bucket, prefix=prefix, endpoint=s3_endpoint) if bucket else None
    doc = _make(lambda: building.cost_report(prometheus_url, chosen, window, s3))
    _deliver(doc, out, fmt)
