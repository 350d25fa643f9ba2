"""The one drill runner: scenario kind → step (the registry), timing, objectives from the recovery
policy, JSON + Markdown reports and metrics. The CLI, the CronJob and the workflow all come through
`run()`."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
from collections.abc import Callable

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

# What each kind needs configured: (is it set?, the variable or flag that sets it).
_BUCKET = (lambda s: bool(s.bucket), "TRADEOPS_BACKUP_BUCKET (--bucket)")
_CLUSTER = (lambda s: bool(s.kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST")),
            "KUBECONFIG (--kubeconfig), or running in a pod")
_PROMETHEUS = (lambda s: bool(s.prometheus_url), "TRADEOPS_PROMETHEUS_URL (--prometheus-url)")
NEEDS: dict[str, tuple[tuple[Callable[[Settings], bool], str], ...]] = {
    "restore-latest": (_BUCKET, (lambda s: bool(s.restore_dsn or s.database_url),
                                 "TRADEOPS_RESTORE_DSN or DATABASE_URL (--database-url)")),
    "point-in-time": (_BUCKET,),
    "redis-loss": (_BUCKET, (lambda s: bool(s.redis_url), "REDIS_URL (--redis-url)")),
    "pod-kill": (_CLUSTER, _PROMETHEUS),
    "prometheus-loss": (_CLUSTER, _PROMETHEUS),
}


def unmet(chosen: Scenario, settings: Settings) -> list[str]:
    """The settings a scenario needs that are not configured here (what to set), in order."""
    return [hint for is_set, hint in NEEDS.get(chosen.kind, ()) if not is_set(settings)]


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
    missing = unmet(chosen, settings)
    if missing:  # a configuration problem, not a failed drill: no report, no metrics
        raise DrillsError(Exit.USAGE, f"drill {chosen.name} cannot run here: set {'; '.join(missing)}")
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
