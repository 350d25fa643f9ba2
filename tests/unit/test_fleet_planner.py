"""The FleetRollout planner, table-tested: waves, gating on each symbol's verdict, the pause, failure and the
rollback of everything the change reached, abort, invalid input, symbols held by another rollout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trading_operator.api import TradingSymbolStatus
from trading_operator.fleet_api import FleetRolloutSpec
from trading_operator.fleet_override import FleetOverride
from trading_operator.fleet_planner import (
    ClearChange,
    ConsumeAbort,
    FleetObserved,
    ObservedSymbol,
    SetChange,
    assign_waves,
    change_hash,
    plan_waves,
)
from trading_operator.plans import EmitEvent

NAMES = ["a", "b", "c", "d", "e", "f", "g", "h"]
SPEC: dict[str, Any] = {"selector": {"matchLabels": {"tier": "equities"}},
                        "change": {"image": "ghcr.io/tradeops/trading-runtime:2.0.0"},
                        "steps": ["1", "25%", "50%", "100%"]}
"""Over 8 symbols: waves a | b | c d | e f g h."""
HASH = change_hash(FleetRolloutSpec.model_validate(SPEC))
OURS = FleetOverride(rollout="wave", change=HASH, image="ghcr.io/tradeops/trading-runtime:2.0.0")
TS_SPEC = {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/tradeops/trading-runtime:1.0.0"}


def settled(revision: int, fleet: str | None = None) -> TradingSymbolStatus:
    """A symbol running `revision`, promoted (stable)."""
    return TradingSymbolStatus(current_revision=revision, stable_revision=revision, update_revision=revision,
                               fleet_change=fleet)


ANALYSING = TradingSymbolStatus(current_revision=2, stable_revision=1, update_revision=2, fleet_change=OURS.ref)
ABORTED = TradingSymbolStatus.model_validate({
    "currentRevision": 1, "stableRevision": 1, "updateRevision": 2, "abortedRevision": 2, "fleetChange": OURS.ref,
    "lastRollback": {"fromRevision": 2, "toRevision": 1, "reason": "AnalysisFailed: tick-to-signal-latency 0.9",
                     "time": "2026-12-06T00:00:00Z"}})
PROMOTED = settled(2, OURS.ref)


def symbol(name: str, status: TradingSymbolStatus | None = None, override: FleetOverride | None = None,
           labels: dict[str, str] | None = None, spec: dict[str, Any] | None = None) -> ObservedSymbol:
    return ObservedSymbol(name, {"tier": "equities"} if labels is None else labels, spec or TS_SPEC, override,
                          status or settled(1))


def fleet(symbols: list[ObservedSymbol], status: dict[str, Any] | None = None, spec: dict[str, Any] | None = None,
          now: str = "2026-12-06T00:01:00Z", abort: bool = False) -> FleetObserved:
    value = json.dumps({"id": "abort-1", "generation": 1, "wave": 1}) if abort else None
    return FleetObserved("wave", 1, spec or SPEC, status or {}, symbols, now, value)


def states(status: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["state"] for s in status["symbols"]}


def touched(actions: list[Any]) -> list[str]:
    return [a.symbol for a in actions if isinstance(a, SetChange)]


def cleared(actions: list[Any]) -> list[str]:
    return sorted(a.symbol for a in actions if isinstance(a, ClearChange))


def reasons(actions: list[Any]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, EmitEvent)]


def run(observed: FleetObserved) -> tuple[list[Any], dict[str, Any]]:
    result = plan_waves(observed)
    assert result.status is not None
    return result.actions, result.status


def started(wave: int, states_: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A stored status: the rollout in `wave`, symbols in the given states (the rest Pending)."""
    waves = dict(zip(NAMES, assign_waves(len(NAMES), SPEC["steps"]), strict=True))
    return {"change": HASH, "currentWave": wave, "waves": 4, "phase": "Progressing",
            "symbols": [{"name": n, "wave": waves[n], "state": states_.get(n, "Pending"), "fromRevision": 1}
                        for n in NAMES], **extra}


@pytest.mark.parametrize(("count", "steps", "waves"), [
    (12, ["1", "25%", "50%", "100%"], [1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4]),
    (8, ["1", "25%", "50%", "100%"], [1, 2, 3, 3, 4, 4, 4, 4]),
    (3, ["1", "25%"], [1, 2, 2]),  # 25 % of 3 is 1 symbol: a wave that adds nobody is dropped; the rest follow
    (5, ["50%"], [1, 1, 1, 2, 2]),
    (2, ["5"], [1, 1]),
    (0, ["1", "100%"], []),
], ids=["twelve", "eight", "empty-wave-dropped", "rest-follows", "count-past-the-end", "nothing-selected"])
def test_waves_are_the_cumulative_steps(count: int, steps: list[str], waves: list[int]) -> None:
    assert assign_waves(count, steps) == waves


def test_the_first_look_hands_the_change_to_the_canary_only() -> None:
    actions, status = run(fleet([symbol(n) for n in NAMES]))
    assert touched(actions) == ["a"]
    assert [a.override for a in actions if isinstance(a, SetChange)] == [OURS]
    assert (status["phase"], status["currentWave"], status["waves"]) == ("Progressing", 1, 4)
    assert states(status) == {"a": "Progressing", **dict.fromkeys(NAMES[1:], "Pending")}
    assert reasons(actions) == ["WaveStarted"]


@pytest.mark.parametrize(("canary", "state"), [
    (symbol("a", settled(1), OURS), "Progressing"),  # the symbol has not applied the change yet
    (symbol("a", ANALYSING, OURS), "Progressing"),  # its new revision is under analysis
    (symbol("a", TradingSymbolStatus(current_revision=1, stable_revision=1, update_revision=2,
                                     fleet_change=OURS.ref), OURS), "Progressing"),  # rolling out
], ids=["not-applied", "analysing", "rolling-out"])
def test_a_wave_waits_for_every_verdict(canary: ObservedSymbol, state: str) -> None:
    actions, status = run(fleet([canary, *(symbol(n) for n in NAMES[1:])], started(1, {"a": "Progressing"})))
    assert touched(actions) == []
    assert states(status)["a"] == state
    assert status["currentWave"] == 1


def test_a_promoted_wave_starts_the_next() -> None:
    actions, status = run(fleet([symbol("a", PROMOTED, OURS), *(symbol(n) for n in NAMES[1:])],
                                started(1, {"a": "Progressing"})))
    assert touched(actions) == ["b"]
    assert reasons(actions) == ["WaveSucceeded", "WaveStarted"]
    assert states(status)["a"] == "Succeeded"
    assert status["currentWave"] == 2
    assert next(s for s in status["symbols"] if s["name"] == "a")["toRevision"] == 2


@pytest.mark.parametrize(("now", "starts"), [
    ("2026-12-06T00:01:00Z", False), ("2026-12-06T00:01:59Z", False), ("2026-12-06T00:02:00Z", True),
], ids=["just-promoted", "one-second-short", "pause-over"])
def test_the_pause_between_waves(now: str, starts: bool) -> None:
    spec = {**SPEC, "pauseSeconds": 60}
    stored = started(1, {"a": "Succeeded"}, waveCompletedAt="2026-12-06T00:01:00Z")
    actions, _ = run(fleet([symbol("a", PROMOTED, OURS), *(symbol(n) for n in NAMES[1:])], stored, spec, now))
    assert touched(actions) == (["b"] if starts else [])


def test_an_aborted_revision_fails_the_wave_and_takes_the_change_back_from_every_symbol_it_reached() -> None:
    world = [symbol("a", PROMOTED, OURS), symbol("b", PROMOTED, OURS), symbol("c", ABORTED, OURS),
             symbol("d", ANALYSING, OURS), *(symbol(n) for n in NAMES[4:])]
    stored = started(3, {"a": "Succeeded", "b": "Succeeded", "c": "Progressing", "d": "Progressing"})
    actions, status = run(fleet(world, stored))
    assert status["phase"] == "Failed"
    assert "c (revision 2 aborted: AnalysisFailed: tick-to-signal-latency 0.9)" in status["message"]
    assert touched(actions) == []  # no further wave
    assert cleared(actions) == ["a", "b", "c", "d"]
    assert states(status) == {**dict.fromkeys("abcd", "RollingBack"), **dict.fromkeys(NAMES[4:], "Pending")}
    assert reasons(actions) == ["WaveFailed"]
    rolled_back = next(c for c in status["conditions"] if c["type"] == "RolledBack")
    assert rolled_back["status"] == "False"


def test_the_rollback_is_done_once_every_touched_symbol_runs_its_own_revision_again() -> None:
    stored = {**started(3, {n: "RollingBack" for n in "abcd"}), "phase": "Failed", "message": "wave 3 failed"}
    still = [symbol("a", settled(1)), symbol("b", ANALYSING.model_copy(update={"fleet_change": None})),
             symbol("c", settled(1)), symbol("d", settled(1)), *(symbol(n) for n in NAMES[4:])]
    actions, status = run(fleet(still, stored))
    assert states(status)["b"] == "RollingBack"
    assert cleared(actions) == []
    done = [symbol(n) for n in NAMES]
    actions, status = run(fleet(done, status))
    assert states(status) == {**dict.fromkeys("abcd", "RolledBack"), **dict.fromkeys(NAMES[4:], "Pending")}
    rolled_back = next(c for c in status["conditions"] if c["type"] == "RolledBack")
    assert rolled_back["status"] == "True"
    assert touched(actions) == []
    assert status["phase"] == "Failed"


def test_an_abort_request_stops_and_rolls_back() -> None:
    world = [symbol("a", PROMOTED, OURS), symbol("b", ANALYSING, OURS), *(symbol(n) for n in NAMES[2:])]
    actions, status = run(fleet(world, started(2, {"a": "Succeeded", "b": "Progressing"}), abort=True))
    assert status["phase"] == "Aborted"
    assert ConsumeAbort() in actions
    assert cleared(actions) == ["a", "b"]
    assert reasons(actions) == ["FleetRolloutAborted"]


def test_every_wave_promoted_completes_the_rollout() -> None:
    world = [symbol(n, PROMOTED, OURS) for n in NAMES]
    actions, status = run(fleet(world, started(4, dict.fromkeys(NAMES, "Progressing"))))
    assert status["phase"] == "Completed"
    assert reasons(actions) == ["FleetRolloutComplete"]
    assert touched(actions) == []
    assert cleared(actions) == []  # the fleet keeps running the change


@pytest.mark.parametrize(("spec", "message"), [
    ({**SPEC, "steps": ["50%", "25%"]}, "spec: Value error, steps: '25%' does not reach further than '50%'"),
    ({**SPEC, "change": {}}, "spec.change: Value error, change: name an image, a config patch, or both"),
    ({**SPEC, "change": {"image": "Not An Image"}}, "spec.change.image: String should match pattern"),
    ({**SPEC, "change": {"config": {"strategy": {"entryScore": "high"}}}},
     "a: spec.config.strategy.entryScore: Input should be a valid number"),
], ids=["steps-shrink", "no-change", "bad-image", "config-breaks-a-symbol"])
def test_invalid_input_touches_nothing(spec: dict[str, Any], message: str) -> None:
    actions, status = run(fleet([symbol(n) for n in NAMES], spec=spec))
    assert status["phase"] == "Invalid"
    assert message in status["message"]
    assert touched(actions) == []
    assert reasons(actions) == ["InvalidSpec"]


def test_symbols_held_by_another_rollout_or_not_selected_are_left_alone() -> None:
    theirs = FleetOverride(rollout="other", change="x", image="ghcr.io/tradeops/trading-runtime:3.0.0")
    world = [symbol("a", override=theirs), symbol("b"), symbol("z", labels={"tier": "futures"})]
    actions, status = run(fleet(world, spec={**SPEC, "steps": ["1"]}))
    assert states(status) == {"a": "Skipped", "b": "Progressing"}
    assert touched(actions) == ["b"]


def test_a_symbol_leaving_the_selection_loses_the_change() -> None:
    world = [symbol("a", PROMOTED, OURS, labels={}), symbol("b")]
    actions, _ = run(fleet(world, spec={**SPEC, "steps": ["1"]}))
    assert cleared(actions) == ["a"]


def test_a_new_change_starts_the_waves_over() -> None:
    stored = {**started(4, dict.fromkeys(NAMES, "Succeeded")), "phase": "Completed"}
    spec = {**SPEC, "change": {"image": "ghcr.io/tradeops/trading-runtime:2.1.0"}}
    actions, status = run(fleet([symbol(n, PROMOTED, OURS) for n in NAMES], stored, spec))
    assert touched(actions) == ["a"]
    assert status["currentWave"] == 1
    assert status["change"] != HASH


def test_a_converged_rollout_writes_nothing() -> None:
    world = [symbol(n, PROMOTED, OURS) for n in NAMES]
    _, status = run(fleet(world, started(4, dict.fromkeys(NAMES, "Progressing"))))
    again = plan_waves(fleet(world, status))
    assert again.status is None
    assert again.actions == []
