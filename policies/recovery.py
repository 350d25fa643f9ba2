"""Recovery objectives (RTO/RPO per drill) and the backup retention policy, as a pydantic model loaded from
YAML. The packaged default is `policies/defaults/recovery.yaml`."""

from __future__ import annotations

import pathlib

import yaml
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PATH = pathlib.Path(__file__).parent / "defaults" / "recovery.yaml"


class Objective(BaseModel):
    """What a drill must achieve: recovered within `rto_seconds`, losing at most `rpo_seconds` of data."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rto_seconds: float = Field(gt=0, alias="rtoSeconds", description="Recovery time objective")
    rpo_seconds: float = Field(ge=0, alias="rpoSeconds", description="Recovery point objective")


class Retention(BaseModel):
    """Which backups to keep in S3: the newest `keep_last` of each kind, and every one younger than
    `keep_days`. WAL older than the oldest kept base backup goes with it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    keep_last: int = Field(default=7, ge=1, alias="keepLast")
    keep_days: float = Field(default=14, ge=0, alias="keepDays")


class RecoveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    objectives: dict[str, Objective] = Field(
        default_factory=dict, description="Drill name → its RTO/RPO objective")
    retention: Retention = Field(default_factory=Retention)

    def objective(self, drill: str) -> Objective | None:
        return self.objectives.get(drill)


def load_recovery_policy(path: pathlib.Path | None = None) -> RecoveryPolicy:
    """The policy at `path`, or the packaged default."""
    raw = yaml.safe_load((path or DEFAULT_PATH).read_text()) or {}
    return RecoveryPolicy.model_validate(raw)
