"""`python -m drills`: backups (create, list, verify, restore, prune) and DR drills (run, list, report).
The same commands are `opsctl backup …` and `opsctl drill …`.

Settings come from flags, then environment variables (secrets only from the environment), then an optional
--config YAML of non-secret settings. See docs/backups-and-drills.md."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import json
import os
import pathlib
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import click
import typer
import yaml

from drills import backups, runner
from drills.config import ENV, Settings
from drills.errors import EXIT_HELP, DrillsError, Exit
from drills.manifest import Kind, summary
from drills.progress import bars
from drills.report import render_markdown
from drills.s3 import S3Store
from drills.scenarios import ScenarioError, parse_params
from policies.recovery import load_recovery_policy

P = ParamSpec("P")
R = TypeVar("R")

CONFIG_KEYS = {"bucket": "bucket", "prefix": "prefix", "endpoint": "endpoint", "region": "region", "sse": "sse",
               "reportDir": "report_dir", "metricsFile": "metrics_file", "pushgateway": "pushgateway",
               "policy": "policy_path", "workdir": "workdir"}


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def _program() -> str:
    """`opsctl` or `drills`: the program the user typed (`python -m X` runs X/__main__.py), for errors."""
    argv0 = pathlib.Path(sys.argv[0])
    return (argv0.parent.name if argv0.name == "__main__.py" else argv0.name) or "drills"


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Expected failures: one line on stderr and their exit code; unexpected ones exit 1 (traceback with
    OPSCTL_DEBUG/DRILLS_DEBUG)."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        program = _program()
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.ClickException):
            raise
        except DrillsError as error:
            print(f"{program}: error: {error.message}", file=sys.stderr)
            raise typer.Exit(int(error.code)) from None
        except ScenarioError as error:
            print(f"{program}: error: {error}", file=sys.stderr)
            raise typer.Exit(int(Exit.USAGE)) from None
        except Exception as error:
            if os.environ.get("OPSCTL_DEBUG") or os.environ.get("DRILLS_DEBUG"):
                traceback.print_exc()
            print(f"{program}: error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
            raise typer.Exit(int(Exit.ERROR)) from None
    return wrapper


def _from_file(settings: Settings, path: pathlib.Path) -> None:
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        raise DrillsError(Exit.USAGE, f"{path}: unknown or secret-bearing keys {unknown} (DSNs, URLs with "
                          f"credentials and keys come from the environment); allowed: {sorted(CONFIG_KEYS)}")
    env_names = {"bucket": "TRADEOPS_BACKUP_BUCKET", "prefix": "TRADEOPS_BACKUP_PREFIX",
                 "endpoint": "TRADEOPS_S3_ENDPOINT", "region": "TRADEOPS_S3_REGION", "sse": "TRADEOPS_S3_SSE",
                 "reportDir": "TRADEOPS_DRILL_REPORT_DIR", "metricsFile": "TRADEOPS_DRILL_METRICS_FILE",
                 "pushgateway": "TRADEOPS_PUSHGATEWAY_URL", "policy": "TRADEOPS_RECOVERY_POLICY",
                 "workdir": "TRADEOPS_DRILL_WORKDIR"}
    for key, value in raw.items():
        if os.environ.get(env_names[key]):
            continue  # the environment wins over the file
        attr = CONFIG_KEYS[key]
        if attr in ("report_dir", "metrics_file", "policy_path", "workdir"):
            value = pathlib.Path(value)
        if attr == "sse" and str(value).lower() == "none":
            value = None
        setattr(settings, attr, value)


@handles_errors
def common(
    ctx: typer.Context,
    config: Annotated[pathlib.Path | None, typer.Option(help="YAML of non-secret settings (bucket, endpoint, …)",
                                                        exists=True, dir_okay=False)] = None,
    bucket: Annotated[str | None, typer.Option(help="S3 bucket [TRADEOPS_BACKUP_BUCKET]")] = None,
    prefix: Annotated[str | None, typer.Option(help="Key prefix [TRADEOPS_BACKUP_PREFIX, tradeops]")] = None,
    endpoint: Annotated[str | None, typer.Option(help="S3 endpoint URL [TRADEOPS_S3_ENDPOINT]")] = None,
    database_url: Annotated[str | None, typer.Option(help="Trading database [DATABASE_URL]")] = None,
    restore_dsn: Annotated[str | None, typer.Option(help="Server to restore into [TRADEOPS_RESTORE_DSN]")] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis [REDIS_URL]")] = None,
    report_dir: Annotated[pathlib.Path | None, typer.Option(help="Drill reports [TRADEOPS_DRILL_REPORT_DIR]")] = None,
    metrics_file: Annotated[pathlib.Path | None, typer.Option(
        help="Prometheus textfile [TRADEOPS_DRILL_METRICS_FILE]")] = None,
    pushgateway: Annotated[str | None, typer.Option(help="Pushgateway URL [TRADEOPS_PUSHGATEWAY_URL]")] = None,
    policy: Annotated[pathlib.Path | None, typer.Option(help="Recovery policy YAML [TRADEOPS_RECOVERY_POLICY]")]
    = None,
) -> None:
    """Settings shared by every command (flags > environment > --config file > defaults)."""
    parent = ctx.parent.obj if ctx.parent is not None else None
    settings = dataclasses.replace(parent) if isinstance(parent, Settings) else Settings.from_env()
    if config is not None:
        _from_file(settings, config)
    given = {"bucket": bucket, "prefix": prefix, "endpoint": endpoint, "database_url": database_url,
             "restore_dsn": restore_dsn, "redis_url": redis_url, "report_dir": report_dir,
             "metrics_file": metrics_file, "pushgateway": pushgateway, "policy_path": policy}
    for attr, value in given.items():
        if value is not None:
            setattr(settings, attr, value)
    ctx.obj = settings


OutputOpt = Annotated[Output | None, typer.Option("--output", "-o", help="table, json or yaml")]


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.obj
    if not isinstance(obj, Settings):
        obj = Settings.from_env()
        ctx.obj = obj
    return obj


def _output(ctx: typer.Context, output: Output | None) -> Output:
    """-o of the command, else a global -o of the program this runs under (opsctl's), else table."""
    if output is not None:
        return output
    root = getattr(ctx.find_root().obj, "output", None)
    return Output(str(root.value if isinstance(root, enum.Enum) else root)) if root else Output.TABLE


def _emit(ctx: typer.Context, output: Output | None, data: Any) -> bool:
    chosen = _output(ctx, output)
    if chosen is Output.TABLE:
        return False
    if chosen is Output.JSON:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False), end="")
    return True


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


backup_app = typer.Typer(help="Backups to S3: create, list, verify, restore, prune. " + EXIT_HELP,
                         no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         rich_markup_mode=None)
backup_app.callback()(common)

drill_app = typer.Typer(help="DR drills: run NAME, list, report. " + EXIT_HELP, no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
drill_app.callback()(common)

app = typer.Typer(help=__doc__ + "\n\n" + EXIT_HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  epilog="Environment: " + "; ".join(f"{name}: {what}" for name, what in ENV.items()) + ".")
app.callback()(common)
app.add_typer(backup_app, name="backup")


@backup_app.command("create")
@handles_errors
def backup_create(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Option(help="postgres (pg_dump), base (for point-in-time recovery) or redis")]
    = Kind.POSTGRES,
    prune: Annotated[bool, typer.Option(help="Apply the retention policy afterwards")] = False,
    output: OutputOpt = None,
) -> None:
    """Take a backup and stream it to S3 (multipart, SHA-256 per object, manifest written last)."""
    settings = _settings(ctx)
    create = {Kind.POSTGRES: backups.create_postgres, Kind.BASE: backups.create_base,
              Kind.REDIS: backups.create_redis}[kind]
    with S3Store(settings.s3()) as store:
        manifest = create(settings, store, bars)
        deleted = 0
        if prune:
            plan = backups.retention_plan(store, load_recovery_policy(settings.policy_path).retention)
            deleted = backups.apply_retention(store, plan)
    if not _emit(ctx, output, {**summary(manifest), "pruned_objects": deleted}):
        print(f"{manifest.id}: {manifest.size} bytes, sha256 {manifest.objects[0].sha256}, "
              f"source time {manifest.source.time.isoformat()}" + (f", pruned {deleted} objects" if prune else ""))


@backup_app.command("list")
@handles_errors
def backup_list(
    ctx: typer.Context,
    kind: Annotated[Kind | None, typer.Option(help="Only this kind")] = None,
    output: OutputOpt = None,
) -> None:
    """Backups in S3, oldest first; incomplete ones (no manifest) are named on stderr."""
    with S3Store(_settings(ctx).s3()) as store:
        manifests, incomplete = backups.list_backups(store, kind)
    rows = [summary(m) for m in manifests]
    if not _emit(ctx, output, {"backups": rows, "incomplete": incomplete}):
        _table([[r["id"], r["kind"], r["sourceTime"], str(r["lsn"] or "-"), str(r["bytes"]), str(r["rows"])]
                for r in rows], ["ID", "KIND", "SOURCE TIME", "LSN", "BYTES", "ROWS"])
    for ident in incomplete:
        print(f"incomplete backup (no manifest): {ident}", file=sys.stderr)


@backup_app.command("verify")
@handles_errors
def backup_verify(
    ctx: typer.Context,
    backup: Annotated[str, typer.Argument(help="Backup id, or latest / latest-postgres|base|redis")] = "latest",
    output: OutputOpt = None,
) -> None:
    """Download every object of a backup and recompute its size and SHA-256 (exit 6 when it differs)."""
    with S3Store(_settings(ctx).s3()) as store:
        manifest = backups.find(store, backup)
        problems = backups.verify(store, manifest, bars)
    if problems:
        raise DrillsError(Exit.CORRUPT, f"backup {manifest.id} failed verification: {'; '.join(problems)}")
    if not _emit(ctx, output, {"id": manifest.id, "verified": True, "objects": len(manifest.objects),
                               "bytes": manifest.size}):
        print(f"{manifest.id}: ok ({len(manifest.objects)} objects, {manifest.size} bytes, SHA-256 match)")


@backup_app.command("restore")
@handles_errors
def backup_restore(
    ctx: typer.Context,
    backup: Annotated[str, typer.Argument(help="Backup id, or latest")] = "latest",
    into: Annotated[str | None, typer.Option(help="New database name (default: restored_<id>)")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="pg_restore parallel jobs")] = 2,
    output: OutputOpt = None,
) -> None:
    """Restore a logical backup into a NEW database on the restore server (verified first; refused when
    corrupted or incomplete)."""
    settings = _settings(ctx)
    with S3Store(settings.s3()) as store:
        manifest = backups.find(store, backup)
        name = into or "restored_" + "".join(c if c.isalnum() else "_" for c in manifest.id.lower())
        started = datetime.datetime.now(datetime.UTC)
        backups.restore_postgres(settings, store, manifest, name, jobs, bars)
    seconds = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
    if not _emit(ctx, output, {"id": manifest.id, "database": name, "seconds": seconds}):
        print(f"{manifest.id}: restored into database {name} in {seconds:.1f}s")


@backup_app.command("prune")
@handles_errors
def backup_prune(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be deleted")] = False,
    output: OutputOpt = None,
) -> None:
    """Apply the retention policy: delete old backups and WAL no kept base backup needs."""
    settings = _settings(ctx)
    with S3Store(settings.s3()) as store:
        plan = backups.retention_plan(store, load_recovery_policy(settings.policy_path).retention)
        deleted = 0 if dry_run else backups.apply_retention(store, plan)
    data = {"deleteBackups": list(plan.delete_backups), "keepBackups": list(plan.keep_backups),
            "deleteWal": len(plan.delete_wal), "deletedObjects": deleted, "dryRun": dry_run}
    if not _emit(ctx, output, data):
        print(f"{'would delete' if dry_run else 'deleted'} {len(plan.delete_backups)} backups and "
              f"{len(plan.delete_wal)} WAL segments; kept {len(plan.keep_backups)} backups")


@handles_errors
def drill_run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Scenario name (see `list`)")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Override a parameter: key=value")]
    = None,
    allow_destructive: Annotated[bool, typer.Option(help="Allow drills that empty or kill something live")] = False,
    scenarios: Annotated[pathlib.Path | None, typer.Option(help="Directory of scenario YAML (default: packaged)")]
    = None,
    output: OutputOpt = None,
) -> None:
    """Run a drill: report (JSON + Markdown) and metrics written; exit 7 when it fails a check or misses
    its RTO/RPO objective."""
    settings = _settings(ctx)
    chosen = runner.scenario(name, scenarios)
    result = runner.run(chosen, settings, parse_params(param or []), allow_destructive, bars)
    json_path, md_path = runner.publish(result, settings)
    if not _emit(ctx, output, result.model_dump(mode="json")):
        print(render_markdown(result), end="")
        print(f"reports: {json_path} {md_path}")
    if not result.success:
        why = result.error or "; ".join(result.objective_misses) or "a check failed"
        print(f"{_program()}: error: drill {name} failed: {why}", file=sys.stderr)
        raise typer.Exit(int(Exit.DRILL_FAILED))


@handles_errors
def drill_list(
    ctx: typer.Context,
    scenarios: Annotated[pathlib.Path | None, typer.Option(help="Directory of scenario YAML")] = None,
    output: OutputOpt = None,
) -> None:
    """The drills that can run here, with their RTO/RPO objectives."""
    policy = load_recovery_policy(_settings(ctx).policy_path)
    rows: list[dict[str, Any]] = []
    for name, scenario in sorted(runner.implemented(scenarios).items()):
        objective = policy.objective(name)
        rows.append({"name": name, "kind": scenario.kind, "destructive": scenario.destructive,
                     "rtoSeconds": objective.rto_seconds if objective else None,
                     "rpoSeconds": objective.rpo_seconds if objective else None,
                     "description": scenario.description})
    if not _emit(ctx, output, rows):
        _table([[r["name"], str(r["rtoSeconds"] or "-"), str(r["rpoSeconds"] or "-"),
                 "yes" if r["destructive"] else "no", r["description"][:70]] for r in rows],
               ["NAME", "RTO", "RPO", "DESTRUCTIVE", "DESCRIPTION"])


@handles_errors
def drill_report(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this drill")] = None,
    output: OutputOpt = None,
) -> None:
    """The latest report of each drill (or of one) from the report directory."""
    results = runner.reports(_settings(ctx).report_dir, name)
    if not results:
        raise DrillsError(Exit.NOT_FOUND, f"no drill reports{' of ' + name if name else ''} in "
                          f"{_settings(ctx).report_dir}")
    latest = {r.drill: r for r in results}
    if _emit(ctx, output, [r.model_dump(mode="json") for r in latest.values()]):
        return
    if name:
        print(render_markdown(latest[name]), end="")
        return
    _table([[r.drill, "passed" if r.success else "FAILED", r.started_at.isoformat(),
             f"{r.rto_seconds:.1f}" if r.rto_seconds is not None else "-",
             f"{r.rpo_seconds:.1f}" if r.rpo_seconds is not None else "-"] for r in latest.values()],
           ["DRILL", "RESULT", "STARTED", "RTO_S", "RPO_S"])


for target in (drill_app, app):
    target.command("run")(drill_run)
    target.command("list")(drill_list)
    target.command("report")(drill_report)
