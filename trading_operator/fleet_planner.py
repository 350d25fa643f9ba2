"""The FleetRollout planner: `plan_waves(observed) -> FleetPlan`, pure.

It decides which symbols get the change now (the next wave, once every symbol of the waves before it has
promoted its new revision and the pause has passed), when the rollout is done, and when it has failed (any
symbol of a started wave whose new revision the TradingSymbol machinery aborted, or an abort request) — and
then takes the change back from every symbol it touched. It never judges a revision itself: the TradingSymbol
planner and its analysis decide (one place decides each thing); this reads their verdict from each symbol's
status (`fleetChange`, `updateRevision`, `stableRevision`, `abortedRevision`). It also holds the waves while
`spec.paused`, starts a stopped rollout again from its failed wave on an accepted retry (`fleet_requests`
answers it), and, once Completed, takes the annotation off symbols whose own spec carries the change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trading_operator import fleet_requests
from trading_operator.api import ConditionStatus, Phase, TradingSymbolSpec, TradingSymbolStatus
from trading_operator.conditions import ConditionType, Reason, get_condition, set_condition
from trading_operator.fleet_api import (
    FleetPhase,
    FleetRolloutSpec,
    FleetRolloutStatus,
    FleetSymbol,
    SymbolState,
    wave_end,
)
from trading_operator.fleet_override import FleetOverride, apply_override
from trading_operator.planner import validation_message
from trading_operator.plans import NORMAL, WARNING, EmitEvent
from trading_operator.revisions import hash_of
from trading_operator.timestamps import seconds_between

TOUCHED = {SymbolState.PROGRESSING, SymbolState.SUCCEEDED, SymbolState.FAILED, SymbolState.ROLLING_BACK}
TERMINAL = {FleetPhase.COMPLETED, FleetPhase.FAILED, FleetPhase.ABORTED}


@dataclass(frozen=True)
class ObservedSymbol:
    """A TradingSymbol of the FleetRollout's namespace, as the executor read it."""

    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    """Its spec as stored (from git): what it runs without a fleet change."""
    override: FleetOverride | None
    """The fleet change on it now (this rollout's or another's)."""
    status: TradingSymbolStatus


@dataclass(frozen=True)
class FleetObserved:
    """What the executor read: the FleetRollout and the TradingSymbols of its namespace."""

    name: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    symbols: list[ObservedSymbol]
    now: str
    abort_request: str | None = None
    """The abort annotation's value, when present."""
    retry_request: str | None = None
    """The retry annotation's value, when present."""


@dataclass(frozen=True)
class SetChange:
    """Put the fleet change on a TradingSymbol (its annotation), then reconcile it."""

    symbol: str
    override: FleetOverride


@dataclass(frozen=True)
class ClearChange:
    """Take the fleet change off a TradingSymbol, then reconcile it."""

    symbol: str


@dataclass(frozen=True)
class ConsumeAbort:
    """Remove the abort request from the FleetRollout (it has been answered)."""


@dataclass(frozen=True)
class ConsumeRetry:
    """Remove the retry request from the FleetRollout (it has been answered)."""


FleetAction = SetChange | ClearChange | ConsumeAbort | ConsumeRetry | EmitEvent


@dataclass
class FleetPlan:
    actions: list[FleetAction] = field(default_factory=list)
    status: dict[str, Any] | None = None
    """The new status, or None when it would not change."""

    def event(self, type_: str, reason: Reason, message: str) -> None:
        self.actions.append(EmitEvent(type_, reason.value, message))


def change_hash(spec: FleetRolloutSpec) -> str:
    """The identity of a change: a new image or config patch is a new rollout."""
    return hash_of(spec.change.model_dump(by_alias=True, mode="json", exclude_none=True))


def assign_waves(count: int, steps: list[str]) -> list[int]:
    """The wave (1-based) of each of `count` symbols in order: the steps' cumulative ends, waves that would
    add nobody dropped, and a last wave with the rest when the steps stop short of everyone."""
    ends = sorted({wave_end(step, count) for step in steps} | {count})
    ends = [end for end in ends if end > 0]
    waves, start = [], 0
    for number, end in enumerate(ends, start=1):
        waves += [number] * (end - start)
        start = end
    return waves


def plan_waves(observed: FleetObserved) -> FleetPlan:
    """Decide the next actions of a FleetRollout and its new status."""
    result = FleetPlan()
    old = _parse_status(observed.status)
    try:
        spec = FleetRolloutSpec.model_validate(observed.spec)
    except ValidationError as error:
        invalid = _answer_abort(result, observed, _invalid(result, observed, old, validation_message(error)))
        return _finish(result, observed, _answer_retry(result, observed, invalid, False))
    change = change_hash(spec)
    status = old if old.change == change else FleetRolloutStatus(change=change, requests=old.requests)
    override = FleetOverride(rollout=observed.name, change=change, image=spec.change.image,
                             config=spec.change.config)
    by_name = {s.name: s for s in observed.symbols}
    selected = [s for s in observed.symbols if _matches(s, spec)]
    # Ours on a symbol no longer selected (its label changed): the change goes with the selection.
    for symbol in observed.symbols:
        if symbol not in selected and symbol.override is not None and symbol.override.rollout == observed.name:
            result.actions.append(ClearChange(symbol.name))
    if status.current_wave == 0 and status.phase is not FleetPhase.ABORTED:
        problems = _problems(selected, override)
        if problems:
            invalid = _answer_abort(result, observed, _invalid(result, observed, status, "; ".join(problems)))
            return _finish(result, observed, _answer_retry(result, observed, invalid, spec.paused))
    symbols = _assign(status, selected, observed.name, spec.steps)
    symbols = [_observe(s, by_name.get(s.name), override, status.phase) for s in symbols if s.name in by_name]
    status = status.model_copy(update={"symbols": symbols, "waves": max((s.wave for s in symbols), default=0),
                                       "observed_generation": observed.generation})
    status = _answer_abort(result, observed, status)
    status = _answer_retry(result, observed, status, spec.paused)
    failed = [s for s in status.symbols if s.state is SymbolState.FAILED]
    if failed and status.phase not in {FleetPhase.FAILED, FleetPhase.ABORTED}:
        names = ", ".join(f"{s.name} ({s.message})" for s in failed)
        result.event(WARNING, Reason.WAVE_FAILED,
                     f"Wave {status.current_wave} failed: {names}; no further wave starts, the change is taken "
                     f"back from {sum(s.state in TOUCHED for s in status.symbols)} symbols")
        status = status.model_copy(update={"phase": FleetPhase.FAILED,
                                           "message": f"wave {status.current_wave} failed on {names}"})
    if status.phase in {FleetPhase.FAILED, FleetPhase.ABORTED}:
        status = _roll_back(result, observed, status, by_name)
    else:
        status = _advance(result, observed, spec, status, by_name, override)
    if status.phase is FleetPhase.COMPLETED:
        status = _commit(result, status, by_name, override)
    if (old.phase is FleetPhase.PAUSED) != (status.phase is FleetPhase.PAUSED) and status.phase not in TERMINAL:
        if status.phase is FleetPhase.PAUSED:
            result.event(NORMAL, Reason.FLEET_PAUSED, f"Paused (spec.paused): {status.message}")
        else:
            result.event(NORMAL, Reason.FLEET_RESUMED, f"Resumed: {status.message}")
    return _finish(result, observed, _conditions(observed, status))


def _recorded(result: FleetPlan, observed: FleetObserved, status: FleetRolloutStatus,
              answer: fleet_requests.RequestAnswer) -> FleetRolloutStatus:
    """`status` with `answer` recorded in its requests; a refusal is also said in an Event."""
    if not answer.accepted:
        result.event(WARNING, Reason.REQUEST_REFUSED, answer.describe())
    return status.model_copy(update={"requests": fleet_requests.record(status.requests, answer, observed.now)})


def _answer_abort(result: FleetPlan, observed: FleetObserved, status: FleetRolloutStatus) -> FleetRolloutStatus:
    """Answer an abort request once (recorded in status.requests); an accepted one stops the rollout, and
    `_roll_back` takes the change back."""
    if observed.abort_request is None:
        return status
    result.actions.append(ConsumeAbort())
    answer = fleet_requests.judge_abort(observed.abort_request, observed.generation, status)
    if answer is None:
        return status
    status = _recorded(result, observed, status, answer)
    if not answer.accepted:
        return status
    result.event(WARNING, Reason.FLEET_ABORTED, answer.describe())
    return status.model_copy(update={"phase": FleetPhase.ABORTED,
                                     "message": f"aborted by request in wave {status.current_wave}"})


def _answer_retry(result: FleetPlan, observed: FleetObserved, status: FleetRolloutStatus, paused: bool) \
        -> FleetRolloutStatus:
    """Answer a retry request once (recorded in status.requests); an accepted one starts the stopped wave
    again: every symbol of it and of the waves before it is Pending, so `_advance` hands it the change."""
    if observed.retry_request is None:
        return status
    result.actions.append(ConsumeRetry())
    # An abort beside it, answered or not, says someone wants the rollout stopped: the retry gives way.
    answer = fleet_requests.judge_retry(observed.retry_request, observed.generation, status, paused,
                                        observed.abort_request is not None)
    if answer is None:
        return status
    status = _recorded(result, observed, status, answer)
    if not answer.accepted:
        return status
    wave = status.current_wave
    again = [s.name for s in status.symbols if s.wave <= wave and s.state is not SymbolState.SKIPPED]
    result.event(NORMAL, Reason.FLEET_RETRIED, f"{answer.describe()} ({len(again)} symbols: "
                                               f"{', '.join(again[:12])})")
    symbols = [s.model_copy(update={"state": SymbolState.PENDING, "message": "retry: the change goes back"})
               if s.name in again else s for s in status.symbols]
    return status.model_copy(update={
        "symbols": symbols, "phase": FleetPhase.PROGRESSING, "wave_completed_at": None,
        "message": f"retrying wave {wave}/{status.waves}",
        "conditions": [c for c in status.conditions if c.type != ConditionType.ROLLED_BACK]})


def _commit(result: FleetPlan, status: FleetRolloutStatus, by_name: dict[str, ObservedSymbol],
            override: FleetOverride) -> FleetRolloutStatus:
    """After Completed: a symbol whose own spec already carries the change (committed to git) runs the same
    spec without the annotation, so it is taken off — the same effective spec, hence the same revision. A
    symbol whose spec says otherwise keeps the annotation and runs the change (looked at again every tick)."""
    committed = []
    symbols = []
    for entry in status.symbols:
        symbol = by_name.get(entry.name)
        if entry.state is SymbolState.SUCCEEDED and symbol is not None and symbol.override == override \
                and apply_override(symbol.spec, override) == symbol.spec:
            result.actions.append(ClearChange(symbol.name))
            committed.append(symbol.name)
            entry = entry.model_copy(update={
                "state": SymbolState.COMMITTED,
                "message": f"its spec carries the change: annotation removed, revision {entry.to_revision} runs on"})
        symbols.append(entry)
    if committed:
        result.event(NORMAL, Reason.FLEET_CHANGE_COMMITTED,
                     f"The spec of {len(committed)} symbols carries the change ({', '.join(committed[:12])}): "
                     "its annotation is removed, no new revision")
    return status.model_copy(update={"symbols": symbols})


def _parse_status(raw: dict[str, Any]) -> FleetRolloutStatus:
    try:
        return FleetRolloutStatus.model_validate(raw or {})
    except ValidationError:
        return FleetRolloutStatus()


def _matches(symbol: ObservedSymbol, spec: FleetRolloutSpec) -> bool:
    return all(symbol.labels.get(k) == v for k, v in spec.selector.match_labels.items())


def _problems(selected: list[ObservedSymbol], override: FleetOverride) -> list[str]:
    """Symbols whose spec the change would make invalid (checked before any symbol is touched)."""
    problems = []
    for symbol in selected:
        try:
            TradingSymbolSpec.model_validate(apply_override(symbol.spec, override))
        except ValidationError as error:
            problems.append(f"{symbol.name}: {validation_message(error)}")
    return problems


def _assign(status: FleetRolloutStatus, selected: list[ObservedSymbol], name: str, steps: list[str]) \
        -> list[FleetSymbol]:
    """Every selected symbol's wave: the first look assigns them in name order; symbols selected later join
    the last wave; symbols carrying another FleetRollout's change are skipped."""
    known = {s.name: s for s in status.symbols}
    if not known:
        ours = sorted((s for s in selected if s.override is None or s.override.rollout == name), key=lambda s: s.name)
        waves = dict(zip([s.name for s in ours], assign_waves(len(ours), steps), strict=True))
    else:
        last = max(s.wave for s in known.values())
        waves = {s.name: known[s.name].wave if s.name in known else last for s in selected}
    out = []
    for symbol in sorted(selected, key=lambda s: (waves.get(s.name, 0), s.name)):
        entry = known.get(symbol.name) or FleetSymbol(name=symbol.name, wave=waves.get(symbol.name, 0))
        if symbol.override is not None and symbol.override.rollout != name:
            entry = entry.model_copy(update={"state": SymbolState.SKIPPED, "message":
                                             f"FleetRollout {symbol.override.rollout} has its change on it"})
        out.append(entry)
    return out


def _observe(entry: FleetSymbol, symbol: ObservedSymbol | None, override: FleetOverride,
             phase: FleetPhase) -> FleetSymbol:
    """A touched symbol's state, read from its status: the TradingSymbol planner's verdict on the change."""
    if symbol is None or entry.state not in TOUCHED or phase in {FleetPhase.FAILED, FleetPhase.ABORTED}:
        return entry
    ts = symbol.status
    if symbol.override is None or symbol.override.change != override.change or ts.fleet_change != override.ref:
        return entry.model_copy(update={"state": SymbolState.PROGRESSING,
                                        "message": "waiting for the symbol to take the change"})
    if ts.phase is Phase.INVALID:
        valid = get_condition(ts.conditions, ConditionType.SPEC_VALID)
        return entry.model_copy(update={"state": SymbolState.FAILED, "to_revision": ts.update_revision,
                                        "message": f"spec rejected: {valid.message if valid else ''}"})
    if ts.aborted_revision is not None and ts.aborted_revision == ts.update_revision:
        why = ts.last_rollback.reason if ts.last_rollback else "aborted"
        return entry.model_copy(update={"state": SymbolState.FAILED, "to_revision": ts.update_revision,
                                        "message": f"revision {ts.update_revision} aborted: {why}"})
    if ts.update_revision and ts.stable_revision == ts.update_revision == ts.current_revision:
        return entry.model_copy(update={"state": SymbolState.SUCCEEDED, "to_revision": ts.update_revision,
                                        "message": f"revision {ts.update_revision} promoted"})
    progressing = get_condition(ts.conditions, ConditionType.PROGRESSING)
    return entry.model_copy(update={"state": SymbolState.PROGRESSING, "to_revision": ts.update_revision,
                                    "message": progressing.message if progressing else "rolling out"})


def _advance(result: FleetPlan, observed: FleetObserved, spec: FleetRolloutSpec, status: FleetRolloutStatus,
             by_name: dict[str, ObservedSymbol], override: FleetOverride) -> FleetRolloutStatus:
    """Start the next wave once the ones before have promoted everywhere (and the pause has passed)."""
    wave = status.current_wave
    started = [s for s in status.symbols if 0 < s.wave <= wave and s.state is not SymbolState.SKIPPED]
    # A symbol that joined a wave already started, or lost the change by hand, gets it (again) now.
    symbols = [_touch(result, s, by_name[s.name], override) if s in started and _needs_change(s, by_name, override)
               else s for s in status.symbols]
    status = status.model_copy(update={"symbols": symbols})
    busy = [s for s in symbols if 0 < s.wave <= wave and s.state is SymbolState.PROGRESSING]
    if busy:
        held = "paused, no further wave starts; " if spec.paused else ""
        return status.model_copy(update={"phase": FleetPhase.PAUSED if spec.paused else FleetPhase.PROGRESSING,
                                         "message": f"{held}wave {wave}/{status.waves}: {len(busy)} symbols "
                                         f"rolling out or under analysis ({', '.join(s.name for s in busy[:5])})"})
    if wave >= status.waves:
        if status.phase is not FleetPhase.COMPLETED and wave > 0:
            done = sum(s.state is SymbolState.SUCCEEDED for s in symbols)
            result.event(NORMAL, Reason.FLEET_COMPLETE, f"All {status.waves} waves promoted: {done} symbols run "
                                                        "the change")
        phase = FleetPhase.COMPLETED if wave > 0 else FleetPhase.PENDING
        message = "every wave promoted" if wave > 0 else "no TradingSymbol matches the selector"
        return status.model_copy(update={"phase": phase, "message": message})
    if wave > 0 and status.wave_completed_at is None:
        result.event(NORMAL, Reason.WAVE_SUCCEEDED, f"Wave {wave}/{status.waves} promoted on "
                                                    f"{sum(s.wave == wave for s in symbols)} symbols")
        status = status.model_copy(update={"wave_completed_at": observed.now})
    if spec.paused:
        return status.model_copy(update={"phase": FleetPhase.PAUSED, "message":
                                         f"paused before wave {wave + 1}/{status.waves} (spec.paused)"})
    if wave > 0 and status.wave_completed_at is not None:
        waited = seconds_between(status.wave_completed_at, observed.now)
        if waited < spec.pause_seconds:
            return status.model_copy(update={"phase": FleetPhase.PROGRESSING, "message":
                                             f"pausing {spec.pause_seconds - waited:.0f}s before wave {wave + 1}"})
    nxt = wave + 1
    symbols = [_touch(result, s, by_name[s.name], override) if s.wave == nxt and s.state is SymbolState.PENDING
               else s for s in status.symbols]
    members = [s.name for s in symbols if s.wave == nxt and s.state is not SymbolState.SKIPPED]
    result.event(NORMAL, Reason.WAVE_STARTED, f"Wave {nxt}/{status.waves}: change {status.change} to "
                                              f"{len(members)} symbols ({', '.join(members[:12])})")
    return status.model_copy(update={"symbols": symbols, "current_wave": nxt, "wave_completed_at": None,
                                     "phase": FleetPhase.PROGRESSING,
                                     "message": f"wave {nxt}/{status.waves} rolling out"})


def _needs_change(entry: FleetSymbol, by_name: dict[str, ObservedSymbol], override: FleetOverride) -> bool:
    return entry.state is SymbolState.PENDING or (entry.state is SymbolState.PROGRESSING
                                                  and by_name[entry.name].override != override)


def _touch(result: FleetPlan, entry: FleetSymbol, symbol: ObservedSymbol, override: FleetOverride) -> FleetSymbol:
    result.actions.append(SetChange(symbol.name, override))
    from_revision = entry.from_revision if entry.state is SymbolState.PROGRESSING else symbol.status.stable_revision
    return entry.model_copy(update={"state": SymbolState.PROGRESSING, "from_revision": from_revision,
                                    "message": "change handed to the symbol"})


def _roll_back(result: FleetPlan, observed: FleetObserved, status: FleetRolloutStatus,
               by_name: dict[str, ObservedSymbol]) -> FleetRolloutStatus:
    """Take the change back from every symbol this rollout reached; each is back once it runs its own spec's
    revision again, stable (the TradingSymbol machinery rolls it out like any change)."""
    for each in observed.symbols:
        if each.override is not None and each.override.rollout == observed.name:
            result.actions.append(ClearChange(each.name))
    symbols = []
    for entry in status.symbols:
        symbol = by_name.get(entry.name)
        if entry.state in TOUCHED and symbol is not None:
            ts = symbol.status
            back = (symbol.override is None and ts.fleet_change is None and ts.current_revision > 0
                    and ts.stable_revision == ts.update_revision == ts.current_revision)
            entry = entry.model_copy(update={
                "state": SymbolState.ROLLED_BACK if back else SymbolState.ROLLING_BACK,
                "message": f"runs revision {ts.current_revision} of its own spec again" if back else
                f"{entry.message}; change taken back, returning to its own spec"
                if entry.state is not SymbolState.ROLLING_BACK else entry.message})
        symbols.append(entry)
    return status.model_copy(update={"symbols": symbols})


def _conditions(observed: FleetObserved, status: FleetRolloutStatus) -> FleetRolloutStatus:
    gen, now = observed.generation, observed.now
    if status.phase is FleetPhase.COMPLETED:
        progressing = (ConditionStatus.FALSE, Reason.FLEET_COMPLETE, status.message)
    elif status.phase is FleetPhase.PAUSED:
        progressing = (ConditionStatus.UNKNOWN, Reason.FLEET_PAUSED, status.message)
    elif status.phase in {FleetPhase.FAILED, FleetPhase.ABORTED}:
        reason = Reason.WAVE_FAILED if status.phase is FleetPhase.FAILED else Reason.FLEET_ABORTED
        progressing = (ConditionStatus.FALSE, reason, status.message)
    elif status.wave_completed_at is not None:
        progressing = (ConditionStatus.TRUE, Reason.WAVE_PAUSE, status.message)
    else:
        progressing = (ConditionStatus.TRUE, Reason.WAVE_STARTED, status.message)
    conditions = set_condition(status.conditions, ConditionType.PROGRESSING, *progressing, gen, now)
    if status.phase in {FleetPhase.FAILED, FleetPhase.ABORTED}:
        pending = [s.name for s in status.symbols if s.state is SymbolState.ROLLING_BACK]
        back = sum(s.state is SymbolState.ROLLED_BACK for s in status.symbols)
        if pending:
            rolled = (ConditionStatus.FALSE, Reason.FLEET_ROLLING_BACK,
                      f"{back} symbols back on their own spec, waiting for {', '.join(pending)}")
        else:
            rolled = (ConditionStatus.TRUE, Reason.FLEET_ROLLED_BACK,
                      f"every symbol the change reached ({back}) runs its own spec's revision again")
        conditions = set_condition(conditions, ConditionType.ROLLED_BACK, *rolled, gen, now)
    return status.model_copy(update={"conditions": conditions})


def _invalid(result: FleetPlan, observed: FleetObserved, status: FleetRolloutStatus, message: str) \
        -> FleetRolloutStatus:
    """Nothing is touched: say why once (an Event when the message is new)."""
    if status.phase is not FleetPhase.INVALID or status.message != message:
        result.event(WARNING, Reason.INVALID_SPEC, f"FleetRollout rejected, no symbol was touched: {message}")
    conditions = set_condition(status.conditions, ConditionType.PROGRESSING, ConditionStatus.FALSE,
                               Reason.INVALID_SPEC, message, observed.generation, observed.now)
    return status.model_copy(update={"phase": FleetPhase.INVALID, "message": message, "conditions": conditions,
                                     "observed_generation": observed.generation})


def _finish(result: FleetPlan, observed: FleetObserved, status: FleetRolloutStatus) -> FleetPlan:
    new = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    if new != _parse_status(observed.status).model_dump(by_alias=True, mode="json", exclude_none=True):
        result.status = new
    return result
