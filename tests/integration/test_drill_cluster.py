"""The pod-kill and prometheus-loss drills through `python -m drills run`, against the whole local stack:
emulated API whose pods are real runtime processes (deleting a Pod stops its process; the ReplicaSet
creates a replacement Pod and the kubelet starts its process), a real Prometheus, the real operator."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devstack.processes import kube_for, wait_for
from devstack.stack import AnalysisStack, start_analysis_stack
from trading_operator.kube import KubeApi

from .operator_harness import create_ts, events, new_namespace, status, wait_status

LOADED_MACHINE_POLICIES = pathlib.Path(__file__).parent / "policies" / "analysis"
"""Its SLO policy applies to every symbol; its other policies are named and used only where asked for."""

PODS = ("v1", "pods")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalysisStack]:
    # The loaded-machine latency objective: the drills' symbols must not self-heal for this machine's feed delay.
    running = start_analysis_stack(tmp_path_factory.mktemp("drill-cluster"), LOADED_MACHINE_POLICIES, time_scale=0.2)
    try:
        yield running
    finally:
        running.stop()


def drill(stack: AnalysisStack, tmp_path: pathlib.Path, name: str, *params: str) -> tuple[int, dict, str]:
    env = {**os.environ, "KUBECONFIG": str(stack.kubeconfig), "TRADEOPS_PROMETHEUS_URL": stack.prometheus.url,
           "TRADEOPS_DRILL_REPORT_DIR": str(tmp_path / "reports"),
           "TRADEOPS_DRILL_METRICS_FILE": str(tmp_path / "drills.prom")}
    args = [arg for param in params for arg in ("--param", param)]
    done = subprocess.run([sys.executable, "-m", "drills", "run", name, "--allow-destructive", *args],
                          capture_output=True, text=True, env=env, timeout=240)
    reports = sorted((tmp_path / "reports").glob(f"{name}-*.json"))
    return done.returncode, json.loads(reports[-1].read_text()) if reports else {}, done.stdout + done.stderr


def running_symbol(kube: KubeApi, name: str) -> str:
    namespace = new_namespace(kube)
    create_ts(kube, namespace, name, drain={"timeoutSeconds": 0})
    wait_status(kube, namespace, name, timeout=60, phase="Ready", stableRevision=1)
    return namespace


def pod_names(stack: AnalysisStack, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p in stack.emulator.running.list_objects(*PODS, namespace)}


def test_pod_kill_replaces_the_pods_and_measures_the_time_to_data_flowing(stack, tmp_path):
    kube = kube_for(stack.kubeconfig)
    namespace = running_symbol(kube, "spy")
    before = wait_for(lambda: pod_names(stack, namespace), 20, "the runtime's Pod object")
    code, report, output = drill(stack, tmp_path, "pod-kill", f"namespace={namespace}")
    assert code == 0, output
    assert report["success"] is True
    assert 0 < report["rto_seconds"] <= report["objective_rto_seconds"]
    assert [c["name"] for c in report["checks"]] == ["pods deleted", "replacements Ready", "data flowing"]
    after = pod_names(stack, namespace)
    assert after
    assert not after & before  # every pod is a new one
    assert 'tradeops_drill_rto_seconds{drill="pod-kill"' in (tmp_path / "drills.prom").read_text()
    assert status(kube, namespace, "spy")["phase"] == "Ready"


def test_pod_kill_of_an_empty_namespace_fails_clearly(stack, tmp_path):
    namespace = new_namespace(kube_for(stack.kubeconfig))
    code, report, _ = drill(stack, tmp_path, "pod-kill", f"namespace={namespace}")
    assert code == 7
    assert report["success"] is False
    assert f"no pods match app.kubernetes.io/name=trading-runtime in namespace {namespace}" in report["error"]


def signal_command(name: str, pid: int) -> str:
    """A stop/start command that needs no procps (a bare Debian has no /bin/kill)."""
    return f"{sys.executable} -c 'import os, signal; os.kill({pid}, signal.{name})'"


def test_prometheus_loss_causes_no_rollback_and_analysis_resumes(stack, tmp_path):
    kube = kube_for(stack.kubeconfig)
    namespace = running_symbol(kube, "qqq")
    pid = stack.prometheus.process.pid  # a hung Prometheus: queries time out instead of being refused
    code, report, output = drill(stack, tmp_path, "prometheus-loss", f"namespace={namespace}", "name=qqq",
                                 "outageSeconds=15", f"stopCommand={signal_command('SIGSTOP', pid)}",
                                 f"startCommand={signal_command('SIGCONT', pid)}")
    assert code == 0, output
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["no rollback or self-healing on missing metrics"]["ok"]
    assert "revision 1 kept through 15s" in checks["no rollback or self-healing on missing metrics"]["detail"]
    assert report["rto_seconds"] <= report["objective_rto_seconds"]
    reasons = {e["reason"] for e in events(kube, namespace, "qqq")}
    assert not reasons & {"RolledBack", "SelfHealingRestart", "SelfHealingExhausted"}
