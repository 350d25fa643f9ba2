"""The reconcile planner: `plan(observed) -> Plan`, a pure function of desired and observed state.

It decides which revision runs (the spec's, a held one while paused, a rolled-back one), which
children to create or correct, which revisions to prune, which Events to emit and the new status.
The executor carries the plan out; nothing here talks to the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trading_operator import naming
from trading_operator.api import (
    ConditionStatus,
    Phase,
    RollbackRecord,
    TradingSymbolSpec,
    TradingSymbolStatus,
)
from trading_operator.builders import DESIRED_HASH_ANNOTATION, Manifest, Owner, build_children, build_revision
from trading_operator.conditions import ConditionType, Reason, get_condition, set_condition
from trading_operator.diffing import changed_fields, differences, is_subset
from trading_operator.revisions import (
    Revision,
    find_by_hash,
    find_by_number,
    next_number,
    previous_of,
    template_hash,
    template_of,
    to_prune,
)

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class Observed:
    """What the executor read: the TradingSymbol, its revisions and its children (by kind)."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    annotations: dict[str, str]
    revisions: list[Revision]
    children: dict[str, Manifest | None]
    now: str
    deleting: bool = False


@dataclass(frozen=True)
class CreateObject:
    manifest: Manifest


@dataclass(frozen=True)
class PatchObject:
    """A JSON merge patch of the operator's fields onto an existing child."""

    kind: str
    name: str
    patch: Manifest


@dataclass(frozen=True)
class DeleteObject:
    kind: str
    name: str


@dataclass(frozen=True)
class RemoveAnnotation:
    """Remove an annotation of the TradingSymbol (a handled request)."""

    key: str


@dataclass(frozen=True)
class EmitEvent:
    type: str
    reason: str
    message: str


Action = CreateObject | PatchObject | DeleteObject | RemoveAnnotation | EmitEvent


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] | None = None
    """The new status, or None when it would not change."""

    def event(self, type_: str, reason: Reason, message: str) -> None:
        self.actions.append(EmitEvent(type_, reason.value, message))


def validation_message(error: ValidationError) -> str:
    """One line per problem: `spec.field.path: message`."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(p) for p in ("spec", *problem["loc"]))
        parts.append(f"{location}: {problem['msg']}")
    return "; ".join(parts)


def parse_status(raw: dict[str, Any]) -> TradingSymbolStatus:
    """The stored status, tolerating a missing or partly foreign one."""
    try:
        return TradingSymbolStatus.model_validate(raw or {})
    except ValidationError:
        return TradingSymbolStatus()


def _finish(plan: Plan, observed: Observed, status: TradingSymbolStatus) -> Plan:
    new = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    old = parse_status(observed.status).model_dump(by_alias=True, mode="json", exclude_none=True)
    if new != old or set(observed.status) - set(new):
        plan.status = new
    return plan


def plan(observed: Observed) -> Plan:
    """Decide the actions that bring the world to the desired state, and the resulting status."""
    result = Plan()
    status = parse_status(observed.status)
    if observed.deleting:
        status = status.model_copy(update={"phase": Phase.TERMINATING})
        return _finish(result, observed, status)
    try:
        spec = TradingSymbolSpec.model_validate(observed.spec)
    except ValidationError as error:
        return _finish(result, observed, _invalid(result, observed, status, validation_message(error)))

    revisions = list(observed.revisions)
    owner = Owner(observed.name, observed.namespace, observed.uid)
    update = _update_revision(result, observed, spec, owner, revisions, status)
    aborted = status.aborted_revision if status.aborted_revision == update.number else None
    current = find_by_number(revisions, status.current_revision)
    target, aborted, last_rollback = _choose_target(
        result, observed, spec, revisions, update, current, aborted, status
    )

    rolled_out = False
    ready_replicas = 0
    if target is not None:
        rolled_out, ready_replicas = _reconcile_children(result, observed, spec, owner, target)
        keep = {n for n in (target.number, status.stable_revision, update.number) if n}
        pruned = to_prune(revisions, spec.revision_history_limit, keep)
        for revision in pruned:
            result.actions.append(DeleteObject("ControllerRevision", revision.name))
        if pruned:
            numbers = ", ".join(str(r.number) for r in sorted(pruned, key=lambda r: r.number))
            result.event(
                NORMAL,
                Reason.REVISIONS_PRUNED,
                f"Pruned revisions {numbers} (history limit {spec.revision_history_limit})",
            )

    status = _status(
        observed, spec, status, target, update, aborted, last_rollback, rolled_out, ready_replicas
    )
    return _finish(result, observed, status)


def _invalid(
    result: Plan, observed: Observed, status: TradingSymbolStatus, message: str
) -> TradingSymbolStatus:
    """Reject the spec: say why in a condition and an Event; leave whatever runs as it is."""
    previous = get_condition(status.conditions, ConditionType.SPEC_VALID)
    if previous is None or previous.status != ConditionStatus.FALSE or previous.message != message:
        result.event(WARNING, Reason.INVALID_SPEC, f"Spec rejected, nothing running was changed: {message}")
    conditions = set_condition(
        status.conditions,
        ConditionType.SPEC_VALID,
        ConditionStatus.FALSE,
        Reason.INVALID_SPEC,
        message,
        observed.generation,
        observed.now,
    )
    return status.model_copy(
        update={
            "conditions": conditions,
            "phase": Phase.INVALID,
            "observed_generation": observed.generation,
        }
    )


def _update_revision(
    result: Plan,
    observed: Observed,
    spec: TradingSymbolSpec,
    owner: Owner,
    revisions: list[Revision],
    status: TradingSymbolStatus,
) -> Revision:
    """The revision built from the spec; created (and announced) when the spec is new."""
    template = template_of(spec)
    spec_hash = template_hash(template)
    existing = find_by_hash(revisions, spec_hash)
    if existing is not None:
        return existing
    revision = Revision(
        next_number(revisions), naming.revision_name(observed.name, spec_hash), spec_hash, template
    )
    result.actions.append(CreateObject(build_revision(owner, spec, revision, observed.generation)))
    base = find_by_number(revisions, status.current_revision)
    changes = changed_fields(base.template.to_data(), template.to_data()) if base else []
    detail = f": {', '.join(changes[:5])}" if changes else ""
    result.event(NORMAL, Reason.REVISION_CREATED, f"Created revision {revision.number}{detail}")
    revisions.append(revision)
    return revision


def _choose_target(
    result: Plan,
    observed: Observed,
    spec: TradingSymbolSpec,
    revisions: list[Revision],
    update: Revision,
    current: Revision | None,
    aborted: int | None,
    status: TradingSymbolStatus,
) -> tuple[Revision | None, int | None, RollbackRecord | None]:
    """Which revision runs: a requested rollback, else the held one while paused or aborted, else the
    spec's. Returns (target, aborted revision, last rollback)."""
    request = observed.annotations.get(naming.ROLLBACK_ANNOTATION)
    if request is not None:
        result.actions.append(RemoveAnnotation(naming.ROLLBACK_ANNOTATION))
        chosen = _resolve_rollback(request, revisions, current, status)
        if chosen is None:
            result.event(
                WARNING,
                Reason.ROLLBACK_FAILED,
                f"Rollback to {request!r} refused: no such revision (have "
                f"{', '.join(str(r.number) for r in sorted(revisions, key=lambda r: r.number))})",
            )
        elif current is not None and chosen.number == current.number:
            if not (status.last_rollback and status.last_rollback.to_revision == chosen.number):
                result.event(
                    WARNING,
                    Reason.ROLLBACK_FAILED,
                    f"Rollback to revision {chosen.number} ignored: it is already running",
                )
        else:
            from_number = current.number if current else 0
            record = RollbackRecord(
                from_revision=from_number,
                to_revision=chosen.number,
                reason=f"ManualRollback: requested {request}",
                time=observed.now,
            )
            new_aborted = update.number if update.number != chosen.number else None
            held = (
                f"; revision {new_aborted} from the spec is aborted until the spec changes"
                if new_aborted
                else ""
            )
            result.event(
                NORMAL,
                Reason.ROLLED_BACK,
                f"Rolled back from revision {from_number} to {chosen.number} (manual){held}",
            )
            return chosen, new_aborted, record
    if spec.paused or (aborted is not None and current is not None):
        return current, aborted, status.last_rollback
    return update, aborted, status.last_rollback


def _resolve_rollback(
    request: str, revisions: list[Revision], current: Revision | None, status: TradingSymbolStatus
) -> Revision | None:
    if request.strip().lower() == "previous":
        return previous_of(revisions, current.number if current else 0, status.stable_revision)
    try:
        return find_by_number(revisions, int(request))
    except ValueError:
        return None


def _reconcile_children(
    result: Plan, observed: Observed, spec: TradingSymbolSpec, owner: Owner, target: Revision
) -> tuple[bool, int]:
    """Create missing children, correct drifted ones. Returns (rolled out, ready replicas)."""
    was_running = parse_status(observed.status).current_revision > 0
    deployment_in_sync = False
    for desired in build_children(owner, spec, target, spec.replicas, spec.trading_enabled):
        kind, name = desired["kind"], desired["metadata"]["name"]
        have = observed.children.get(kind)
        if have is None:
            result.actions.append(CreateObject(desired))
            if was_running:
                result.event(WARNING, Reason.CHILD_RESTORED, f"{kind} {name} was missing; recreated it")
            continue
        if is_subset(desired, have):
            deployment_in_sync = deployment_in_sync or kind == "Deployment"
            continue
        result.actions.append(PatchObject(kind, name, desired))
        stamped = have.get("metadata", {}).get("annotations", {}).get(DESIRED_HASH_ANNOTATION)
        if stamped == desired["metadata"]["annotations"][DESIRED_HASH_ANNOTATION]:
            drift = ", ".join(differences(desired, have)[:3])
            result.event(
                WARNING, Reason.DRIFT_CORRECTED, f"{kind} {name} was changed by hand ({drift}); restored"
            )
    deployment = observed.children.get("Deployment")
    if deployment is None:
        return False, 0
    return _rolled_out(deployment, spec.replicas) and deployment_in_sync, _ready(deployment)


def _ready(deployment: Manifest) -> int:
    return int(deployment.get("status", {}).get("readyReplicas") or 0)


def _rolled_out(deployment: Manifest, replicas: int) -> bool:
    """The Deployment controller has caught up and every pod of the template is ready."""
    state = deployment.get("status", {})
    generation = deployment.get("metadata", {}).get("generation", 0)
    return (
        (
            int(state.get("observedGeneration") or 0) >= generation
            and int(state.get("updatedReplicas") or 0) >= replicas
            and int(state.get("readyReplicas") or 0) >= replicas
            and int(state.get("replicas") or 0) <= replicas
        )
        if replicas
        else int(state.get("replicas") or 0) == 0
    )


def _status(
    observed: Observed,
    spec: TradingSymbolSpec,
    status: TradingSymbolStatus,
    target: Revision | None,
    update: Revision,
    aborted: int | None,
    last_rollback: RollbackRecord | None,
    rolled_out: bool,
    ready_replicas: int,
) -> TradingSymbolStatus:
    gen, now = observed.generation, observed.now
    conditions = set_condition(
        status.conditions,
        ConditionType.SPEC_VALID,
        ConditionStatus.TRUE,
        Reason.SPEC_ACCEPTED,
        "Spec is valid",
        gen,
        now,
    )
    current = target.number if target else 0
    stable = current if rolled_out else status.stable_revision
    replicas = spec.replicas if target else 0
    if target is None:
        progress = (ConditionStatus.FALSE, Reason.PAUSED_BY_SPEC, "Paused before the first rollout")
    elif rolled_out:
        progress = (ConditionStatus.FALSE, Reason.ROLLOUT_COMPLETE, f"Revision {current} is rolled out")
    else:
        progress = (
            ConditionStatus.TRUE,
            Reason.ROLLING_OUT,
            f"Rolling out revision {current}: {ready_replicas}/{replicas} pods ready",
        )
    conditions = set_condition(conditions, ConditionType.PROGRESSING, *progress, gen, now)
    if rolled_out:
        ready = (
            ConditionStatus.TRUE,
            Reason.SCALED_TO_ZERO if replicas == 0 else Reason.ALL_REPLICAS_READY,
            f"{ready_replicas}/{replicas} pods of revision {current} ready",
        )
    else:
        ready = (ConditionStatus.FALSE, Reason.REPLICAS_NOT_READY, f"{ready_replicas}/{replicas} pods ready")
    conditions = set_condition(conditions, ConditionType.READY, *ready, gen, now)
    if aborted is not None:
        degraded = (
            ConditionStatus.TRUE,
            Reason.ROLLED_BACK,
            f"Revision {aborted} from the spec is aborted; running revision {current}. "
            "Change the spec or retry to roll it out again",
        )
    else:
        degraded = (ConditionStatus.FALSE, Reason.AS_EXPECTED, "Running the spec's revision")
    conditions = set_condition(conditions, ConditionType.DEGRADED, *degraded, gen, now)
    if spec.paused:
        held = f"; spec revision {update.number} is held" if update.number != current else ""
        paused = (
            ConditionStatus.TRUE,
            Reason.PAUSED_BY_SPEC,
            f"Changes are held, running revision {current}{held}",
        )
    else:
        paused = (ConditionStatus.FALSE, Reason.NOT_PAUSED, "Changes roll out")
    conditions = set_condition(conditions, ConditionType.PAUSED, *paused, gen, now)
    if spec.trading_enabled:
        halted = (ConditionStatus.FALSE, Reason.TRADING_ENABLED, "Trading is enabled")
    else:
        halted = (ConditionStatus.TRUE, Reason.TRADING_DISABLED, "Kill switch on: pods run, no new positions")
    conditions = set_condition(conditions, ConditionType.HALTED, *halted, gen, now)
    return status.model_copy(
        update={
            "observed_generation": gen,
            "phase": _phase(spec, target, aborted, rolled_out),
            "conditions": conditions,
            "current_revision": current,
            "stable_revision": stable,
            "update_revision": update.number,
            "aborted_revision": aborted,
            "last_rollback": last_rollback,
            "replicas": replicas,
            "ready_replicas": ready_replicas,
        }
    )


def _phase(spec: TradingSymbolSpec, target: Revision | None, aborted: int | None, rolled_out: bool) -> Phase:
    if spec.paused:
        return Phase.PAUSED
    if aborted is not None:
        return Phase.DEGRADED
    if not spec.trading_enabled:
        return Phase.HALTED
    if target is None:
        return Phase.PENDING
    return Phase.READY if rolled_out else Phase.PROGRESSING
