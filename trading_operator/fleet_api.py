"""The FleetRollout API (v1alpha1): one change rolled out over many TradingSymbols in waves.

A FleetRollout selects TradingSymbols by label, names a change (a runtime image, a runtime-config merge patch)
and a wave plan (`steps`); the operator hands the change to one wave of symbols at a time, through an
operator-owned annotation the TradingSymbol planner honours (`fleet_override`), and starts the next wave only
once every symbol of the previous one has promoted its new revision. These models are the CRD's only schema."""

from __future__ import annotations

import enum
import math
import re
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from trading_operator.api import IMAGE_PATTERN, Condition, RequestOutcome
from trading_operator.identity import GROUP, VERSION
from trading_runtime.config import CamelModel

FLEET_KIND = "FleetRollout"
FLEET_PLURAL = "fleetrollouts"
FLEET_SINGULAR = "fleetrollout"
FLEET_SHORT_NAMES = ("fro",)
FLEET_API_VERSION = f"{GROUP}/{VERSION}"
FLEET_ABORT_ANNOTATION = f"{GROUP}/fleet-abort"
"""On a FleetRollout (set by `opsctl fleet abort`): an `AbortRequest` as JSON — stop and take the change back from
every symbol — answered once in status.requests."""
FLEET_RETRY_ANNOTATION = f"{GROUP}/fleet-retry"
"""On a FleetRollout (set by `opsctl fleet retry`): a `RetryRequest` as JSON, answered once in status.requests."""
REQUESTS_KEPT = 10

STEP_PATTERN = r"^([1-9][0-9]{0,3}|([1-9][0-9]?|100)%)$"
DEFAULT_STEPS = ["1", "25%", "50%", "100%"]


class LabelSelector(CamelModel):
    """Which TradingSymbols of the FleetRollout's namespace the change is for (every label must match)."""

    match_labels: dict[str, str] = {}
    """Labels a TradingSymbol must carry, all of them; empty selects every TradingSymbol of the namespace."""


class FleetChange(CamelModel):
    """What every selected TradingSymbol is to run; fields left out keep each symbol's own spec."""

    image: Annotated[str, Field(pattern=IMAGE_PATTERN, max_length=512)] | None = None
    """The runtime image every symbol is to run (by tag or digest)."""
    config: Annotated[dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})] = {}
    """A JSON merge patch (RFC 7386) over each symbol's `spec.config`, e.g. `{strategy: {entryScore: 0.65}}`;
    the result must be a valid runtime config for every symbol, or the rollout is Invalid and touches none."""

    @model_validator(mode="after")
    def _something_changes(self) -> Self:
        if self.image is None and not self.config:
            raise ValueError("change: name an image, a config patch, or both")
        return self


class FleetRolloutSpec(CamelModel):
    """Desired state: the change, the symbols it is for, and the waves it goes out in."""

    selector: LabelSelector = LabelSelector()
    """The TradingSymbols of this namespace the change is for."""
    change: FleetChange
    """What the selected symbols are to run."""
    steps: Annotated[list[Annotated[str, Field(pattern=STEP_PATTERN)]], Field(min_length=1, max_length=20)] = \
        DEFAULT_STEPS
    """Cumulative wave sizes: a count (`1`: one canary symbol) or a share of the selected symbols (`25%`, rounded
    up). Each step must reach further than the one before; a last step short of every symbol is followed by
    one more wave with the rest."""
    pause_seconds: Annotated[int, Field(ge=0, le=86400)] = 0
    """Seconds to wait after a wave has promoted everywhere before the next wave starts."""
    paused: bool = False
    """Hold the rollout (`opsctl fleet pause`/`resume`): no wave starts while true. Symbols already handed the
    change finish their own rollout and analysis, and a failure still stops the rollout and rolls it back."""

    @model_validator(mode="after")
    def _steps_grow(self) -> Self:
        for before, after in zip(self.steps, self.steps[1:], strict=False):
            same_kind = before.endswith("%") == after.endswith("%")
            if same_kind and int(after.rstrip("%")) <= int(before.rstrip("%")):
                raise ValueError(f"steps: {after!r} does not reach further than {before!r} before it "
                                 "(steps are cumulative)")
        return self


def wave_end(step: str, total: int) -> int:
    """How many symbols (of `total`) have the change once a step's wave is done: `25%` of 12 is 3."""
    match = re.fullmatch(r"([0-9]+)%", step)
    if match:
        return min(total, math.ceil(total * int(match.group(1)) / 100))
    return min(total, int(step))


class FleetPhase(enum.StrEnum):
    """Summary of a FleetRollout."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"
    ABORTED = "Aborted"
    INVALID = "Invalid"


class SymbolState(enum.StrEnum):
    """Where one selected TradingSymbol is in the rollout."""

    PENDING = "Pending"
    """Its wave has not started: it runs its own spec."""
    PROGRESSING = "Progressing"
    """It has the change; its new revision is rolling out or under analysis."""
    SUCCEEDED = "Succeeded"
    """Its new revision was promoted (stable)."""
    FAILED = "Failed"
    """Its new revision was aborted (analysis failed, or its pods never became ready)."""
    ROLLING_BACK = "RollingBack"
    """The change was taken back; waiting for the symbol to run its own spec's revision again."""
    ROLLED_BACK = "RolledBack"
    """Back on its own spec's revision, stable."""
    SKIPPED = "Skipped"
    """Another FleetRollout's change is on it: this one leaves it alone."""
    COMMITTED = "Committed"
    """After Completed: its own spec carries the change (committed to git), so the change's annotation was taken
    off; it runs the same revision."""


class RetryRequest(CamelModel):
    """The value of the retry annotation (written by opsctl), bound to what the requester saw."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    """Chosen by the requester; the answer is recorded under it."""
    generation: Annotated[int, Field(ge=0)]
    """metadata.generation the requester saw: a spec changed since refuses the request."""
    wave: Annotated[int, Field(ge=1)]
    """The failed (or aborted) wave the requester saw: the retry starts again from it."""


class AbortRequest(CamelModel):
    """The value of the abort annotation (written by opsctl), bound to the spec generation the requester saw."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    """Chosen by the requester; the answer is recorded under it."""
    generation: Annotated[int, Field(ge=0)]
    """metadata.generation the requester saw: a spec changed since refuses the request."""
    wave: Annotated[int, Field(ge=0)]
    """The wave the requester saw (recorded with the answer)."""


class FleetRequestRecord(CamelModel):
    """A request answered by the operator."""

    id: str
    action: str
    """retry or abort."""
    generation: int
    wave: int
    outcome: RequestOutcome
    reason: str
    """`Accepted`, or why it was refused (CamelCase)."""
    message: str
    time: str


class FleetSymbol(CamelModel):
    """One selected TradingSymbol's place in the rollout."""

    name: str
    """The TradingSymbol's metadata.name."""
    wave: int
    """Its wave (1 is the canary)."""
    state: SymbolState = SymbolState.PENDING
    """Pending, Progressing, Succeeded, Failed, RollingBack, RolledBack, Skipped or Committed."""
    from_revision: int = 0
    """Its stable revision when the change reached it."""
    to_revision: int = 0
    """The revision the change made."""
    message: str = ""
    """Why it is in this state."""


class FleetRolloutStatus(CamelModel):
    """Observed state of a FleetRollout, written by the operator."""

    observed_generation: int = 0
    """The spec generation last acted on."""
    phase: FleetPhase = FleetPhase.PENDING
    """Pending, Progressing, Paused, Completed, Failed, Aborted or Invalid."""
    conditions: list[Condition] = []
    """Progressing, Completed, RolledBack."""
    change: str = ""
    """Hash of the change being rolled out (a new change starts the waves over)."""
    current_wave: int = 0
    """The wave being rolled out or last rolled out (1-based; 0 before the first)."""
    waves: int = 0
    """How many waves the plan has for the selected symbols."""
    wave_completed_at: str | None = None
    """When the last wave finished promoting (the pause counts from here)."""
    symbols: list[FleetSymbol] = []
    """Every selected symbol, in wave order."""
    message: str = ""
    """What happens now, or why it stopped."""
    requests: list[FleetRequestRecord] = []
    """The latest requests answered (retry), newest last."""
