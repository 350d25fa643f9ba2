"""The real operator process against the emulated API server, driven with the real kubernetes client."""

from __future__ import annotations

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from devstack.processes import wait_for
from tests.integration.operator_harness import (
    condition,
    configmap,
    create_ts,
    deployment,
    events,
    get_ts,
    patch_spec,
    revisions,
    running_revision,
    runtime_config,
    status,
    wait_event,
    wait_status,
)
from trading_operator import naming
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import CONFIGMAPS, DEPLOYMENTS, NETWORK_POLICIES, PDBS, SERVICES
from trading_operator.user_requests import RequestPayload, encode

pytestmark = pytest.mark.usefixtures("operator")

CHILDREN = [CONFIGMAPS, DEPLOYMENTS, SERVICES, PDBS, NETWORK_POLICIES]


@pytest.mark.e2e
def test_create_builds_children_and_reports_ready(kube, ns):
    created = create_ts(kube, ns, "spy")
    final = wait_status(kube, ns, "spy", phase="Ready")
    assert final["observedGeneration"] == created["metadata"]["generation"]
    assert final["currentRevision"] == final["stableRevision"] == 1
    assert final["readyReplicas"] == 1
    assert condition(kube, ns, "spy", "Ready")["status"] == "True"
    for resource in CHILDREN:
        child = kube.get(resource, ns, naming.child_name("spy"))
        owner = child["metadata"]["ownerReferences"][0]
        assert owner["uid"] == created["metadata"]["uid"]
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == naming.MANAGER
    assert revisions(kube, ns, "spy") == [1]


@pytest.mark.e2e
def test_schema_defaults_are_applied_by_the_api_server(kube, ns):
    created = create_ts(kube, ns, "qqq", symbol="QQQ")
    assert created["spec"]["replicas"] == 1
    assert created["spec"]["config"]["parameters"]["batchSize"] == 256


@pytest.mark.e2e
def test_update_creates_a_revision_and_rolls_the_pods(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    before = deployment(kube, ns, "spy")["spec"]["template"]["metadata"]["annotations"]
    patch_spec(kube, ns, "spy", {"config": {"parameters": {"batchSize": 512}}})
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=2, stableRevision=2)
    after = deployment(kube, ns, "spy")["spec"]["template"]["metadata"]["annotations"]
    assert before[naming.CONFIG_HASH_ANNOTATION] != after[naming.CONFIG_HASH_ANNOTATION]
    config = runtime_config(kube, ns, "spy")
    assert "batchSize: 512" in config["data"][naming.CONFIG_KEY]
    assert config["immutable"] is True
    assert revisions(kube, ns, "spy") == [1, 2]
    created = wait_event(kube, ns, "spy", "RevisionCreated")
    assert created["type"] == "Normal"


@pytest.mark.e2e
def test_deleted_child_is_restored(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    kube.delete(SERVICES, ns, naming.child_name("spy"))
    wait_for(lambda: kube.get_or_none(SERVICES, ns, naming.child_name("spy")), 15, "the Service restored")
    assert "was missing" in wait_event(kube, ns, "spy", "ChildRestored")["message"]


@pytest.mark.e2e
def test_hand_edited_deployment_is_reverted(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    kube.merge_patch(DEPLOYMENTS, ns, naming.child_name("spy"), {"spec": {"replicas": 4}})
    wait_for(lambda: deployment(kube, ns, "spy")["spec"]["replicas"] == 1, 15, "replicas reverted to 1")
    assert "spec.replicas: 4 (want 1)" in wait_event(kube, ns, "spy", "DriftCorrected")["message"]


@pytest.mark.e2e
def test_rollback_runs_the_chosen_revision_and_keeps_the_spec(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    patch_spec(kube, ns, "spy", {"image": "ghcr.io/tradeops/trading-runtime:2.0.0"})
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=2)
    ts = get_ts(kube, ns, "spy")
    request = RequestPayload(id="rollback-by-hand", revision=2, generation=ts["metadata"]["generation"],
                             to_revision=1)
    kube.merge_patch(TRADING_SYMBOLS, ns, "spy", {"metadata": {"annotations": {
        naming.ROLLBACK_ANNOTATION: encode(request)}}})
    final = wait_status(kube, ns, "spy", currentRevision=1, abortedRevision=2)
    assert final["requests"][-1]["id"] == "rollback-by-hand"
    assert final["requests"][-1]["outcome"] == "Accepted"
    assert final["lastRollback"]["fromRevision"] == 2
    assert final["lastRollback"]["toRevision"] == 1
    assert final["phase"] == "Degraded"
    assert running_revision(kube, ns, "spy") == 1
    ts = get_ts(kube, ns, "spy")
    assert ts["spec"]["image"].endswith(":2.0.0")
    assert naming.ROLLBACK_ANNOTATION not in (ts["metadata"].get("annotations") or {})
    assert condition(kube, ns, "spy", "Degraded")["reason"] == "RolledBack"
    wait_event(kube, ns, "spy", "RolledBack")


@pytest.mark.e2e
def test_pause_holds_changes_and_resume_applies_them(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    patch_spec(kube, ns, "spy", {"paused": True, "image": "ghcr.io/tradeops/trading-runtime:3.0.0"})
    wait_status(kube, ns, "spy", phase="Paused", updateRevision=2)
    assert running_revision(kube, ns, "spy") == 1
    patch_spec(kube, ns, "spy", {"paused": False})
    wait_status(kube, ns, "spy", phase="Ready", currentRevision=2)
    assert running_revision(kube, ns, "spy") == 2


@pytest.mark.e2e
def test_halt_switches_trading_off_without_restarting_pods(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    template = deployment(kube, ns, "spy")["spec"]["template"]
    patch_spec(kube, ns, "spy", {"tradingEnabled": False})
    wait_status(kube, ns, "spy", phase="Halted")
    switches = yaml.safe_load(configmap(kube, ns, "spy")["data"][naming.SWITCHES_KEY])
    assert switches == {"tradingEnabled": False}
    assert deployment(kube, ns, "spy")["spec"]["template"] == template
    patch_spec(kube, ns, "spy", {"tradingEnabled": True})
    wait_status(kube, ns, "spy", phase="Ready")


@pytest.mark.e2e
def test_schema_violation_is_rejected_by_the_api_server_with_the_field(kube, ns):
    with pytest.raises(ApiException) as error:
        create_ts(kube, ns, "bad", replicas=50)
    assert error.value.status == 422
    assert "spec.replicas" in error.value.body


@pytest.mark.e2e
def test_cross_field_violation_is_reported_and_changes_nothing_running(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    before = deployment(kube, ns, "spy")
    patch_spec(kube, ns, "spy", {"config": {"strategy": {"entryScore": 0.2, "exitScore": 0.5}}})
    wait_status(kube, ns, "spy", phase="Invalid")
    message = condition(kube, ns, "spy", "SpecValid")["message"]
    assert "exitScore (0.5) must be below entryScore (0.2)" in message
    assert wait_event(kube, ns, "spy", "InvalidSpec")["type"] == "Warning"
    after = deployment(kube, ns, "spy")
    assert after["spec"] == before["spec"]
    assert status(kube, ns, "spy")["currentRevision"] == 1


@pytest.mark.e2e
def test_risk_limits_above_the_named_risk_policy_are_rejected_with_the_reason(kube, ns):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    before = deployment(kube, ns, "spy")
    patch_spec(kube, ns, "spy", {"config": {"risk": {"capital": 2e7}}})
    wait_status(kube, ns, "spy", phase="Invalid")
    message = condition(kube, ns, "spy", "SpecValid")["message"]
    assert "spec.config.risk.capital: 2e+07 exceeds the risk policy's limit 1e+07 (RiskPolicy 'default')" in message
    assert "exceeds the risk policy's limit" in wait_event(kube, ns, "spy", "InvalidSpec")["message"]
    assert deployment(kube, ns, "spy")["spec"] == before["spec"]
    runtime = yaml.safe_load(runtime_config(kube, ns, "spy")["data"][naming.CONFIG_KEY])["runtime"]
    assert runtime["risk"]["capital"] == 5e6


def test_delete_drains_until_positions_are_flat(kube, ns, stack):
    create_ts(kube, ns, "spy")
    wait_status(kube, ns, "spy", phase="Ready")
    stack.positions.open[(ns, "spy")] = 3
    kube.delete(TRADING_SYMBOLS, ns, "spy")
    wait_status(kube, ns, "spy", phase="Terminating")
    switches = yaml.safe_load(configmap(kube, ns, "spy")["data"][naming.SWITCHES_KEY])
    assert switches == {"tradingEnabled": False}
    wait_event(kube, ns, "spy", "Draining")
    assert get_ts(kube, ns, "spy")["metadata"].get("deletionTimestamp")
    stack.positions.open[(ns, "spy")] = 0
    wait_for(lambda: kube.get_or_none(TRADING_SYMBOLS, ns, "spy") is None, 20, "the TradingSymbol gone")
    wait_for(lambda: deployment(kube, ns, "spy") is None, 20, "the Deployment garbage-collected")
    assert any(e["reason"] == "Drained" for e in events(kube, ns, "spy"))


def test_delete_gives_up_draining_after_the_timeout(kube, ns):
    create_ts(kube, ns, "spy", drain={"timeoutSeconds": 2})
    wait_status(kube, ns, "spy", phase="Ready")
    kube.delete(TRADING_SYMBOLS, ns, "spy")  # nobody answers /positions
    wait_for(lambda: kube.get_or_none(TRADING_SYMBOLS, ns, "spy") is None, 20, "the TradingSymbol gone")
    assert any(e["reason"] == "DrainTimedOut" for e in events(kube, ns, "spy"))


def test_fifty_symbols_converge(kube, ns):
    for i in range(50):
        create_ts(kube, ns, f"sym{i}", symbol=f"S{i}")

    def all_ready() -> bool:
        items = kube.list_objects(TRADING_SYMBOLS, ns)
        return len(items) == 50 and all((i.get("status") or {}).get("phase") == "Ready" for i in items)

    wait_for(all_ready, 90, "50 TradingSymbols Ready", interval=0.5)
    assert len(kube.list_objects(DEPLOYMENTS, ns)) == 50
