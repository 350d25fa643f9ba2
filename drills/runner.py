"""The one drill runner: scenario kind → step (the registry), timing, objectives from the recovery
policy, JSON + Markdown reports and metrics. The CLI, the CronJob and the workflow all come through
`run()`."""

from __future__ import annotations

import datetime
import json
import pathlib

from drills.config import Settings
from drills.context import DrillContext, Outcome, Step
from drills.drill_cluster import pod_kill, prometheus_loss
from drills.drill_postgres import point_in_time, restore_latest
from drills.drill_redis import redis_loss
from drills.errors import DrillsError, Exit
from drills.metrics import export
from drills.objectives import misses
from drills.progress import Transfers, silent
from drills.report import DrillResult, render_json, render_markdown
from drills.s3 import S3Store
from drills.scenarios import Scenario, load_scenarios
from policies.recovery import load_recovery_policy

REGISTRY: dict[str, Step] = {
    "restore-latest": restore_latest,
    "point-in-time": point_in_time,
    "redis-loss": redis_loss,
    "pod-kill": pod_kill,
    "prometheus-loss": prometheus_loss,
}
CLUSTER_KINDS = {"pod-kill", "prometheus-loss"}


def implemented(directory: pathlib.Path | None = None) -> dict[str, Scenario]:
    """The scenarios whose kind has a step: what `drills list` offers."""
    return {name: s for name, s in load_scenarios(directory).items() if s.kind in REGISTRY}


def scenario(name: str, directory: pathlib.Path | None = None) -> Scenario:
    known = implemented(directory)
    if name not in known:
        raise DrillsError(Exit.NOT_FOUND, f"no drill {name!r} (available: {', '.join(sorted(known)) or 'none'})")
    return known[name]


def run(chosen: Scenario, settings: Settings, overrides: dict[str, object] | None = None,
        allow_destructive: bool = False, progress: Transfers = silent) -> DrillResult:
    """Run a scenario; failures of the drill itself are recorded in the result, never raised."""
    if chosen.destructive and not allow_destructive:
        raise DrillsError(Exit.USAGE, f"drill {chosen.name} is destructive (it empties or kills something live): "
                          "pass --allow-destructive to run it against this environment")
    objective = load_recovery_policy(settings.policy_path).objective(chosen.name)
    started = datetime.datetime.now(datetime.UTC)
    error = None
    params = {**chosen.params, **(overrides or {})}
    try:
        if chosen.kind in CLUSTER_KINDS:  # these touch the cluster and Prometheus, not the backups
            outcome = REGISTRY[chosen.kind](DrillContext(settings, None, params, started, progress))
        else:
            with S3Store(settings.s3()) as store:
                outcome = REGISTRY[chosen.kind](DrillContext(settings, store, params, started, progress))
    except DrillsError as failure:
        outcome, error = Outcome(), failure.message
    except Exception as failure:  # the report must still be written: an unexpected failure is a failed drill
        outcome, error = Outcome(), f"unexpected {type(failure).__name__}: {failure}"
    missed = misses(objective, outcome.rto_seconds, outcome.rpo_seconds)
    return DrillResult(
        drill=chosen.name, kind=chosen.kind, started_at=started, finished_at=datetime.datetime.now(datetime.UTC),
        success=error is None and bool(outcome.checks) and all(c.ok for c in outcome.checks) and not missed,
        rto_seconds=outcome.rto_seconds, rpo_seconds=outcome.rpo_seconds,
        objective_rto_seconds=objective.rto_seconds if objective else None,
        objective_rpo_seconds=objective.rpo_seconds if objective else None,
        backup_id=outcome.backup_id, checks=outcome.checks, objective_misses=missed, error=error,
        facts=outcome.facts)


def publish(result: DrillResult, settings: Settings) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the JSON and Markdown reports (and the drill's metrics); returns the report paths."""
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    stem = settings.report_dir / result.report_stem()
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(render_json(result))
    md_path.write_text(render_markdown(result))
    export(result, settings.metrics_file, settings.pushgateway)
    return json_path, md_path


def reports(directory: pathlib.Path, name: str | None = None) -> list[DrillResult]:
    """The JSON reports in `directory` (of one drill, when named), oldest first."""
    found = []
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text())
        raw.pop("duration_seconds", None)  # derived, written for readers of the file
        result = DrillResult.model_validate(raw)
        if name is None or result.drill == name:
            found.append(result)
    return sorted(found, key=lambda r: r.started_at)
