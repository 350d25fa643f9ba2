"""FleetRollouts with the real operator against the emulated API (no Prometheus: the lifecycle SLO policy has
nothing to analyse, so a revision is promoted once rolled out): waves to completion, `opsctl fleet list`,
`opsctl fleet abort` taking the change back, pause/resume/retry, and the annotation coming off a Completed
rollout's symbol once its spec carries the change. The analysis-gated failure is tests/integration/
test_fleet_rollout.py (slow)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from devstack.processes import wait_for
from opsctl import fleet_cli
from opsctl.main import app
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.fleet_api import FLEET_ABORT_ANNOTATION, FLEET_API_VERSION, FLEET_KIND, FLEET_RETRY_ANNOTATION
from trading_operator.fleet_handlers import FLEET_ROLLOUTS
from trading_operator.fleet_override import FLEET_CHANGE_ANNOTATION
from trading_operator.kube import KubeApi

from .conftest import Stack
from .operator_harness import SPEC, deployment, events, get_ts, wait_status

pytestmark = pytest.mark.usefixtures("operator")

NEW_IMAGE = "ghcr.io/tradeops/trading-runtime:1.1.0"
NAMES = ["aaa", "bbb", "ccc"]


def _create(kube: KubeApi, ns: str) -> None:
    for name in NAMES:
        kube.create(TRADING_SYMBOLS, ns, {
            "apiVersion": TRADING_SYMBOLS.api_version, "kind": "TradingSymbol",
            "metadata": {"name": name, "namespace": ns, "labels": {"fleet": "x"}},
            "spec": {**SPEC, "symbol": name.upper()}})
    for name in NAMES:
        wait_status(kube, ns, name, timeout=120, phase="Ready", stableRevision=1)


def _rollout(kube: KubeApi, ns: str, name: str, **spec: Any) -> None:
    kube.create(FLEET_ROLLOUTS, ns, {
        "apiVersion": FLEET_API_VERSION, "kind": FLEET_KIND, "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"fleet": "x"}}, "change": {"image": NEW_IMAGE}, **spec}})


def _phase(kube: KubeApi, ns: str, name: str, phase: str) -> dict[str, Any] | None:
    status = kube.get(FLEET_ROLLOUTS, ns, name).get("status") or {}
    return status if status.get("phase") == phase else None


def _image(kube: KubeApi, ns: str, name: str) -> str:
    found = deployment(kube, ns, name)
    assert found is not None
    return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


def _opsctl(stack: Stack, ns: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--kubeconfig", str(stack.kubeconfig), "-n", ns, "fleet", *args])


def test_waves_run_to_completion_without_rewriting_any_spec(stack: Stack, kube: KubeApi, ns: str) -> None:
    _create(kube, ns)
    _rollout(kube, ns, "upgrade", steps=["1"])
    final = wait_for(lambda: _phase(kube, ns, "upgrade", "Completed"), 90, "the FleetRollout Completed")
    assert (final["currentWave"], final["waves"]) == (2, 2)
    assert {s["name"]: (s["wave"], s["state"], s["fromRevision"], s["toRevision"]) for s in final["symbols"]} == {
        "aaa": (1, "Succeeded", 1, 2), "bbb": (2, "Succeeded", 1, 2), "ccc": (2, "Succeeded", 1, 2)}
    for name in NAMES:
        assert _image(kube, ns, name) == NEW_IMAGE
        ts = get_ts(kube, ns, name)
        assert ts["spec"]["image"] == SPEC["image"]
        assert ts["status"]["fleetChange"] == f"upgrade@{final['change']}"
    listed = _opsctl(stack, ns, "list")
    assert listed.exit_code == 0, listed.output
    assert "upgrade" in listed.stdout
    assert "Completed" in listed.stdout
    assert "2/2" in listed.stdout
    assert "3 Succeeded" in listed.stdout
    shown = _opsctl(stack, ns, "status", "upgrade", "-o", "json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["status"]["phase"] == "Completed"


def test_abort_takes_the_change_back_from_the_waves_it_reached(stack: Stack, kube: KubeApi, ns: str) -> None:
    _create(kube, ns)
    _rollout(kube, ns, "held", steps=["1"], pauseSeconds=3600)
    wait_for(lambda: (_phase(kube, ns, "held", "Progressing") or {}).get("waveCompletedAt"), 60,
             "wave 1 promoted and the pause begun")
    assert _image(kube, ns, "aaa") == NEW_IMAGE
    assert _image(kube, ns, "bbb") == SPEC["image"]  # the pause holds wave 2
    aborted = _opsctl(stack, ns, "abort", "held")
    assert aborted.exit_code == 0, aborted.output
    assert "abort accepted" in aborted.stdout
    def rolled_back() -> dict[str, Any] | None:
        status = _phase(kube, ns, "held", "Aborted")
        done = status and any(c["type"] == "RolledBack" and c["status"] == "True" for c in status["conditions"])
        return status if done else None

    final = wait_for(rolled_back, 60, "aborted and rolled back")
    assert {s["name"]: s["state"] for s in final["symbols"]} == {"aaa": "RolledBack", "bbb": "Pending",
                                                                 "ccc": "Pending"}
    assert _image(kube, ns, "aaa") == SPEC["image"]
    assert FLEET_CHANGE_ANNOTATION not in (get_ts(kube, ns, "aaa")["metadata"].get("annotations") or {})
    assert "trading.tradeops.io/fleet-abort" not in (kube.get(FLEET_ROLLOUTS, ns, "held")["metadata"]
                                                     .get("annotations") or {})
    again = _opsctl(stack, ns, "abort", "held")
    assert again.exit_code == 6, again.output
    assert "nothing to abort: the rollout is already Aborted" in again.output
    # Answered once, bound to the generation: a stale abort reaching the stopped rollout is refused.
    stale = json.dumps({"id": "stale-abort", "generation": 0, "wave": 1})
    kube.merge_patch(FLEET_ROLLOUTS, ns, "held", {"metadata": {"annotations": {FLEET_ABORT_ANNOTATION: stale}}})
    refused = wait_for(lambda: _retry_answer(kube, ns, "held", "stale-abort"), 30, "the answer to the stale abort")
    assert (refused["action"], refused["outcome"], refused["reason"]) == ("abort", "Refused", "GenerationMoved")
    answers = (kube.get(FLEET_ROLLOUTS, ns, "held").get("status") or {}).get("requests") or []
    assert [(r["action"], r["outcome"]) for r in answers] == [("abort", "Accepted"), ("abort", "Refused")]


def test_a_change_that_breaks_a_symbol_touches_none(kube: KubeApi, ns: str) -> None:
    _create(kube, ns)
    _rollout(kube, ns, "broken", change={"config": {"strategy": {"entryScore": 5}}})
    final = wait_for(lambda: _phase(kube, ns, "broken", "Invalid"), 30, "the FleetRollout Invalid")
    assert "aaa: spec.config.strategy.entryScore" in final["message"]
    for name in NAMES:
        assert FLEET_CHANGE_ANNOTATION not in (get_ts(kube, ns, name)["metadata"].get("annotations") or {})


def _retry_answer(kube: KubeApi, ns: str, name: str, request_id: str) -> dict[str, Any] | None:
    requests = (kube.get(FLEET_ROLLOUTS, ns, name).get("status") or {}).get("requests") or []
    return next((r for r in requests if r["id"] == request_id), None)


def test_pause_resume_retry_and_the_annotation_coming_off_once_the_spec_carries_the_change(
        stack: Stack, kube: KubeApi, ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(kube, ns)
    _rollout(kube, ns, "up", steps=["1"], pauseSeconds=3600)
    wait_for(lambda: (_phase(kube, ns, "up", "Progressing") or {}).get("waveCompletedAt"), 60,
             "wave 1 promoted and the pause begun")
    early = _opsctl(stack, ns, "retry", "up")
    assert early.exit_code == 6, early.output
    assert "nothing to retry: the rollout is Progressing" in early.output
    # A pause decided on a spec that changed before it was sent is refused, not applied to the new spec.
    real_get = fleet_cli._get

    def read_then_spec_changes(target: Any, name: str) -> dict[str, Any]:
        rollout = real_get(target, name)
        monkeypatch.setattr(fleet_cli, "_get", real_get)
        kube.merge_patch(FLEET_ROLLOUTS, ns, "up", {"spec": {"pauseSeconds": 3601}})
        return rollout

    monkeypatch.setattr(fleet_cli, "_get", read_then_spec_changes)
    raced = _opsctl(stack, ns, "pause", "up")
    assert raced.exit_code == 6, raced.output
    assert "pause refused: the spec changed since opsctl read it" in raced.output
    assert not kube.get(FLEET_ROLLOUTS, ns, "up")["spec"].get("paused")
    paused = _opsctl(stack, ns, "pause", "up")
    assert paused.exit_code == 0, paused.output
    wait_for(lambda: _phase(kube, ns, "up", "Paused"), 30, "the FleetRollout Paused")
    assert _opsctl(stack, ns, "abort", "up").exit_code == 0
    wait_for(lambda: _phase(kube, ns, "up", "Aborted"), 30, "the FleetRollout Aborted")
    wait_for(lambda: any(c["type"] == "RolledBack" and c["status"] == "True"
                         for c in (_phase(kube, ns, "up", "Aborted") or {}).get("conditions", [])), 60,
             "aaa back on its own spec")
    assert _opsctl(stack, ns, "pause", "up").exit_code == 6, "nothing to pause once stopped"
    held = _opsctl(stack, ns, "retry", "up")
    assert held.exit_code == 6
    assert "paused" in held.output
    assert _opsctl(stack, ns, "resume", "up").exit_code == 0
    # Bound to the generation: a request made before the spec changed is refused by the operator.
    stale = json.dumps({"id": "stale-1", "generation": 1, "wave": 1})
    kube.merge_patch(FLEET_ROLLOUTS, ns, "up", {"metadata": {"annotations": {FLEET_RETRY_ANNOTATION: stale}}})
    refused = wait_for(lambda: _retry_answer(kube, ns, "up", "stale-1"), 30, "the answer to the stale retry")
    assert (refused["outcome"], refused["reason"]) == ("Refused", "GenerationMoved")
    assert _phase(kube, ns, "up", "Aborted")
    shown = _opsctl(stack, ns, "status", "up")
    assert shown.exit_code == 0, shown.output
    assert "last request: retry of wave 1 Refused (GenerationMoved)" in shown.stdout
    retried = _opsctl(stack, ns, "retry", "up", "-o", "json")
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["outcome"] == "Accepted"
    wait_for(lambda: (_phase(kube, ns, "up", "Progressing") or {}).get("waveCompletedAt"), 60,
             "wave 1 promoted again after the retry")
    again = kube.get(FLEET_ROLLOUTS, ns, "up")["status"]
    assert again["currentWave"] == 1
    assert {s["name"]: s["state"] for s in again["symbols"]} == {"aaa": "Succeeded", "bbb": "Pending",
                                                                 "ccc": "Pending"}, again
    assert _image(kube, ns, "aaa") == NEW_IMAGE
    assert _image(kube, ns, "bbb") == SPEC["image"]
    # The wave's completion is stamped anew (the retry's status patch nulls the old stamp): the pause counts
    # from the second promotion, and it is announced again.
    assert again["waveCompletedAt"] >= refused["time"]
    said = [e["reason"] for e in events(kube, ns, "up")]
    assert (said.count("WaveSucceeded"), said.count("FleetRolloutRetried"), said.count("RequestRefused")) == (2, 1, 1)
    kube.merge_patch(FLEET_ROLLOUTS, ns, "up", {"spec": {"pauseSeconds": 0}})
    wait_for(lambda: _phase(kube, ns, "up", "Completed"), 90, "the FleetRollout Completed")
    # aaa's spec in git now says the same as the change: the annotation comes off, no new revision.
    before = get_ts(kube, ns, "aaa")["status"]
    kube.merge_patch(TRADING_SYMBOLS, ns, "aaa", {"spec": {"image": NEW_IMAGE}})

    def committed() -> dict[str, Any] | None:
        status = _phase(kube, ns, "up", "Completed") or {}
        return status if {s["name"]: s["state"] for s in status.get("symbols", [])}.get("aaa") == "Committed" \
            else None

    final = wait_for(committed, 30, "aaa Committed")
    assert {s["name"]: s["state"] for s in final["symbols"]} == {"aaa": "Committed", "bbb": "Succeeded",
                                                                 "ccc": "Succeeded"}
    wait_for(lambda: get_ts(kube, ns, "aaa")["status"].get("fleetChange") is None, 30, "aaa without the change")
    aaa = get_ts(kube, ns, "aaa")
    assert FLEET_CHANGE_ANNOTATION not in (aaa["metadata"].get("annotations") or {})
    assert (aaa["status"]["currentRevision"], aaa["status"]["updateRevision"]) == \
        (before["currentRevision"], before["updateRevision"])
    assert _image(kube, ns, "aaa") == NEW_IMAGE
    assert FLEET_CHANGE_ANNOTATION in (get_ts(kube, ns, "bbb")["metadata"].get("annotations") or {})
