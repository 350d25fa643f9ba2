"""opsctl against the real operator and the emulated API: the commands users run, and their exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from devstack.processes import wait_for
from opsctl.asking import ask, new_request
from opsctl.errors import ExitCode, OpsctlError
from opsctl.main import app
from opsctl.options import Cluster, Output
from tests.integration.operator_harness import (
    condition,
    create_ts,
    deployment,
    get_ts,
    patch_spec,
    running_revision,
    wait_event,
    wait_status,
)
from trading_operator import naming
from trading_operator.kube import LEASES

pytestmark = pytest.mark.usefixtures("operator")
runner = CliRunner()


def opsctl(stack, ns, *args: str):
    return runner.invoke(app, ["--kubeconfig", str(stack.kubeconfig), "-n", ns, *args])


def two_revisions(stack, ns):
    create_ts(stack.kube, ns, "spy")
    wait_status(stack.kube, ns, "spy", phase="Ready")
    patch_spec(stack.kube, ns, "spy", {"config": {"parameters": {"batchSize": 512}}})
    wait_status(stack.kube, ns, "spy", phase="Ready", currentRevision=2)


@pytest.mark.e2e
def test_get_lists_symbols_with_their_state(stack, ns):
    create_ts(stack.kube, ns, "spy")
    wait_status(stack.kube, ns, "spy", phase="Ready")
    result = opsctl(stack, ns, "get")
    assert result.exit_code == 0
    header, row = result.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "SYMBOL", "PHASE", "REVISION", "STABLE", "READY", "TRADING", "AGE"]
    assert row.split()[:7] == ["spy", "SPY", "Ready", "1", "1", "1", "on"]
    as_json = json.loads(opsctl(stack, ns, "-o", "json", "get").stdout)
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["spy"]


def test_describe_names_the_pod_that_holds_the_symbols_lease(stack, ns):
    """Which replica trades is the Lease's holder, read when describing (not the operator's status: the Lease
    changes hands without the TradingSymbol changing). Not e2e: here the test takes the Lease as a runtime would."""
    create_ts(stack.kube, ns, "spy")
    wait_status(stack.kube, ns, "spy", timeout=60, phase="Ready")
    assert "Leader:       none (no replica has taken the Lease)" in opsctl(stack, ns, "describe", "spy").stdout
    stack.kube.create(LEASES, ns, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": naming.lease_name("spy")},
        "spec": {"holderIdentity": "spy-trading-7d9f-abcde", "leaseDurationSeconds": 5,
                 "acquireTime": "2026-12-06T09:00:00.000000Z", "renewTime": "2026-12-06T09:00:01.000000Z",
                 "leaseTransitions": 2}})
    described = opsctl(stack, ns, "describe", "spy")
    assert described.exit_code == 0
    assert ("Leader:       spy-trading-7d9f-abcde (since 2026-12-06T09:00:00.000000Z, 2 handovers)"
            in described.stdout.splitlines())


@pytest.mark.e2e
def test_history_shows_what_changed(stack, ns):
    two_revisions(stack, ns)
    result = opsctl(stack, ns, "history", "spy")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "initial" in lines[1]
    assert "config.parameters.batchSize 256→512" in lines[2]
    assert "current" in lines[2]


@pytest.mark.e2e
def test_rollback_with_wait_runs_the_previous_revision(stack, ns):
    two_revisions(stack, ns)
    result = opsctl(stack, ns, "-o", "json", "rollback", "spy", "--wait", "--timeout", "20")
    assert result.exit_code == 0, result.stdout + result.stderr
    printed = json.loads(result.stdout)
    assert printed.pop("request").startswith("rollback-")
    assert printed == {"name": "spy", "namespace": ns, "action": "rollback", "revision": 2, "outcome": "Accepted",
                       "fromRevision": 2, "toRevision": 1, "waited": True}
    assert running_revision(stack.kube, ns, "spy") == 1
    ts = get_ts(stack.kube, ns, "spy")
    assert ts["spec"]["config"]["parameters"]["batchSize"] == 512  # git's spec untouched
    assert ts["status"]["abortedRevision"] == 2
    described = opsctl(stack, ns, "describe", "spy")
    assert "Last rollback: 2 → 1" in described.stdout
    assert "RolledBack" in described.stdout


@pytest.mark.e2e
def test_rollback_waits_for_the_operators_answer(stack, ns):
    two_revisions(stack, ns)
    result = opsctl(stack, ns, "rollback", "spy", "--to-revision", "1")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout == "spy: rollback from revision 2 to 1 accepted: rollback from revision 2 to 1\n"
    answered = get_ts(stack.kube, ns, "spy")["status"]["requests"][-1]
    assert (answered["action"], answered["outcome"], answered["toRevision"]) == ("rollback", "Accepted", 1)
    assert condition(stack.kube, ns, "spy", "LastRequest")["reason"] == "RequestAccepted"


@pytest.mark.e2e
def test_rollback_to_the_aborted_revision_needs_force_and_then_goes_through_analysis(stack, ns):
    two_revisions(stack, ns)
    assert opsctl(stack, ns, "rollback", "spy", "--to-revision", "1").exit_code == 0
    wait_status(stack.kube, ns, "spy", currentRevision=1, abortedRevision=2)
    refused = opsctl(stack, ns, "rollback", "spy", "--to-revision", "2")
    assert refused.exit_code == 6
    assert "revision 2 of spy is marked failed (ManualRollback: rolled back to revision 1 by request): --force runs " \
           "it again" in refused.stderr
    forced = opsctl(stack, ns, "rollback", "spy", "--to-revision", "2", "--force")
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert "forced: it runs with a fresh analysis" in forced.stdout
    final = wait_status(stack.kube, ns, "spy", currentRevision=2, stableRevision=2)
    # Through the analysis path (these policies have no analysis metrics: promoted once rolled out), never as a
    # manual rollback straight to stable.
    assert final["lastRollback"]["toRevision"] == 1
    assert "abortedRevision" not in final
    wait_event(stack.kube, ns, "spy", "Retrying")


@pytest.mark.e2e
def test_a_rollback_to_an_older_failed_revision_needs_force_and_then_goes_through_analysis(stack, ns):
    two_revisions(stack, ns)
    assert opsctl(stack, ns, "rollback", "spy", "--to-revision", "1").exit_code == 0
    wait_status(stack.kube, ns, "spy", currentRevision=1, abortedRevision=2)
    patch_spec(stack.kube, ns, "spy", {"config": {"parameters": {"batchSize": 1024}}})  # git moves on: revision 3
    moved_on = wait_status(stack.kube, ns, "spy", phase="Ready", currentRevision=3, stableRevision=3)
    assert "abortedRevision" not in moved_on  # revision 2 is no longer the aborted one ...
    assert [f["revision"] for f in moved_on["failedRevisions"]] == [2]  # ... but still a failed one
    refused = opsctl(stack, ns, "rollback", "spy", "--to-revision", "2")
    assert refused.exit_code == 6
    assert "revision 2 of spy is marked failed (ManualRollback: rolled back to revision 1 by request)" in \
           refused.stderr
    forced = opsctl(stack, ns, "rollback", "spy", "--to-revision", "2", "--force")
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert "revision 3 stays stable until it passes" in forced.stdout
    # These policies have no analysis metrics: promoted once rolled out, through the analysis path.
    final = wait_status(stack.kube, ns, "spy", currentRevision=2, stableRevision=2)
    assert final["previousStableRevision"] == 3
    assert final["abortedRevision"] == 3  # the spec's revision is held, as after any rollback by request
    assert "forcedRollback" not in final
    assert [f["revision"] for f in final["failedRevisions"]] == [3]
    wait_event(stack.kube, ns, "spy", "Retrying")


@pytest.mark.e2e
def test_a_request_the_spec_outran_is_refused_by_the_operator_with_exit_6(stack, ns):
    two_revisions(stack, ns)
    cluster = Cluster(kubeconfig=str(stack.kubeconfig), namespace=ns)
    seen = get_ts(stack.kube, ns, "spy")
    request = new_request(seen, "rollback", 2, to_revision=1)  # what opsctl built from what it read ...
    patch_spec(stack.kube, ns, "spy", {"config": {"parameters": {"batchSize": 1024}}})  # ... as git moved on
    try:
        with pytest.raises(OpsctlError) as refused:
            ask(cluster.connect(), Output(), "spy", request, wait=True, timeout=20)
    finally:
        cluster.close()
    assert refused.value.code == ExitCode.REJECTED
    assert "refused by the operator (GenerationMoved): the spec changed since the request" in refused.value.message
    last = condition(stack.kube, ns, "spy", "LastRequest")
    assert (last["status"], last["reason"]) == ("False", "RequestRefused")
    assert request.payload.id in wait_event(stack.kube, ns, "spy", "RequestRefused")["message"]
    assert naming.ROLLBACK_ANNOTATION not in (get_ts(stack.kube, ns, "spy")["metadata"].get("annotations") or {})
    wait_status(stack.kube, ns, "spy", phase="Ready", currentRevision=3)  # nothing rolled back


@pytest.mark.e2e
def test_restart_rolls_the_pods_of_the_running_revision(stack, ns):
    create_ts(stack.kube, ns, "spy")
    wait_status(stack.kube, ns, "spy", phase="Ready")
    result = opsctl(stack, ns, "restart", "spy")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "restart of the pods of revision 1" in result.stdout
    template = wait_for(lambda: (deployment(stack.kube, ns, "spy") or {}).get("spec", {}).get("template", {})
                        .get("metadata", {}).get("annotations", {}).get(naming.RESTARTED_AT_ANNOTATION), 20,
                        "the restart stamp on the pod template")
    assert template
    assert running_revision(stack.kube, ns, "spy") == 1
    wait_event(stack.kube, ns, "spy", "Restarting")


@pytest.mark.e2e
def test_rollback_to_a_missing_revision_exits_3(stack, ns):
    create_ts(stack.kube, ns, "spy")
    wait_status(stack.kube, ns, "spy", phase="Ready")
    result = opsctl(stack, ns, "rollback", "spy", "--to-revision", "7")
    assert result.exit_code == 3
    assert "has no revision 7" in result.stderr
    assert naming.ROLLBACK_ANNOTATION not in (get_ts(stack.kube, ns, "spy")["metadata"].get("annotations") or {})


@pytest.mark.e2e
def test_rollback_to_the_running_revision_exits_6(stack, ns):
    two_revisions(stack, ns)
    result = opsctl(stack, ns, "rollback", "spy", "--to-revision", "2")
    assert result.exit_code == 6
    assert "already running" in result.stderr


@pytest.mark.e2e
def test_unknown_symbol_exits_3(stack, ns):
    result = opsctl(stack, ns, "describe", "nope")
    assert result.exit_code == 3
    assert result.stderr.startswith("opsctl: error: TradingSymbol \"nope\"")


@pytest.mark.e2e
def test_pause_resume_halt_unhalt(stack, ns):
    create_ts(stack.kube, ns, "spy")
    wait_status(stack.kube, ns, "spy", phase="Ready")
    assert opsctl(stack, ns, "pause", "spy").exit_code == 0
    wait_status(stack.kube, ns, "spy", phase="Paused")
    assert opsctl(stack, ns, "resume", "spy").exit_code == 0
    wait_status(stack.kube, ns, "spy", phase="Ready")
    assert opsctl(stack, ns, "halt", "spy", "--reason", "fat finger on QQQ").exit_code == 0
    wait_status(stack.kube, ns, "spy", phase="Halted")
    ts = get_ts(stack.kube, ns, "spy")
    assert ts["metadata"]["annotations"]["trading.tradeops.io/halt-reason"] == "fat finger on QQQ"
    assert "HALTED" in opsctl(stack, ns, "get", "spy").stdout
    assert opsctl(stack, ns, "unhalt", "spy").exit_code == 0
    wait_status(stack.kube, ns, "spy", phase="Ready")
    assert "trading.tradeops.io/halt-reason" not in (get_ts(stack.kube, ns, "spy")["metadata"].get("annotations") or {})


def test_unreachable_api_exits_4(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
    result = subprocess.run([sys.executable, "-m", "opsctl", "--kubeconfig", str(kubeconfig), "get"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 4
    assert result.stderr.startswith("opsctl: error: cannot reach the API server")
    assert "Traceback" not in result.stderr
