"""FleetRollouts with the real operator against the emulated API (no Prometheus: the lifecycle SLO policy has
nothing to analyse, so a revision is promoted once rolled out): waves to completion, `opsctl fleet list`, and
`opsctl fleet abort` taking the change back. The analysis-gated failure is tests/integration/
test_fleet_rollout.py (slow)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from devstack.processes import wait_for
from opsctl.main import app
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.fleet_api import FLEET_API_VERSION, FLEET_KIND
from trading_operator.fleet_handlers import FLEET_ROLLOUTS
from trading_operator.fleet_override import FLEET_CHANGE_ANNOTATION
from trading_operator.kube import KubeApi

from .conftest import Stack
from .operator_harness import SPEC, deployment, get_ts, wait_status

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
    assert "abort requested" in aborted.stdout
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
    assert again.exit_code == 0
    assert "already Aborted" in again.stdout


def test_a_change_that_breaks_a_symbol_touches_none(kube: KubeApi, ns: str) -> None:
    _create(kube, ns)
    _rollout(kube, ns, "broken", change={"config": {"strategy": {"entryScore": 5}}})
    final = wait_for(lambda: _phase(kube, ns, "broken", "Invalid"), 30, "the FleetRollout Invalid")
    assert "aaa: spec.config.strategy.entryScore" in final["message"]
    for name in NAMES:
        assert FLEET_CHANGE_ANNOTATION not in (get_ts(kube, ns, name)["metadata"].get("annotations") or {})
