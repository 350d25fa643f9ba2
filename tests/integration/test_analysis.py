"""Analysis end to end: real Prometheus (1 s scrape) scraping real trading-runtime processes fed by the
synthetic market, the real operator (kopf) against the emulated API, whose kubelet runs each Pod of the
Deployments the operator writes as a runtime process. Nothing about the measurements is faked."""

from __future__ import annotations

import pathlib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from devstack.processes import PrometheusProcess, free_port, kube_for, wait_for
from devstack.stack import start_analysis_stack
from opsctl.errors import ExitCode
from opsctl.main import app
from trading_operator import naming
from trading_operator.kube import CONFIGMAPS, DEPLOYMENTS, KubeApi, Resource

from .operator_harness import (
    condition,
    create_ts,
    events,
    new_namespace,
    patch_spec,
    status,
    wait_event,
    wait_status,
)

POLICIES = pathlib.Path(__file__).parent / "policies" / "analysis"
PODS = Resource("v1", "pods")
FAST = {"analysisCount": 3}
"""Three measurements 2 s apart after a 4 s delay: a healthy run takes about 10 s."""
TIME_SCALE = 0.2
"""The kubelet's probe periods and back-off at a fifth (the readiness probe every second, not five)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    metrics_port = free_port()
    running = start_analysis_stack(tmp_path_factory.mktemp("analysis"), POLICIES,
                                   operator_env={"TRADEOPS_METRICS_PORT": str(metrics_port)}, time_scale=TIME_SCALE)
    try:
        yield Stack(kube_for(running.kubeconfig), running.prometheus, f"http://127.0.0.1:{metrics_port}/metrics",
                    running.kubeconfig)
    finally:
        running.stop()


@dataclass
class Stack:
    kube: KubeApi
    prometheus: PrometheusProcess
    operator_metrics: str
    kubeconfig: pathlib.Path

    def operator_metric(self, name: str, **labels: str) -> float:
        """A sample of the operator's own /metrics, 0 when absent."""
        text = urllib.request.urlopen(self.operator_metrics, timeout=5).read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


def _stable_first_revision(stack: Stack, name: str, **spec: object) -> str:
    namespace = new_namespace(stack.kube)
    create_ts(stack.kube, namespace, name, rollout=FAST, **spec)
    wait_status(stack.kube, namespace, name, timeout=60, phase="Ready", currentRevision=1, stableRevision=1)
    return namespace


def test_healthy_revision_is_analysed_and_promoted(stack: Stack) -> None:
    namespace = _stable_first_revision(stack, "spy")
    patch_spec(stack.kube, namespace, "spy", {"config": {"strategy": {"entryScore": 0.65}}})
    final = wait_status(stack.kube, namespace, "spy", timeout=60, phase="Ready", currentRevision=2, stableRevision=2)
    run = final["analysis"]
    assert run["revision"] == 2
    assert run["phase"] == "Successful"
    latency = [m for m in run["measurements"] if m["metric"] == "tick-to-signal-latency"]
    passed = [m for m in latency if m["phase"] == "Successful"]
    assert len(passed) >= 3
    # The share of ticks over 250 ms (policies/analysis/slo.yaml), judged on at least 20 ticks with its interval
    # wholly below 5 %.
    assert all(0 <= m["value"] <= m["high"] < 0.05 and m["samples"] >= 20 for m in passed)
    assert not any(m["phase"] == "Failed" for m in run["measurements"])
    promoted = wait_event(stack.kube, namespace, "spy", "Promoted")
    assert "analysis successful" in promoted["message"]
    assert "RolledBack" not in {e["reason"] for e in events(stack.kube, namespace, "spy")}
    assert stack.operator_metric("tradeops_operator_promotions_total", namespace=namespace, symbol="SPY") == 1


def test_injected_latency_is_rolled_back_with_the_measured_values(stack: Stack) -> None:
    namespace = _stable_first_revision(stack, "qqq", symbol="QQQ")
    patch_spec(stack.kube, namespace, "qqq", {"config": {"faultInjection": {"extraLatencyMs": 120}}})
    final = wait_status(stack.kube, namespace, "qqq", timeout=60, phase="Degraded", currentRevision=1,
                        stableRevision=1, abortedRevision=2)
    assert final["analysis"]["phase"] == "Failed"
    failed = [m for m in final["analysis"]["measurements"] if m["phase"] == "Failed"]
    assert failed
    assert failed[0]["metric"] == "tick-to-signal-latency"
    assert failed[0]["low"] > 0.05  # the whole interval of the slow-tick share above 5 %
    assert final["lastRollback"]["reason"].startswith("AnalysisFailed: tick-to-signal-latency")
    degraded = condition(stack.kube, namespace, "qqq", "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "RolledBack"
    rolled_back = wait_event(stack.kube, namespace, "qqq", "RolledBack")
    assert "not below 0.05" in rolled_back["message"]
    # The measured share of slow ticks appears in the Event, with the ticks it was judged on.
    judged = rolled_back["message"].split("tick-to-signal-latency: ")[1]
    measured, ticks = judged.split(" (")[0], judged.split(" of ")[1].split(" ticks over 250 ms")[0]
    assert float(measured) > 0.05
    assert float(ticks) >= 20
    # The stable revision's process runs again; the spec in git still asks for revision 2's config.
    assert stack.operator_metric("tradeops_operator_rollbacks_total", namespace=namespace, symbol="QQQ") == 1
    assert stack.operator_metric("tradeops_operator_analysis_runs_total", namespace=namespace, symbol="QQQ",
                                 verdict="Failed") == 1
    def revisions_ready() -> set[str]:
        return {p["metadata"]["labels"][naming.REVISION_LABEL] for p in stack.kube.list_objects(PODS, namespace)
                if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))}

    wait_for(lambda: revisions_ready() == {"1"}, 30, "only revision 1's pods ready")


def test_promote_through_opsctl_ends_a_running_analysis_once(stack: Stack) -> None:
    namespace = new_namespace(stack.kube)
    create_ts(stack.kube, namespace, "promo", rollout={"analysisCount": 40})  # a run of ~80 s
    wait_status(stack.kube, namespace, "promo", timeout=60, phase="Ready", stableRevision=1)
    patch_spec(stack.kube, namespace, "promo", {"config": {"strategy": {"entryScore": 0.66}}})
    wait_for(lambda: (status(stack.kube, namespace, "promo").get("analysis") or {}).get("revision") == 2, 60,
             "the analysis of revision 2 running")
    opsctl = ["--kubeconfig", str(stack.kubeconfig), "-n", namespace]
    result = CliRunner().invoke(app, [*opsctl, "promote", "promo"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "promo: promote of revision 2 accepted: promote of revision 2"
    final = wait_status(stack.kube, namespace, "promo", timeout=30, stableRevision=2, currentRevision=2)
    assert (final["analysis"]["phase"], final["analysis"]["message"]) == ("Successful", "promoted by request")
    assert [r["outcome"] for r in final["requests"]] == ["Accepted"]
    again = CliRunner().invoke(app, [*opsctl, "promote", "promo"])
    assert again.exit_code == ExitCode.REJECTED
    assert "revision 2 is already stable" in again.stderr


def test_shadow_revision_runs_beside_stable_and_takes_over_when_it_passes(stack: Stack) -> None:
    namespace = _stable_first_revision(stack, "es", symbol="ES", market="futures-options")
    patch_spec(stack.kube, namespace, "es", {"rollout": {**FAST, "shadow": True},
                                             "config": {"strategy": {"entryScore": 0.7}}})

    def shadow_running() -> dict[str, object] | None:
        current = status(stack.kube, namespace, "es")
        run = current.get("analysis") or {}
        return current if run.get("kind") == "Shadow" and run.get("revision") == 2 else None

    during = wait_for(shadow_running, 60, "a shadow analysis of revision 2")
    assert during["currentRevision"] == 1  # stable keeps trading while the shadow is judged
    shadow = stack.kube.get_or_none(DEPLOYMENTS, namespace, "es-trading-shadow")
    assert shadow is not None
    assert shadow["spec"]["template"]["metadata"]["labels"]["trading.tradeops.io/track"] == "shadow"
    shadow_config = stack.kube.get_or_none(CONFIGMAPS, namespace, "es-trading-shadow")
    assert shadow_config is not None
    assert "tradingEnabled: false" in shadow_config["data"]["switches.yaml"]
    final = wait_status(stack.kube, namespace, "es", timeout=60, phase="Ready", currentRevision=2, stableRevision=2)
    assert final["analysis"]["baselineRevision"] == 1
    wait_for(lambda: stack.kube.get_or_none(DEPLOYMENTS, namespace, "es-trading-shadow") is None, 20,
             "the shadow removed")


def test_tuning_keeps_an_improvement_and_reverts_a_step_that_breaches_an_slo(stack: Stack) -> None:
    namespace = _stable_first_revision(stack, "tuned", config={"faultInjection": {"extraLatencyMs": 20}},
                                       policies={"tuning": "latency-test"})

    def tuned() -> dict[str, object] | None:
        current = status(stack.kube, namespace, "tuned")
        history = (current.get("tuning") or {}).get("history") or []
        return current if any(h["outcome"] == "Kept" for h in history) else None

    final = wait_for(tuned, 150, "a kept tuning proposal")
    history = final["tuning"]["history"]  # type: ignore[index]
    breach = next(h for h in history if h["outcome"] == "SLOBreach")
    assert (breach["fromValue"], breach["toValue"]) == (20, 50)
    kept = next(h for h in history if h["outcome"] == "Kept")
    assert (kept["fromValue"], kept["toValue"]) == (20, 0)
    assert kept["objective"] < kept["baseline"]
    wait_status(stack.kube, namespace, "tuned", timeout=30, phase="Ready")
    assert final["tuning"]["overrides"] == {"faultInjection.extraLatencyMs": 0}  # type: ignore[index]
    # Events follow the status write that decided them: wait for them rather than read once.
    reasons = wait_for(lambda: (r := [e["reason"] for e in events(stack.kube, namespace, "tuned")])
                       and {"TuningReverted", "TuningKept"} <= set(r) and r, 30, "the tuning Events")
    assert "TuningReverted" in reasons
    assert "TuningKept" in reasons


def test_background_breach_restarts_once_then_marks_degraded(stack: Stack) -> None:
    namespace = _stable_first_revision(stack, "sick", config={"faultInjection": {"extraLatencyMs": 120}},
                                       policies={"analysis": "fast-background"})
    restart = wait_event(stack.kube, namespace, "sick", "SelfHealingRestart", timeout=60)
    assert "tick-to-signal-latency" in restart["message"]
    exhausted = wait_event(stack.kube, namespace, "sick", "SelfHealingExhausted", timeout=60)
    assert "left to people" in exhausted["message"]
    degraded = wait_for(lambda: (c := condition(stack.kube, namespace, "sick", "Degraded")).get("reason")
                        == "SelfHealingExhausted" and c, 20, "Degraded: SelfHealingExhausted")
    assert degraded["status"] == "True"
    assert [e["reason"] for e in events(stack.kube, namespace, "sick")].count("SelfHealingRestart") == 1


def test_prometheus_stopped_during_analysis_is_inconclusive_never_a_rollback(stack: Stack) -> None:
    namespace = _stable_first_revision(stack, "dark", symbol="QQQ")
    stack.prometheus.stop()
    try:
        patch_spec(stack.kube, namespace, "dark", {"config": {"strategy": {"entryScore": 0.7}}})
        final = wait_status(stack.kube, namespace, "dark", timeout=60, phase="Paused", currentRevision=2)
        assert final["analysis"]["phase"] == "Inconclusive"
        assert "unreachable" in final["analysis"]["message"]
        paused = condition(stack.kube, namespace, "dark", "Paused")
        assert paused["reason"] == "AnalysisInconclusive"
        assert final["stableRevision"] == 1
        assert "abortedRevision" not in final
        assert "RolledBack" not in {e["reason"] for e in events(stack.kube, namespace, "dark")}
    finally:
        stack.prometheus.start()


def test_a_model_that_cannot_load_is_a_model_fallback_condition_from_the_runtimes_gauge(stack: Stack) -> None:
    """The runtime falls back to the rule-based combiner (tradeops_model_serving 0); the operator reads the gauge
    from Prometheus and the planner says so in the ModelFallback condition, with an Event."""
    namespace = _stable_first_revision(stack, "fallback", config={"ml": {"modelPath": "/nonexistent/meta.onnx"}})
    fell_back = wait_event(stack.kube, namespace, "fallback", "ModelFallback", timeout=90)
    assert fell_back["type"] == "Warning"
    assert "Revision 1: 1 of 1 pods fell back to the rule-based combiner" in fell_back["message"]
    found = condition(stack.kube, namespace, "fallback", "ModelFallback")
    assert (found["status"], found["reason"]) == ("True", "ModelFallback")
