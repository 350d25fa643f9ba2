"""The e2e workflow (.github/workflows/e2e.yml) cannot run here (no Docker, no kind): what it relies on is
checked instead — actionlint and the workflow schema in test_workflows.py, and here that it installs what a
user installs, loads every runtime version the e2e tests name, and that the e2e selection collects them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from tests.integration.operator_harness import UNPULLABLE_IMAGE
from tests.unit.infra_harness import ROOT

WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())
RUN = "\n".join(step.get("run", "") for job in WORKFLOW["jobs"].values() for step in job["steps"])
RUNTIME = re.compile(r"ghcr\.io/tradeops/trading-runtime:([\w.-]+)")


def test_the_cluster_gets_the_shipped_crd_and_operator_and_this_commits_images():
    assert "kubectl apply -f deploy/crds/tradingsymbols.yaml" in RUN
    assert "kubectl apply -f deploy/operator/operator.yaml" in RUN
    assert "docker build -f deploy/docker/runtime.Dockerfile" in RUN
    assert "docker build -f deploy/docker/operator.Dockerfile" in RUN
    assert 'set image deployment/tradeops-operator operator="$OPERATOR_IMAGE"' in RUN
    assert 'TRADEOPS_E2E_KUBECONFIG="$HOME/.kube/config"' in RUN
    assert "pytest -q -m e2e" in RUN
    [kind] = [s for job in WORKFLOW["jobs"].values() for s in job["steps"] if "kind-action" in s.get("uses", "")]
    assert kind["with"]["cluster_name"] == WORKFLOW["env"]["CLUSTER"]


def test_every_runtime_version_the_e2e_tests_name_is_loaded_into_the_cluster():
    sources = [*(ROOT / "tests" / "integration").glob("*.py"), *(ROOT / "examples").glob("*.yaml"),
               ROOT / "tests" / "e2e" / "feed.yaml"]
    named = {tag for path in sources for tag in RUNTIME.findall(path.read_text())
             if "e2e" in path.parts or "examples" in path.parts or "pytest.mark.e2e" in path.read_text()
             or path.name == "operator_harness.py"}
    assert named <= set(WORKFLOW["env"]["RUNTIME_TAGS"].split()), named


def test_the_e2e_selection_collects_only_marked_tests():
    """With TRADEOPS_E2E_KUBECONFIG set, conftest deselects everything not marked e2e."""
    env = {**os.environ, "TRADEOPS_E2E_KUBECONFIG": "/nonexistent/kubeconfig"}
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             str(ROOT / "tests" / "integration")], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=300)
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    tests = [line for line in listed.stdout.splitlines() if "::" in line]
    assert len(tests) >= 20
    assert all(re.search(r"test_(operator|kubectl|opsctl|symbol_conflict|never_ready)\.py::", line)
               for line in tests), tests
    faults = {line.split("::")[1] for line in tests if "test_never_ready.py::" in line}
    assert faults == {"test_a_config_the_runtime_rejects_crash_loops_and_is_rolled_back",
                      "test_an_image_the_stack_cannot_pull_is_rolled_back_at_the_progress_deadline",
                      "test_failing_readiness_is_rolled_back_at_the_progress_deadline",
                      "test_a_first_revision_that_never_becomes_ready_is_degraded_once"}
    assert any("test_symbol_conflict.py::" in line for line in tests)


def test_the_rollout_faults_need_nothing_the_cluster_lacks():
    """The unpullable image cannot be pulled anywhere (a name that never resolves), and the cluster's operator gets
    the lifecycle policies (no Prometheus: pod-level failures fail a revision without it)."""
    assert UNPULLABLE_IMAGE.split("/")[0].endswith(".invalid")
    assert not RUNTIME.search(UNPULLABLE_IMAGE)
    assert "--from-file=tests/integration/policies/lifecycle/" in RUN
