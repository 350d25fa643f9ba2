"""`opsctl drill run NAME | list | report` (also `python -m drills run | list | report`): DR drills that
restore into a new place or break something on purpose, and measure RTO/RPO against the recovery policy.
Exit code 7 when a drill fails a check or misses its objective; 2, with nothing written, when a setting it
needs is missing. Settings: opsctl.storage."""

from __future__ import annotations

import pathlib
from typing import Annotated, Any

import typer

from drills import runner
from drills.progress import bars
from drills.report import render_markdown
from drills.scenarios import parse_params
from opsctl import kit, printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Output
from opsctl.storage import Drill, Storage
from opsctl.tables import Column
from policies.recovery import load_recovery_policy

HELP = "DR drills: run NAME, list, report."
app = kit.group(HELP, Storage, Drill)
LIST_COLUMNS = [Column("NAME"), Column("RTO"), Column("RPO"), Column("DESTRUCTIVE"), Column("CAN RUN HERE"),
                Column("DESCRIPTION", wrap=True)]
REPORT_COLUMNS = [Column("DRILL"), Column("RESULT"), Column("STARTED"), Column("RTO_S"), Column("RPO_S")]
ScenariosOpt = Annotated[pathlib.Path | None, typer.Option(help="Directory of scenario YAML (default: packaged)")]


def run(
    storage: Storage,
    drill: Drill,
    out: Output,
    name: Annotated[str, typer.Argument(help="Scenario name (see `list`)")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Override a parameter: key=value")]
    = None,
    allow_destructive: Annotated[bool, typer.Option(help="Allow drills that empty or kill something live")] = False,
    scenarios: ScenariosOpt = None,
) -> None:
    """Run a drill: report (JSON + Markdown) and metrics written; exit 7 when it fails a check or misses its
    RTO/RPO objective. A missing setting (bucket, database, cluster) is exit 2 and writes no report."""
    settings = storage.settings(drill)
    chosen = runner.scenario(name, scenarios)
    result = runner.run(chosen, settings, parse_params(param or []), allow_destructive, bars)
    json_path, md_path = runner.publish(result, settings)
    if not printing.emit(out, result.model_dump(mode="json")):
        print(render_markdown(result), end="")
        printing.say(f"reports: {json_path} {md_path}")
    if not result.success:
        why = result.error or "; ".join(result.objective_misses) or "a check failed"
        raise OpsctlError(ExitCode.CHECK_FAILED, f"drill {name} failed: {why} (report: {md_path})")


def list_(storage: Storage, drill: Drill, out: Output, scenarios: ScenariosOpt = None) -> None:
    """The drills, their RTO/RPO objectives, and whether each can run here (what to set when it cannot)."""
    settings = storage.settings(drill)
    policy = load_recovery_policy(settings.policy_path)
    rows: list[dict[str, Any]] = []
    for name, scenario in sorted(runner.implemented(scenarios).items()):
        objective = policy.objective(name)
        missing = runner.unmet(scenario, settings)
        rows.append({"name": name, "kind": scenario.kind, "destructive": scenario.destructive,
                     "rtoSeconds": objective.rto_seconds if objective else None,
                     "rpoSeconds": objective.rpo_seconds if objective else None,
                     "canRun": not missing, "missing": missing, "description": scenario.description})
    if not printing.emit(out, rows):
        printing.table(LIST_COLUMNS, [[r["name"], str(r["rtoSeconds"] or "-"), str(r["rpoSeconds"] or "-"),
                                  "yes" if r["destructive"] else "no",
                                  "yes" if r["canRun"] else "no: set " + "; ".join(r["missing"]),
                                  r["description"]] for r in rows])


def report(
    storage: Storage,
    drill: Drill,
    out: Output,
    name: Annotated[str | None, typer.Argument(help="Only this drill")] = None,
) -> None:
    """The latest report of each drill (or of one) from the report directory."""
    directory = storage.settings(drill).report_dir
    results = runner.reports(directory, name)
    if not results:
        raise OpsctlError(ExitCode.NOT_FOUND, f"no drill reports{' of ' + name if name else ''} in {directory}: "
                                              "run one (`drill run NAME`), or set TRADEOPS_DRILL_REPORT_DIR "
                                              "(--report-dir)")
    latest = {r.drill: r for r in results}
    if printing.emit(out, [r.model_dump(mode="json") for r in latest.values()]):
        return
    if name:
        print(render_markdown(latest[name]), end="")
        return
    printing.table(REPORT_COLUMNS, [[r.drill, "passed" if r.success else "FAILED", r.started_at.isoformat(),
                                f"{r.rto_seconds:.1f}" if r.rto_seconds is not None else "-",
                                f"{r.rpo_seconds:.1f}" if r.rpo_seconds is not None else "-"]
                               for r in latest.values()])


def register(target: typer.Typer) -> None:
    """The drill verbs on a group (`opsctl drill`) or a program (`python -m drills`)."""
    verb(target, "run")(run)
    verb(target, "list")(list_)
    verb(target, "report")(report)


register(app)
