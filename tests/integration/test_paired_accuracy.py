"""A revision whose signals are wrong is caught by comparing its calls with the stable revision's on the same
points (signal-calls-vs-stable), end to end: the synthetic feed with its seeded order-flow edge (where the
strategy has skill, so a wrong call is wrong), real trading-runtime processes for the stable pod and the
shadow, the real operator reading both pods' `/decisions` and deciding. Nothing about the calls is faked.

The SLO policy here holds only the paired metric, so the verdicts below are that metric's alone."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.processes import kube_for, wait_for
from devstack.stack import start_analysis_stack
from trading_operator.kube import DEPLOYMENTS, KubeApi

from .operator_harness import create_ts, new_namespace, patch_spec, status, wait_status

POLICIES = pathlib.Path(__file__).parent / "policies" / "paired"
SHADOW_SYMBOL: dict[str, Any] = {
    "policies": {"slo": "paired-calls"},
    # A 2 s horizon scores a point every 2 s; 60 measurements (a second apart) leave a minute for the pairs.
    "rollout": {"shadow": True, "analysisCount": 60},
    "config": {"strategy": {"horizonSeconds": 2}},
}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    running = start_analysis_stack(tmp_path_factory.mktemp("paired"), POLICIES, time_scale=0.2, feed_edge=1.0)
    try:
        yield kube_for(running.kubeconfig)
    finally:
        running.stop()


def _stable_symbol(kube: KubeApi, name: str) -> str:
    namespace = new_namespace(kube)
    create_ts(kube, namespace, name, **SHADOW_SYMBOL)
    wait_status(kube, namespace, name, timeout=90, phase="Ready", currentRevision=1, stableRevision=1)
    return namespace


def _paired(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in run.get("measurements") or [] if m["metric"] == "signal-calls-vs-stable"]


def test_flipped_signals_are_aborted_in_shadow_and_the_same_calls_are_promoted(kube: KubeApi) -> None:
    flipped, same = _stable_symbol(kube, "flipped"), _stable_symbol(kube, "same")
    patch_spec(kube, flipped, "flipped", {"config": {"faultInjection": {"accuracyDegradation": 1.0}}})
    patch_spec(kube, same, "same", {"config": {"parameters": {"batchSize": 512}}})

    caught = wait_status(kube, flipped, "flipped", timeout=240, abortedRevision=2, currentRevision=1,
                         stableRevision=1)
    reason = caught["lastRollback"]["reason"]
    assert reason.startswith("AnalysisFailed: signal-calls-vs-stable: worse than stable by"), reason
    failed = [m for m in _paired(caught["analysis"]) if m["phase"] == "Failed"]
    assert failed
    assert all(m["low"] > 0.05 for m in failed)
    assert all(m["samples"] >= 20 for m in failed)  # judged on at least minSamples discordant calls
    wait_for(lambda: kube.get_or_none(DEPLOYMENTS, flipped, "flipped-trading-shadow") is None, 30,
             "the shadow removed")  # stable never stopped trading

    promoted = wait_status(kube, same, "same", timeout=240, currentRevision=2, stableRevision=2)
    measured = _paired(promoted["analysis"])
    assert measured, "the paired metric was never measured"
    assert not [m for m in measured if m["phase"] == "Failed"], measured
    assert status(kube, same, "same").get("abortedRevision") is None
