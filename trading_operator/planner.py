"""The reconcile planner: `plan(observed) -> Plan`, a pure function of desired and observed state.

It decides which revision runs (the spec's, a held one while paused, a rolled-back one), which
children to create or correct, which revisions to prune, which Events to emit and the new status.
The executor carries the plan out; nothing here talks to the API."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from policies.risk import risk_problems
from trading_operator import (
    claim_status,
    claims,
    model_health,
    model_resolution,
    naming,
    regime_watch,
    restarts,
    tuner,
    user_requests,
)
from trading_operator.api import (
    SYMBOL_IMMUTABLE,
    AnalysisPhase,
    BackgroundState,
    ConditionStatus,
    Phase,
    TradingSymbolSpec,
    TradingSymbolStatus,
    TuningState,
)
from trading_operator.builders import (
    DESIRED_HASH_ANNOTATION,
    Manifest,
    Owner,
    build_children,
    build_revision,
    build_runtime_config,
    build_shadow_children,
)
from trading_operator.conditions import ConditionType, Reason, get_condition, set_condition
from trading_operator.diffing import changed_fields, differences, is_subset
from trading_operator.fleet_override import apply_override, read_override
from trading_operator.plans import (
    NORMAL,
    WARNING,
    Action,
    CreateObject,
    DeleteObject,
    EmitEvent,
    Observed,
    PatchObject,
    Plan,
    RemoveAnnotation,
)
from trading_operator.progress import NotReady, not_ready
from trading_operator.revisions import (
    Revision,
    find_by_hash,
    find_by_number,
    next_number,
    template_hash,
    template_of,
    to_prune,
)
from trading_operator.rollout import Decision, Policies, decide, fold_findings, resolve_policies

SHADOW_DEPLOYMENT = "shadow/Deployment"
SHADOW_CONFIGMAP = "shadow/ConfigMap"
"""Keys of the shadow children in `Observed.children` (the others are keyed by kind)."""

__all__ = ["NORMAL", "WARNING", "Action", "CreateObject", "DeleteObject", "EmitEvent", "Observed", "PatchObject",
           "Plan", "RemoveAnnotation", "parse_status", "plan", "validation_message"]

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
        # The drain handler reconciles once deletion starts: the status says so here, not there.
        status = status.model_copy(update={"phase": Phase.TERMINATING,
                                           "drain_started": status.drain_started or observed.now})
        return _finish(result, observed, status)
    try:  # a FleetRollout's change, on top of the spec from git (fleet_override says why and how)
        override = read_override(observed.annotations)
    except ValueError as error:
        return _finish(result, observed, _invalid(result, observed, status, str(error)))
    try:
        spec = TradingSymbolSpec.model_validate(apply_override(observed.spec, override))
    except ValidationError as error:
        return _finish(result, observed, _invalid(result, observed, status, validation_message(error)))
    # Defence in depth: the API server refuses a changed spec.symbol (the CRD's CEL rule); one that got through
    # would reach every pod at once with no new revision, so the symbol traded stays the one first accepted.
    if status.symbol is not None and claims.normalise(spec.symbol) != status.symbol:
        return _finish(result, observed, _invalid(
            result, observed, status, f"spec.symbol {spec.symbol} differs from {status.symbol}, the symbol this "
            f"TradingSymbol trades ({SYMBOL_IMMUTABLE}); it keeps trading {status.symbol}", Reason.SYMBOL_IMMUTABLE))
    # One symbol, one trader: a later claimant of a symbol another TradingSymbol trades starts nothing.
    if (holder := claims.rival_owner(observed.name, spec.symbol, observed.claims)) is not None:
        pods = [d["metadata"]["name"] for d in (observed.children.get("Deployment"),
                                                observed.children.get(SHADOW_DEPLOYMENT)) if d]
        return _finish(result, observed, claim_status.refused(result, observed, status, spec.symbol, holder, pods))
    try:
        policies = resolve_policies(observed.policies, spec)
    except KeyError as error:
        return _finish(result, observed, _invalid(result, observed, status, str(error.args[0])))
    # The named RiskPolicy caps the limits the runtime gets: above a cap, nothing new runs.
    if problems := risk_problems(observed.policies, spec.policies.risk, spec.config.risk):
        return _finish(result, observed, _invalid(result, observed, status, "; ".join(problems)))
    status = fold_findings(result, observed, spec, status, policies)
    status = status.model_copy(update={"restarts": restarts.track(
        status.restarts, observed.pods, observed.now, spec.rollout.crash_loop_window_seconds)})
    status = model_health.fold(result, spec, status, observed.findings, observed.generation, observed.now)
    status = regime_watch.fold(result, observed, spec, status, observed.policies.risk.get(spec.policies.risk))
    base_config = spec.config.model_dump(by_alias=True, mode="json")
    if spec.model is None:
        status = model_resolution.without_model(status)
    else:  # a revision pins a resolved version: none is created while the model cannot be resolved
        pinning = model_resolution.pin(spec.model, observed.model, status.model)
        status = model_resolution.apply(result, status, pinning, observed.generation, observed.now)
        if pinning.pinned is None:
            result.retry = pinning.message
            return _finish(result, observed, status)
        base_config = model_resolution.with_model(base_config, pinning.pinned)

    revisions = list(observed.revisions)
    owner = Owner(observed.name, observed.namespace, observed.uid)
    tuning = _tuning_state(status, policies, observed)
    if tuning is not None and policies.tuning is not None:  # tuned values that make an invalid config: dropped
        tuning = tuner.valid_state(tuning, policies.tuning, base_config, observed.now)
    integer_paths = tuner.integer_paths(policies.tuning) if policies.tuning else set()
    accepted = tuning.overrides if tuning is not None and policies.tuning is not None else {}
    update = _ensure_revision(result, observed, spec, owner, revisions, status,
                              tuner.apply_overrides(base_config, accepted, integer_paths) if accepted else base_config)
    candidate = None
    if tuning is not None and tuning.candidate and policies.tuning is not None:
        candidate = _ensure_revision(result, observed, spec, owner, revisions, status, tuner.apply_overrides(
            base_config, {**accepted, **tuning.candidate}, integer_paths))
    running = {"main": _running_revision(observed.children.get("Deployment"), spec.replicas),
               "shadow": _running_revision(observed.children.get(SHADOW_DEPLOYMENT), 1)}
    decision = decide(result, observed, spec, status, revisions, update, candidate, policies, tuning, running,
                      _failing(observed, spec, status))
    target = decision.target

    rolled_out = False
    ready_replicas = 0
    if target is not None:
        restarted_at = decision.restarted_at or (status.background.restarted_at if status.background else None)
        rolled_out, ready_replicas = _reconcile_children(result, observed, spec, owner, target, restarted_at)
        _reconcile_shadow(result, observed, spec, owner, decision.shadow)
        keep = {n for n in (target.number, decision.stable, decision.previous_stable, update.number,
                            candidate.number if candidate else 0, decision.shadow.number if decision.shadow else 0)
                if n}
        pruned = to_prune(revisions, spec.revision_history_limit, keep)
        for revision in pruned:
            result.actions.append(DeleteObject("ControllerRevision", revision.name))
        alive = {r.number for r in revisions} - {r.number for r in pruned} | {status.current_revision}
        _reconcile_configs(result, observed, spec, owner, [r for r in (target, decision.shadow) if r], alive)
        if pruned:
            numbers = ", ".join(str(r.number) for r in sorted(pruned, key=lambda r: r.number))
            result.event(
                NORMAL,
                Reason.REVISIONS_PRUNED,
                f"Pruned revisions {numbers} (history limit {spec.revision_history_limit})",
            )

    status = _status(observed, spec, status, decision, update, rolled_out, ready_replicas, policies)
    status = status.model_copy(update={"fleet_change": override.ref if override else None,
                                       "symbol": claims.normalise(spec.symbol)})
    return _finish(result, observed, claim_status.owned(result, observed, spec.symbol, status))


def _failing(observed: Observed, spec: TradingSymbolSpec, status: TradingSymbolStatus) \
        -> dict[str, tuple[int, NotReady]]:
    """Per Deployment (`main`, `shadow`): the revision it runs whose pods cannot become ready (or keep
    restarting: `status.restarts`), and why."""
    failing = {}
    for where, key in (("main", "Deployment"), ("shadow", SHADOW_DEPLOYMENT)):
        deployment = observed.children.get(key)
        if deployment is None:
            continue
        shadow = where == "shadow"
        pods = [p for p in observed.pods
                if (p.get("metadata", {}).get("labels", {}).get(naming.TRACK_LABEL) == "shadow") == shadow]
        revision = _template_revision(deployment)
        looping = restarts.crash_loop(status.restarts, pods, revision, spec.rollout, observed.now) \
            if revision is not None else None
        why = not_ready(deployment, pods, looping)
        if why is not None and revision is not None:
            failing[where] = (revision, why)
    return failing


def _template_revision(deployment: Manifest) -> int | None:
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    value = labels.get(naming.REVISION_LABEL)
    return int(value) if value and str(value).isdigit() else None


def _tuning_state(status: TradingSymbolStatus, policies: Policies, observed: Observed) -> TuningState | None:
    if policies.tuning is None:
        return status.tuning.model_copy(update={"candidate": None}) if status.tuning else None
    return tuner.for_generation(status.tuning, policies.tuning_name, observed.generation)


def _running_revision(deployment: Manifest | None, replicas: int) -> int | None:
    """The revision a Deployment has fully rolled out, if it has."""
    if deployment is None or not _rolled_out(deployment, replicas):
        return None
    return _template_revision(deployment)


def _reconcile_configs(result: Plan, observed: Observed, spec: TradingSymbolSpec, owner: Owner,
                       running: list[Revision], alive: set[int]) -> None:
    """Each running revision's immutable config ConfigMap exists with its exact content (an immutable one that
    differs is replaced, never patched); those of revisions gone from the history are pruned with them."""
    wanted = {m["metadata"]["name"]: m for m in (build_runtime_config(owner, spec, r) for r in running)}
    for name, have in sorted(observed.configs.items()):
        revision_label = have.get("metadata", {}).get("labels", {}).get(naming.REVISION_LABEL, "")
        if name in wanted:
            if have.get("data") != wanted[name]["data"]:
                result.actions.append(DeleteObject("ConfigMap", name))  # recreated below with its exact bytes
        elif not revision_label.isdigit() or int(revision_label) not in alive:
            result.actions.append(DeleteObject("ConfigMap", name))
    for name, desired in wanted.items():
        existing = observed.configs.get(name)
        if existing is None or existing.get("data") != desired["data"]:
            result.actions.append(CreateObject(desired))


def _reconcile_shadow(
    result: Plan, observed: Observed, spec: TradingSymbolSpec, owner: Owner, shadow: Revision | None
) -> None:
    """Run the shadow revision's children, or remove them when there is none."""
    if shadow is None:
        for key in (SHADOW_DEPLOYMENT, SHADOW_CONFIGMAP):
            have = observed.children.get(key)
            if have is not None:
                result.actions.append(DeleteObject(have["kind"], have["metadata"]["name"]))
        return
    for desired in build_shadow_children(owner, spec, shadow):
        key = f"shadow/{desired['kind']}"
        have = observed.children.get(key)
        if have is None:
            result.actions.append(CreateObject(desired))
        elif not is_subset(desired, have):
            result.actions.append(PatchObject(desired["kind"], desired["metadata"]["name"], desired))


def _invalid(
    result: Plan, observed: Observed, status: TradingSymbolStatus, message: str, reason: Reason = Reason.INVALID_SPEC
) -> TradingSymbolStatus:
    """Reject the spec: say why in a condition and an Event; leave whatever runs as it is."""
    previous = get_condition(status.conditions, ConditionType.SPEC_VALID)
    if previous is None or previous.status != ConditionStatus.FALSE or previous.message != message:
        result.event(WARNING, reason, f"Spec rejected, nothing running was changed: {message}")
    conditions = set_condition(
        status.conditions,
        ConditionType.SPEC_VALID,
        ConditionStatus.FALSE,
        reason,
        message,
        observed.generation,
        observed.now,
    )
    answers = user_requests.refuse_all(observed.annotations, frozenset(r.id for r in status.requests), message)
    user_requests.respond(result, answers)
    last_request = user_requests.last_request_condition(answers)
    if last_request is not None:
        conditions = set_condition(conditions, ConditionType.LAST_REQUEST, *last_request, observed.generation,
                                   observed.now)
    return status.model_copy(
        update={
            "conditions": conditions,
            "phase": Phase.INVALID,
            "observed_generation": observed.generation,
            "requests": user_requests.records(status.requests, answers, observed.now),
        }
    )


def _ensure_revision(
    result: Plan,
    observed: Observed,
    spec: TradingSymbolSpec,
    owner: Owner,
    revisions: list[Revision],
    status: TradingSymbolStatus,
    config: dict[str, Any] | None = None,
) -> Revision:
    """The revision of the spec (with a tuned config when given); created and announced when new."""
    template = template_of(spec, config)
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


def _reconcile_children(
    result: Plan, observed: Observed, spec: TradingSymbolSpec, owner: Owner, target: Revision,
    restarted_at: str | None,
) -> tuple[bool, int]:
    """Create missing children, correct drifted ones. Returns (rolled out, ready replicas)."""
    was_running = parse_status(observed.status).current_revision > 0
    deployment_in_sync = False
    for desired in build_children(owner, spec, target, spec.replicas, spec.trading_enabled, restarted_at):
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
    decision: Decision,
    update: Revision,
    rolled_out: bool,
    ready_replicas: int,
    policies: Policies,
) -> TradingSymbolStatus:
    gen, now = observed.generation, observed.now
    target, aborted, run = decision.target, decision.aborted, decision.analysis
    conditions = set_condition(
        status.conditions, ConditionType.SPEC_VALID, ConditionStatus.TRUE, Reason.SPEC_ACCEPTED, "Spec is valid",
        gen, now,
    )
    current = target.number if target else 0
    replicas = spec.replicas if target else 0
    shadow_number = decision.shadow.number if decision.shadow else 0
    analysing = (run is not None and run.phase is AnalysisPhase.RUNNING and decision.hold_reason is None
                 and run.revision in {current, shadow_number} and run.revision != decision.stable)
    if target is None:
        progress = (ConditionStatus.FALSE, Reason.PAUSED_BY_SPEC, "Paused before the first rollout")
    elif analysing and run is not None:
        done = min((t.successful + t.failed for t in run.tallies), default=0)
        shadow = " (shadow)" if decision.shadow else ""
        progress = (ConditionStatus.TRUE, Reason.ANALYSIS_RUNNING,
                    f"Analysing revision {run.revision}{shadow}: {done}/{policies.analysis.count} measurements")
    elif rolled_out:
        progress = (ConditionStatus.FALSE, Reason.ROLLOUT_COMPLETE, f"Revision {current} is rolled out")
    else:
        progress = (ConditionStatus.TRUE, Reason.ROLLING_OUT,
                    f"Rolling out revision {current}: {ready_replicas}/{replicas} pods ready")
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
    background = status.background
    if decision.stable_failing is not None:  # what runs is failing now: before any aborted revision
        degraded = (ConditionStatus.TRUE, decision.stable_failing.reason,
                    f"Stable revision {current} cannot stay ready (not rolled back: no known-good revision to "
                    f"go to): {decision.stable_failing.message}")
    elif aborted is not None:
        why = f" ({decision.last_rollback.reason})" if decision.last_rollback else ""
        degraded = (
            ConditionStatus.TRUE,
            Reason.ROLLED_BACK,
            f"Revision {aborted} from the spec is aborted{why}; running revision {current}. "
            "Change the spec or retry to roll it out again",
        )
    elif decision.never_ready is not None:
        degraded = (ConditionStatus.TRUE, decision.never_ready.reason,
                    f"Revision {current} never became ready and there is no stable revision to return to: "
                    f"{decision.never_ready.message}")
    elif background is not None and background.exhausted:
        degraded = (ConditionStatus.TRUE, Reason.SELF_HEALING_EXHAUSTED,
                    f"SLO breach on stable revision {current} persists after self-healing: {background.last_breach}")
    else:
        degraded = (ConditionStatus.FALSE, Reason.AS_EXPECTED, "Running the spec's revision")
    conditions = set_condition(conditions, ConditionType.DEGRADED, *degraded, gen, now)
    if spec.paused:
        held = f"; spec revision {update.number} is held" if update.number != current else ""
        paused = (ConditionStatus.TRUE, Reason.PAUSED_BY_SPEC, f"Changes are held, running revision {current}{held}")
    elif decision.hold_reason is not None:
        paused = (ConditionStatus.TRUE, Reason.ANALYSIS_INCONCLUSIVE, decision.hold_reason)
    else:
        paused = (ConditionStatus.FALSE, Reason.NOT_PAUSED, "Changes roll out")
    conditions = set_condition(conditions, ConditionType.PAUSED, *paused, gen, now)
    if spec.trading_enabled:
        halted = (ConditionStatus.FALSE, Reason.TRADING_ENABLED, "Trading is enabled")
    else:
        halted = (ConditionStatus.TRUE, Reason.TRADING_DISABLED, "Kill switch on: pods run, no new positions")
    conditions = set_condition(conditions, ConditionType.HALTED, *halted, gen, now)
    last_request = user_requests.last_request_condition(decision.requests)
    if last_request is not None:
        conditions = set_condition(conditions, ConditionType.LAST_REQUEST, *last_request, gen, now)
    if decision.restarted_at is not None:
        background = (background or BackgroundState()).model_copy(update={"restarted_at": decision.restarted_at})
    return status.model_copy(
        update={
            "observed_generation": gen,
            "phase": _phase(spec, target, aborted is not None or decision.never_ready is not None
                            or decision.stable_failing is not None, rolled_out,
                            decision.hold_reason, analysing),
            "conditions": conditions,
            "current_revision": current,
            "stable_revision": decision.stable,
            "previous_stable_revision": decision.previous_stable,
            "stable_since": decision.stable_since,
            "update_revision": update.number,
            "aborted_revision": aborted,
            "last_rollback": decision.last_rollback,
            "replicas": replicas,
            "ready_replicas": ready_replicas,
            "analysis": run,
            "tuning": decision.tuning,
            "background": background,
            "requests": user_requests.records(status.requests, decision.requests, now),
            "failed_revisions": decision.failed,
            "forced_rollback": decision.forced,
        }
    )


def _phase(spec: TradingSymbolSpec, target: Revision | None, degraded: bool, rolled_out: bool,
           hold_reason: str | None, analysing: bool) -> Phase:
    if spec.paused or hold_reason is not None:
        return Phase.PAUSED
    if degraded:
        return Phase.DEGRADED
    if not spec.trading_enabled:
        return Phase.HALTED
    if target is None:
        return Phase.PENDING
    return Phase.READY if rolled_out and not analysing else Phase.PROGRESSING
