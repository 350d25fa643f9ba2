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

from .operator_harness import PATIENCE, create_ts, new_namespace, patch_spec, status, wait_status

POLICIES = pathlib.Path(__file__).parent / "policies" / "paired"
SHADOW_SYMBOL: dict[str, Any] = {
    "policies": {"slo": "paired-calls"},
    # A 2 s horizon scores a point every 2 s; the same calls are promoted after 60 measurements (a second apart).
    "rollout": {"shadow": True, "analysisCount": 60},
    # The pods warm up from the feed's last 60 s of market-data history: the shadow's calls on it pair with
    # stable's live ones as retrospective pairs (they can fail the candidate, never pass it).
    "config": {"strategy": {"horizonSeconds": 2}, "warmup": {"historySeconds": 60}},
}
EVIDENCE_COUNT = 1000
"""The flipped revision's run: 1000 measurements a second apart, longer than the wait, so only its verdict ends
it. On a loaded machine the feed and the pods slow down and pairs come slower than measurements; a run ended by
count first would promote a flipped revision whose (advisory) metric had not gathered its discordant calls."""

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


def _concluded(kube: KubeApi, namespace: str, name: str, revision: int, timeout: float) -> dict[str, Any]:
    """The status once the analysis of `revision` has ended, whatever its verdict (aborted, promoted, held):
    waits on what the operator reports, however long the evidence takes to come on a loaded machine."""
    def ended() -> dict[str, Any] | None:
        current = status(kube, namespace, name)
        run = current.get("analysis") or {}
        done = run.get("revision") == revision and run.get("phase") not in (None, "Running")
        return current if done or revision in (current.get("abortedRevision"), current.get("stableRevision")) \
            else None

    return wait_for(ended, timeout * PATIENCE, f"{namespace}/{name}: the analysis of revision {revision} to end")


def test_flipped_signals_are_aborted_in_shadow_and_the_same_calls_are_promoted(kube: KubeApi) -> None:
    flipped, same = _stable_symbol(kube, "flipped"), _stable_symbol(kube, "same")
    patch_spec(kube, flipped, "flipped", {"config": {"faultInjection": {"accuracyDegradation": 1.0}},
                                          "rollout": {"analysisCount": EVIDENCE_COUNT}})
    patch_spec(kube, same, "same", {"config": {"parameters": {"batchSize": 512}}})

    ended = _concluded(kube, flipped, "flipped", 2, timeout=900)
    assert ended.get("abortedRevision") == 2, (ended.get("analysis") or {}).get("message")
    caught = wait_status(kube, flipped, "flipped", timeout=60, abortedRevision=2, currentRevision=1,
                         stableRevision=1)
    reason = caught["lastRollback"]["reason"]
    assert reason.startswith("AnalysisFailed: signal-calls-vs-stable: worse than stable by"), reason
    failed = [m for m in _paired(caught["analysis"]) if m["phase"] == "Failed"]
    assert failed
    assert all(m["low"] > 0.05 for m in failed)  # the whole confidence sequence past the margin
    assert all(m["samples"] >= 8 for m in failed)  # judged on at least minSamples discordant calls
    wait_for(lambda: kube.get_or_none(DEPLOYMENTS, flipped, "flipped-trading-shadow") is None, 30,
             "the shadow removed")  # stable never stopped trading

    ended = _concluded(kube, same, "same", 2, timeout=900)
    assert ended.get("stableRevision") == 2, (ended.get("analysis") or {}).get("message")
    promoted = wait_status(kube, same, "same", timeout=60, currentRevision=2, stableRevision=2)
    measured = _paired(promoted["analysis"])
    assert measured, "the paired metric was never measured"
    assert not [m for m in measured if m["phase"] == "Failed"], measured
    assert status(kube, same, "same").get("abortedRevision") is None
