"""Progress as a person follows it, pure: where a TradingSymbol is (phase, revision, readiness), how far
its analysis run is (measurement x of n, the latest measurement, about how long is left), and every
condition that holds with its message (Progressing, Degraded, Draining with its open positions, ...).

How many measurements a run takes and how far apart comes from the analysis policy (`RunPlan`); the
operator does not record them in status, so the CLI reads the policy as the operator does."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any

from opsctl.render import phase_of
from opsctl.tables import human_duration
from trading_operator.timestamps import parse_time

Obj = dict[str, Any]
QUIET_CONDITIONS = ("Ready", "SpecValid")
"""Conditions that hold in the normal case: not worth a word while waiting."""


@dataclass(frozen=True)
class RunPlan:
    """What the analysis policy (with the symbol's overrides) says a run takes."""

    count: int
    interval_seconds: int
    initial_delay_seconds: int


def judged(run: Obj) -> int:
    """Measurements judged so far for every metric (the slowest metric's count; no data does not count)."""
    tallies = run.get("tallies") or []
    return min((int(t.get("successful", 0)) + int(t.get("failed", 0)) for t in tallies), default=0)


def seconds_left(run: Obj, plan: RunPlan, now: datetime.datetime) -> float:
    """About how long until the run can end: the initial delay left, then one interval per missing
    measurement (a failure within the limit, or a measurement without data, adds more)."""
    missing = max(plan.count - judged(run), 0)
    started = run.get("startedAt")
    delay_left = 0.0
    if started and not run.get("tallies"):
        delay_left = max(plan.initial_delay_seconds - (now - parse_time(str(started))).total_seconds(), 0.0)
    return delay_left + missing * plan.interval_seconds


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    return f"{float(value):.4g}"


def latest_measurement(run: Obj) -> str:
    """`latest tick-to-signal-latency 0.0013 s below 0.05 s (Successful)`, or `no measurement yet`."""
    measurements = run.get("measurements") or []
    if not measurements:
        return "no measurement yet"
    last = measurements[-1]
    detail = last.get("message") or _number(last.get("value"))
    return f"latest {last.get('metric')} {detail} ({last.get('phase')})"


def analysis_line(run: Obj, plan: RunPlan | None, now: datetime.datetime) -> str:
    """One line about an analysis run: its verdict, or how far it is."""
    head = f"{run.get('kind', 'Rollout')} analysis of revision {run.get('revision')}: {run.get('phase', 'Running')}"
    if run.get("phase", "Running") != "Running":
        return head + (f" ({run['message']})" if run.get("message") else "")
    parts = [head]
    if plan is not None:
        parts.append(f"measurement {min(judged(run), plan.count)} of {plan.count}")
    parts.append(latest_measurement(run))
    if plan is not None:
        parts.append(f"about {human_duration(seconds_left(run, plan, now))} left")
    return ", ".join(parts)


def held_conditions(status: Obj) -> list[str]:
    """`Type: message` of every condition that holds, except the ones that hold when all is well."""
    return [f"{c.get('type')}: {c.get('message') or c.get('reason')}" for c in status.get("conditions") or []
            if c.get("status") == "True" and c.get("type") not in QUIET_CONDITIONS]


def symbol_line(ts: Obj, plan: RunPlan | None, now: datetime.datetime) -> str:
    """Where a TradingSymbol is now: `spy: Progressing, revision 3 (stable 2), 1/2 ready; Rollout analysis of
    revision 3: Running, measurement 2 of 5, ...; Draining: 3 open positions, 90s left`."""
    spec, status = ts.get("spec") or {}, ts.get("status") or {}
    parts = [f"{ts['metadata']['name']}: {phase_of(ts)}, revision {status.get('currentRevision') or '-'} "
             f"(stable {status.get('stableRevision') or '-'}), "
             f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)} ready"]
    run = status.get("analysis")
    if run and (run.get("phase") == "Running" or run.get("revision") == status.get("updateRevision")):
        parts.append(analysis_line(run, plan, now))
    parts += held_conditions(status)
    return "; ".join(parts)
