"""A drill's result and its JSON and Markdown reports (pure rendering)."""

from __future__ import annotations

import datetime
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Check(BaseModel):
    """One thing the drill verified, with what it saw."""

    model_config = ConfigDict(extra="forbid")

    name: str
    ok: bool
    detail: str = ""


class DrillResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drill: str
    kind: str
    started_at: datetime.datetime
    finished_at: datetime.datetime
    success: bool
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    objective_rto_seconds: float | None = None
    objective_rpo_seconds: float | None = None
    backup_id: str | None = None
    checks: list[Check] = Field(default_factory=list)
    objective_misses: list[str] = Field(default_factory=list)
    error: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def report_stem(self) -> str:
        return f"{self.drill}-{self.started_at.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render_markdown(result: DrillResult) -> str:
    """The human report: verdict, figures against objectives, every check, and the facts recorded."""
    verdict = "PASSED" if result.success else "FAILED"
    lines = [
        f"# Drill {result.drill} ({result.kind}): {verdict}",
        "",
        f"- started {result.started_at.isoformat()}, finished {result.finished_at.isoformat()} "
        f"({result.duration_seconds:.1f} s)",
        f"- backup: {result.backup_id or '-'}",
        "",
        "| measure | achieved | objective |",
        "|---|---|---|",
        f"| RTO | {_seconds(result.rto_seconds)} | {_seconds(result.objective_rto_seconds)} |",
        f"| RPO | {_seconds(result.rpo_seconds)} | {_seconds(result.objective_rpo_seconds)} |",
        "",
    ]
    if result.error:
        lines += [f"**Error:** {result.error}", ""]
    if result.objective_misses:
        lines += ["## Objectives missed", "", *(f"- {miss}" for miss in result.objective_misses), ""]
    lines += ["## Checks", "", "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'ok' if c.ok else 'FAILED'} | {c.detail.replace('|', '/')} |" for c in result.checks]
    if result.facts:
        lines += ["", "## Facts", ""]
        lines += [f"- {key}: {value}" for key, value in sorted(result.facts.items())]
    return "\n".join(lines) + "\n"


def render_json(result: DrillResult) -> str:
    data = result.model_dump(mode="json")
    data["duration_seconds"] = result.duration_seconds
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
