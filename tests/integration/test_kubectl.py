"""Users drive tradeops with kubectl: apply the example manifests, read status, delete."""

from __future__ import annotations

import json
import subprocess

import pytest

from devstack.processes import REPO_ROOT, find_kubectl, wait_for
from tests.integration.operator_harness import wait_status
from trading_operator.executor import TRADING_SYMBOLS

pytestmark = pytest.mark.usefixtures("operator")


def kubectl(stack, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [find_kubectl(), "--kubeconfig", str(stack.kubeconfig), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)


def test_apply_get_and_delete_the_examples(stack, ns):
    applied = kubectl(stack, "-n", ns, "apply", "--validate=false", "-f", str(REPO_ROOT / "examples"))
    assert "tradingsymbol.trading.tradeops.io/spy created" in applied.stdout
    for name in ("spy", "qqq", "es"):
        wait_status(stack.kube, ns, name, phase="Ready")
    table = kubectl(stack, "-n", ns, "get", "ts").stdout.splitlines()
    assert table[0].split() == ["NAME", "SYMBOL", "PHASE", "REVISION", "STABLE", "READY", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["spy"][1:6] == ["SPY", "Ready", "1", "1", "1"]
    listed = json.loads(kubectl(stack, "-n", ns, "get", "tradingsymbols", "-o", "json").stdout)
    assert sorted(i["spec"]["symbol"] for i in listed["items"]) == ["ES", "QQQ", "SPY"]
    deployments = kubectl(stack, "-n", ns, "get", "deployments", "-o", "name").stdout.split()
    assert sorted(deployments) == ["deployment.apps/es-trading", "deployment.apps/qqq-trading",
                                   "deployment.apps/spy-trading"]
    stack.positions.open[(ns, "qqq")] = 0  # the pods report flat
    deleted = kubectl(stack, "-n", ns, "delete", "ts", "qqq")
    assert 'tradingsymbol.trading.tradeops.io "qqq" deleted' in deleted.stdout
    wait_for(lambda: stack.kube.get_or_none(TRADING_SYMBOLS, ns, "qqq") is None, 20, "qqq drained and deleted")


@pytest.mark.e2e
def test_reapply_with_a_change_rolls_a_new_revision(stack, ns, tmp_path):
    kubectl(stack, "-n", ns, "apply", "--validate=false", "-f", str(REPO_ROOT / "examples" / "spy.yaml"))
    wait_status(stack.kube, ns, "spy", phase="Ready")
    changed = (REPO_ROOT / "examples" / "spy.yaml").read_text().replace("batchSize: 256", "batchSize: 1024")
    (tmp_path / "spy.yaml").write_text(changed)
    kubectl(stack, "-n", ns, "apply", "--validate=false", "-f", str(tmp_path / "spy.yaml"))
    wait_status(stack.kube, ns, "spy", phase="Ready", currentRevision=2)


@pytest.mark.e2e
def test_schema_violation_is_reported_by_kubectl(stack, ns):
    result = kubectl(stack, "-n", ns, "apply", "--validate=false", "-f",
                     str(REPO_ROOT / "examples" / "invalid" / "replicas-out-of-range.yaml"), check=False)
    assert result.returncode != 0
    assert "spec.replicas" in result.stderr
    assert "less than or equal to 5" in result.stderr


@pytest.mark.e2e
def test_cross_field_violation_shows_in_kubectl_describe_style_status(stack, ns):
    kubectl(stack, "-n", ns, "apply", "--validate=false", "-f",
            str(REPO_ROOT / "examples" / "invalid" / "exit-above-entry.yaml"))
    wait_status(stack.kube, ns, "iwm", phase="Invalid")
    conditions = json.loads(kubectl(stack, "-n", ns, "get", "ts", "iwm", "-o",
                                    "jsonpath={.status.conditions}").stdout)
    spec_valid = next(c for c in conditions if c["type"] == "SpecValid")
    assert spec_valid["status"] == "False"
    assert "exitScore" in spec_valid["message"]
    events = kubectl(stack, "-n", ns, "get", "events", "-o", "json").stdout
    assert "InvalidSpec" in events
