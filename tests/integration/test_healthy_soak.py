"""Healthy symbols are left alone: the whole local stack (feed, Prometheus scraping every second, runtime
processes as pods, the operator with the shipped policies but the loaded-machine latency objective of
policies/analysis/slo.yaml) runs two healthy symbols under background analysis for a few minutes, and a
healthy config change is promoted. No SelfHealingRestart, no rollback: the false alarms of issue 16 (a hit
rate judged on a handful of signals, the operator's own restart read as unavailability) must not come back."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import pytest

from devstack.processes import free_port, kube_for
from devstack.stack import AnalysisStack, start_analysis_stack
from trading_operator.kube import KubeApi

from .operator_harness import create_ts, events, new_namespace, patch_spec, status, wait_status
from .test_operator_at_rest import measured_at

pytestmark = pytest.mark.slow
SOAK_SECONDS = 150
"""Fifteen background measurements of each symbol (every 10 s), after the 20 s warm-up."""
POLICIES = pathlib.Path(__file__).parent / "policies" / "analysis"
"""Its SLO policy only (the others there are named, used by symbols that ask for them): tick-to-signal counts from
the feed's schedule, and this shared machine's own delay of the feed breaches 50 ms at load 30."""
ACTIONS = {"SelfHealingRestart", "SelfHealingExhausted", "RolledBack", "AnalysisFailed", "AnalysisInconclusive"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnalysisStack, str]]:
    """The stack and the operator's /metrics."""
    port = free_port()
    running = start_analysis_stack(tmp_path_factory.mktemp("soak"), POLICIES, time_scale=0.2,
                                   operator_env={"TRADEOPS_METRICS_PORT": str(port)})
    try:
        yield running, f"http://127.0.0.1:{port}/metrics"
    finally:
        running.stop()


def test_healthy_symbols_under_background_analysis_are_never_restarted_or_rolled_back(
        stack: tuple[AnalysisStack, str]):
    running, metrics_url = stack
    kube: KubeApi = kube_for(running.kubeconfig)
    namespace = new_namespace(kube)
    for name, symbol, market in (("qqq", "QQQ", "equity-options"), ("es", "ES", "futures-options")):
        create_ts(kube, namespace, name, symbol=symbol, market=market,
                  config={"parameters": {"batchSize": 512}})
    for name in ("qqq", "es"):
        wait_status(kube, namespace, name, timeout=180, phase="Ready", currentRevision=1, stableRevision=1)

    # A healthy change is promoted on its analysis, not rolled back.
    patch_spec(kube, namespace, "qqq", {"config": {"parameters": {"batchSize": 1024}}})
    promoted = wait_status(kube, namespace, "qqq", timeout=180, phase="Ready", currentRevision=2, stableRevision=2)
    assert promoted["analysis"]["phase"] == "Successful"
    assert not any(m["phase"] == "Failed" for m in promoted["analysis"]["measurements"])

    soak_start = time.monotonic()
    started_at = time.time()
    while time.monotonic() - soak_start < SOAK_SECONDS:
        for name in ("qqq", "es"):
            acted = ACTIONS & {e["reason"] for e in events(kube, namespace, name)}
            assert not acted, f"{name}: {acted}: {[e['message'] for e in events(kube, namespace, name)]}"
        time.sleep(5)

    measured = measured_at(metrics_url, namespace)
    for name, stable in (("qqq", 2), ("es", 1)):
        final = status(kube, namespace, name)
        assert (final["phase"], final["stableRevision"], final["currentRevision"]) == ("Ready", stable, stable)
        background = final.get("background") or {}
        # Background analysis really ran through the soak (it is not silent because it never measured), and
        # Prometheus answered it: a healthy measurement writes nothing, its time is on the operator's /metrics.
        assert measured[name] > started_at + SOAK_SECONDS - 30, (name, measured, started_at)
        assert "unansweredSince" not in background, background
        assert background.get("consecutiveBreaches", 0) == 0
        assert not background.get("actions")
