"""A FleetRollout over 12 symbols on the whole local stack: the synthetic feed serving 12 tickers, a real
Prometheus scraping 12 real trading-runtime processes (one per pod the emulated kubelet runs), and the real
operator reconciling both the FleetRollout and the TradingSymbols.

The change is a new runtime image that costs 3 ms more per tick (on the devstack every runtime image runs
the working tree, so the slowness travels as the change's config patch). Eleven symbols are held to a
loaded-machine SLO (95 % of ticks within 250 ms; policies/fleet/slo.yaml says why) and absorb it; `iwm` is
held to a 2 ms SLO and breaches. With steps [1, 25%, 50%, 100%] over 12 symbols in name order the waves
are aapl | amzn dia | es goog iwm | the other six: waves 1 and 2 must promote, wave 3 must fail on iwm's
analysis, wave 4 must never get the change, and every symbol the change reached must run its revision 1
again."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from devstack.processes import kube_for, wait_for
from devstack.stack import AnalysisStack, start_analysis_stack
from opsctl.main import app
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.fleet_api import FLEET_API_VERSION, FLEET_KIND
from trading_operator.fleet_handlers import FLEET_ROLLOUTS
from trading_operator.fleet_override import FLEET_CHANGE_ANNOTATION
from trading_operator.kube import KubeApi, Resource

from .operator_harness import SPEC, events, new_namespace, revisions, status

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

POLICIES = pathlib.Path(__file__).parent / "policies" / "fleet"
TICKERS = ["AAPL", "AMZN", "DIA", "ES", "GOOG", "IWM", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA"]
BREACHING = "iwm"
WAVES = [["aapl"], ["amzn", "dia"], ["es", "goog", "iwm"], ["meta", "msft", "nvda", "qqq", "spy", "tsla"]]
NEW_IMAGE = "ghcr.io/tradeops/trading-runtime:1.1.0"
SLOWER = {"faultInjection": {"extraLatencyMs": 3}}
PODS = Resource("v1", "pods")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalysisStack]:
    running = start_analysis_stack(tmp_path_factory.mktemp("fleet"), POLICIES, symbols=",".join(TICKERS),
                                   operator_env={"TRADEOPS_FLEET_INTERVAL_SECONDS": "1"}, time_scale=0.2)
    try:
        yield running
    finally:
        running.stop()


def _symbol(namespace: str, ticker: str) -> dict[str, Any]:
    name = ticker.lower()
    spec: dict[str, Any] = {**SPEC, "symbol": ticker, "rollout": {"analysisCount": 3}}
    if ticker == "ES":
        spec["market"] = "futures-options"
    spec["policies"] = {"slo": "strict-latency", "analysis": "report-only"} if name == BREACHING \
        else {"slo": "loaded-machine"}
    return {"apiVersion": TRADING_SYMBOLS.api_version, "kind": "TradingSymbol",
            "metadata": {"name": name, "namespace": namespace, "labels": {"fleet": "equities"}}, "spec": spec}


def _rollout(namespace: str) -> dict[str, Any]:
    return {"apiVersion": FLEET_API_VERSION, "kind": FLEET_KIND,
            "metadata": {"name": "runtime-1-1", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"fleet": "equities"}},
                     "change": {"image": NEW_IMAGE, "config": SLOWER}, "steps": ["1", "25%", "50%", "100%"]}}


def _ready_revisions(kube: KubeApi, namespace: str, name: str) -> set[str]:
    return {p["metadata"]["labels"].get("trading.tradeops.io/revision", "")
            for p in kube.list_objects(PODS, namespace)
            if p["metadata"]["labels"].get("app.kubernetes.io/instance") == name
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))}


def test_a_breach_in_wave_three_stops_the_rollout_and_rolls_back_what_it_reached(stack: AnalysisStack) -> None:
    started = time.monotonic()
    kube = kube_for(stack.kubeconfig)
    namespace = new_namespace(kube)
    for ticker in TICKERS:
        kube.create(TRADING_SYMBOLS, namespace, _symbol(namespace, ticker))
    names = [t.lower() for t in TICKERS]
    wait_for(lambda: all(status(kube, namespace, n).get("stableRevision") == 1
                         and status(kube, namespace, n).get("phase") == "Ready" for n in names),
             240, "12 symbols Ready on revision 1")
    kube.create(FLEET_ROLLOUTS, namespace, _rollout(namespace))

    def rollout() -> dict[str, Any]:
        return kube.get(FLEET_ROLLOUTS, namespace, "runtime-1-1").get("status") or {}

    def rolled_back() -> dict[str, Any] | None:
        current = rollout()
        done = any(c["type"] == "RolledBack" and c["status"] == "True" for c in current.get("conditions", []))
        return current if done else None

    final = wait_for(rolled_back, 600, "the FleetRollout Failed and rolled back")
    assert final["phase"] == "Failed", final["message"]
    assert final["currentWave"] == 3, final["message"]
    assert final["waves"] == 4
    assert BREACHING in final["message"]
    states = {s["name"]: s for s in final["symbols"]}
    assert [[n for n in names if states[n]["wave"] == w] for w in (1, 2, 3, 4)] == WAVES
    touched = [n for wave in WAVES[:3] for n in wave]
    assert {n: states[n]["state"] for n in touched} == dict.fromkeys(touched, "RolledBack")
    assert {n: states[n]["state"] for n in WAVES[3]} == dict.fromkeys(WAVES[3], "Pending")
    fleet_events = [e for e in kube.list_objects(Resource("v1", "events"), namespace)
                    if e["involvedObject"]["kind"] == FLEET_KIND]
    reasons = [e["reason"] for e in sorted(fleet_events, key=lambda e: e["firstTimestamp"])]
    assert reasons.count("WaveStarted") == 3
    assert reasons.count("WaveSucceeded") == 2
    failed = next(e for e in fleet_events if e["reason"] == "WaveFailed")
    assert "iwm" in failed["message"]
    assert "tick-to-signal-latency" in failed["message"]
    # Waves 1 and 2 really ran the change and promoted it before the breach stopped everything.
    for name in WAVES[0] + WAVES[1]:
        assert "Promoted" in {e["reason"] for e in events(kube, namespace, name)}, name
        assert states[name]["toRevision"] == 2
    # The breaching symbol's new revision was judged on its measured latency and aborted by its own rollout.
    assert any(e["reason"] == "RolledBack" and "tick-to-signal-latency" in e["message"]
               for e in events(kube, namespace, BREACHING))
    # The later wave never got the change: no annotation, never a second revision.
    for name in WAVES[3]:
        ts = kube.get(TRADING_SYMBOLS, namespace, name)
        assert FLEET_CHANGE_ANNOTATION not in (ts["metadata"].get("annotations") or {})
        assert revisions(kube, namespace, name) == [1], name
    # Everything the change reached runs its own spec's revision 1 again, and nothing else is ready.
    for name in touched:
        ts = kube.get(TRADING_SYMBOLS, namespace, name)
        assert FLEET_CHANGE_ANNOTATION not in (ts["metadata"].get("annotations") or {})
        assert ts["spec"]["image"] == SPEC["image"]  # the spec (git's) was never rewritten
        assert (ts["status"]["currentRevision"], ts["status"]["stableRevision"]) == (1, 1), name
        assert "fleetChange" not in ts["status"]
    wait_for(lambda: all(_ready_revisions(kube, namespace, n) == {"1"} for n in touched), 60,
             "only revision 1's pods ready on every touched symbol")
    shown = CliRunner().invoke(app, ["--kubeconfig", str(stack.kubeconfig), "-n", namespace, "fleet", "status",
                                     "runtime-1-1"])
    assert shown.exit_code == 0, shown.output
    assert "Failed" in shown.stdout
    assert "iwm" in shown.stdout
    assert "RolledBack" in shown.stdout
    print(f"fleet rollout of 12 symbols, breach in wave 3: {time.monotonic() - started:.0f}s wall time")
