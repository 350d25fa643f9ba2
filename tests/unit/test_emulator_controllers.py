"""The emulator's controller arithmetic, pinned to upstream Kubernetes. Each test names the function it
mirrors (kubernetes/pkg/controller/deployment/util/deployment_util.go, rolling.go, sync.go, progress.go;
pkg/controller/controller_utils.go; pkg/kubelet/kubelet_pods.go getPhase, pkg/kubelet/status/generate.go)
and, where the rows come from its test table, the upstream test."""

from __future__ import annotations

import pytest

from devstack.emulator import builtins
from devstack.emulator import deployment_status as ds
from devstack.emulator.deployment_controller import pod_template_hash
from devstack.emulator.intstr import scaled_value
from devstack.emulator.job_controller import BACKOFF_SECONDS, backoff_delay, past_backoff_limit_on_failure
from devstack.emulator.podstatus import (
    ContainerStatus,
    Running,
    Terminated,
    Waiting,
    pod_conditions,
    pod_phase,
    qos_class,
)
from devstack.emulator.replicaset_controller import deletion_rank
from devstack.emulator.rolling import (
    ReplicaSetView,
    Strategy,
    history_to_delete,
    max_unavailable,
    new_rs_new_replicas,
    old_replica_sets_targets,
    proportional_targets,
    resolve_fenceposts,
)

T0 = "2025-01-01T00:00:00Z"


def rs(name: str, replicas: int, available: int | None = None, created: str = T0, **kw: object) -> ReplicaSetView:
    available = replicas if available is None else available
    return ReplicaSetView(name, replicas, created, actual=replicas, ready=available, available=available, **kw)


# deployment_util.go ------------------------------------------------------------------------------

@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("0%", "0%", 0, (0, 1)),
    ("39%", "39%", 10, (4, 3)),
    (None, "39%", 10, (0, 3)),
    ("39%", None, 10, (4, 0)),
    (None, None, 10, (0, 1)),
    (1, 0, 1, (1, 0)),
    ("25%", "25%", 1, (1, 0)),
], ids=["both-zero-resolve-to-one-unavailable", "percent-surge-rounds-up-unavailable-down", "no-surge",
        "no-unavailable", "neither", "operator-surge-1-unavailable-0", "default-25-percent-of-one"])
def test_resolve_fenceposts(surge, unavailable, desired, expected):
    """TestResolveFenceposts."""
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_a_string_that_is_not_a_percentage_is_an_error():
    """GetScaledValueFromIntOrPercent refuses "oops" (TestResolveFenceposts' error rows)."""
    with pytest.raises(ValueError, match="percent"):
        scaled_value("oops", 10, round_up=True)


@pytest.mark.parametrize(("replicas", "unavailable", "strategy_type", "expected"), [
    (10, 5, "RollingUpdate", 5), (10, 10, "RollingUpdate", 10), (5, 10, "RollingUpdate", 5),
    (0, 10, "RollingUpdate", 0), (10, 5, "Recreate", 0), (10, "50%", "RollingUpdate", 5),
    (10, "100%", "RollingUpdate", 10), (5, "100%", "RollingUpdate", 5),
], ids=["less-than-replicas", "equal-replicas", "greater-than-replicas", "zero-replicas", "recreate",
        "percent-less", "percent-equal", "percent-greater"])
def test_max_unavailable(replicas, unavailable, strategy_type, expected):
    """TestMaxUnavailable (maxSurge 0)."""
    assert max_unavailable(Strategy(strategy_type, 0, unavailable), replicas) == expected


@pytest.mark.parametrize(("strategy_type", "replicas", "new", "surge", "old", "expected"), [
    ("RollingUpdate", 1, 5, 1, 5, 5),
    ("RollingUpdate", 6, 2, 10, 5, 6),
    ("Recreate", 3, 1, 1, 1, 3),
    ("RollingUpdate", 10, 0, 2, 10, 2),
    ("RollingUpdate", 10, 0, 2, 5, 7),
    ("RollingUpdate", 1, 0, 1, 1, 1),
], ids=["cannot-scale-up-past-surge", "scale-up-to-replicas", "recreate-all-at-once", "surge-2-of-10",
        "old-already-scaled-down", "operator-surge-1"])
def test_new_rs_new_replicas(strategy_type, replicas, new, surge, old, expected):
    """TestNewRSNewReplicas and TestDeploymentController_reconcileNewReplicaSet."""
    strategy = Strategy(strategy_type, surge, 0)
    new_rs = rs("new", new, created="2025-01-01T00:01:00Z")
    assert new_rs_new_replicas(replicas, strategy, [rs("old", old), new_rs], new_rs) == expected


# rolling.go --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("replicas", "surge", "unavailable", "olds", "new", "expected"), [
    (1, 1, 0, [rs("old", 1)], rs("new", 1, available=0), {}),
    (1, 1, 0, [rs("old", 1)], rs("new", 1, available=1), {"old": 0}),
    (10, 0, 1, [rs("old", 10)], rs("new", 0), {"old": 9}),
    (10, 0, 3, [rs("a", 5, created="2025-01-01T00:00:00Z"), rs("b", 5, created="2025-01-01T00:00:05Z")],
     rs("new", 0), {"a": 2}),
    (3, 1, 0, [rs("old", 3, available=1)], rs("new", 1, available=0), {}),
    (3, 1, 1, [rs("old", 3, available=1)], rs("new", 1, available=0), {"old": 2}),
    (3, 1, 1, [rs("old", 3, available=1)], rs("new", 1, available=1), {"old": 1}),
], ids=["new-pod-not-available-blocks-scale-down", "new-pod-available-retires-old",
        "max-unavailable-1-of-10", "oldest-replica-set-first", "nothing-to-spare",
        "unhealthy-old-pods-cleaned-up-first", "unhealthy-cleanup-bounded-by-availability"])
def test_old_replica_sets_scale_down(replicas, surge, unavailable, olds, new, expected):
    """reconcileOldReplicaSets, cleanupUnhealthyReplicas and scaleDownOldReplicaSetsForRollingUpdate
    (TestDeploymentController_reconcileOldReplicaSets, _cleanupUnhealthyReplicas,
    _scaleDownOldReplicaSetsForRollingUpdate)."""
    assert old_replica_sets_targets(replicas, Strategy("RollingUpdate", surge, unavailable), olds, new) == expected


# sync.go scale() ---------------------------------------------------------------------------------

def test_a_resize_mid_rollout_is_spread_in_proportion():
    """scale() / GetProportion: 10 → 20 replicas with 25 % surge while new (7) and old (6) both run; each
    was sized for max 13; they grow to 13 and 12 (25 = 20 + 5 surge)."""
    new = rs("new", 7, created="2025-01-01T00:01:00Z", max_replicas=13, desired_replicas=10)
    old = rs("old", 6, max_replicas=13, desired_replicas=10)
    assert proportional_targets(20, Strategy(), 13, new, [old]) == {"new": 13, "old": 12}


def test_a_resize_with_one_active_replica_set_gives_it_all():
    """scale() / FindActiveOrLatest."""
    assert proportional_targets(4, Strategy(), 2, rs("new", 2), [rs("old", 0)]) == {"new": 4}


def test_a_saturated_new_replica_set_retires_the_old_ones():
    """scale() / IsSaturated."""
    new = rs("new", 3, created="2025-01-01T00:01:00Z", desired_replicas=3)
    assert proportional_targets(3, Strategy(), 4, new, [rs("old", 1)]) == {"old": 0}


def test_history_beyond_the_limit_goes_oldest_revision_first():
    """cleanupDeployment: only ReplicaSets scaled to zero and observed; the rest wait."""
    olds = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 1, revision=3), rs("r4", 0, revision=4)]
    assert history_to_delete(olds, 2) == ["r1", "r2"]
    assert history_to_delete(olds, 1) == ["r1", "r2"]  # r3 still has a pod: not deleted
    assert history_to_delete(olds, 4) == []


def test_pod_template_hash_has_the_upstream_form_and_follows_the_template():
    """ComputeHash + SafeEncodeString: digits mapped onto bcdfghjklmnpqrstvwxz2456789; a collision count
    changes it."""
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    digest = pod_template_hash(template, None)
    assert 1 <= len(digest) <= 10
    assert set(digest) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert pod_template_hash(template, None) == digest
    assert pod_template_hash(template, 1) != digest
    assert pod_template_hash({**template, "spec": {"containers": [{"name": "c", "image": "x:2"}]}}, None) != digest


# progress.go / deployment_util.go conditions ----------------------------------------------------------

def status(**counts: int) -> dict:
    return {"observedGeneration": 1, **counts}


def test_set_condition_keeps_the_transition_time_when_the_status_stays():
    """SetDeploymentCondition."""
    current = {"conditions": [ds.new_condition("Progressing", "True", "ReplicaSetUpdated", "m", T0)]}
    ds.set_condition(current, ds.new_condition("Progressing", "True", "NewReplicaSetAvailable", "done",
                                               "2025-01-01T00:05:00Z"))
    condition = ds.get_condition(current, "Progressing")
    assert condition is not None
    assert (condition["reason"], condition["lastTransitionTime"], condition["lastUpdateTime"]) == \
        ("NewReplicaSetAvailable", T0, "2025-01-01T00:05:00Z")


@pytest.mark.parametrize(("ready", "reason", "status_value"), [
    (1, "NewReplicaSetAvailable", "True"),
    (0, "ProgressDeadlineExceeded", "False"),
], ids=["complete", "stuck-past-the-deadline"])
def test_rollout_status_progressing_condition(ready, reason, status_value):
    """syncRolloutStatus: complete → NewReplicaSetAvailable; no progress for progressDeadlineSeconds since
    the condition's lastUpdateTime → ProgressDeadlineExceeded (DeploymentTimedOut)."""
    old = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
           "conditions": [ds.new_condition("Progressing", "True", "NewReplicaSetCreated", "created", T0)]}
    new = rs("web-1", 1, available=ready)
    later = ds.epoch(T0) + 601
    result = ds.rollout_status("web", 1, 1, 600, Strategy(), [new], new, old, "2025-01-01T00:10:01Z", later)
    progressing = ds.get_condition(result, "Progressing")
    assert progressing is not None
    assert (progressing["reason"], progressing["status"]) == (reason, status_value)
    expected = {"complete": 'ReplicaSet "web-1" has successfully progressed.',
                "stuck": 'ReplicaSet "web-1" has timed out progressing.'}
    assert progressing["message"] == expected["complete" if ready else "stuck"]
    available = ds.get_condition(result, "Available")
    assert available is not None
    assert available["reason"] == ("MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable")


def test_no_timeout_before_the_deadline_nor_after_a_completed_rollout():
    """DeploymentTimedOut is false within the deadline and once NewReplicaSetAvailable was reported."""
    within = {"conditions": [ds.new_condition("Progressing", "True", "ReplicaSetUpdated", "m", T0)]}
    assert not ds.deployment_timed_out(600, within, ds.epoch(T0) + 599)
    done = {"conditions": [ds.new_condition("Progressing", "True", "NewReplicaSetAvailable", "m", T0)]}
    assert not ds.deployment_timed_out(600, done, ds.epoch(T0) + 6000)


def test_progress_refreshes_the_update_time_and_keeps_the_transition_time():
    """syncRolloutStatus' DeploymentProgressing branch: more ready pods → ReplicaSetUpdated, new
    lastUpdateTime (the deadline restarts), same lastTransitionTime."""
    old = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
           "conditions": [ds.new_condition("Progressing", "True", "NewReplicaSetCreated", "created", T0)]}
    new, previous = rs("web-2", 2, available=2), rs("web-1", 0)
    now = "2025-01-01T00:03:00Z"
    result = ds.rollout_status("web", 3, 1, 600, Strategy(), [previous, new], new, old, now, ds.epoch(now))
    progressing = ds.get_condition(result, "Progressing")
    assert progressing is not None
    assert (progressing["reason"], progressing["lastUpdateTime"], progressing["lastTransitionTime"]) == \
        ("ReplicaSetUpdated", now, T0)


def test_counts_of_zero_are_omitted_like_omitempty():
    """DeploymentStatus fields are `omitempty`: a Deployment scaled to zero has no replica counts."""
    result = ds.calculate_status(0, 3, Strategy(), [rs("web-1", 0)], rs("web-1", 0), {}, T0)
    assert {k for k in result if k != "conditions"} == {"observedGeneration"}


# controller_utils.go ActivePodsWithRanks ---------------------------------------------------------------

def pod(name: str, phase: str = "Running", ready: bool = True, node: str = "n", restarts: int = 0,
        ready_since: str = T0, created: str = T0) -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_since}]
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_surplus_pods_are_deleted_least_valuable_first():
    """ActivePodsWithRanks.Less: unassigned, then Pending, then not ready, then ready for less time, then
    more restarts, then newer."""
    pods = [pod("old-ready"), pod("young-ready", ready_since="2025-01-01T00:05:00Z"),
            pod("restarting", restarts=4), pod("unready", ready=False), pod("pending", phase="Pending", ready=False),
            pod("unassigned", phase="Pending", ready=False, node="")]
    order = [p["metadata"]["name"] for p in sorted(pods, key=deletion_rank)]
    assert order == ["unassigned", "pending", "unready", "young-ready", "restarting", "old-ready"]


# kubelet getPhase and conditions --------------------------------------------------------------------

CRASHED = Terminated(1, "Error", T0, T0)


@pytest.mark.parametrize(("states", "policy", "phase"), [
    ([Waiting()], "Always", "Pending"),
    ([Running(T0)], "Always", "Running"),
    ([Waiting("CrashLoopBackOff")], "Always", "Pending"),
    ([Waiting("ImagePullBackOff"), Running(T0)], "Always", "Pending"),
    ([CRASHED], "Always", "Running"),
    ([CRASHED], "Never", "Failed"),
    ([Terminated(0, "Completed", T0, T0)], "Never", "Succeeded"),
], ids=["creating", "running", "waiting-without-a-last-state", "one-waiting", "all-restarting",
        "failed-never-restarts", "succeeded"])
def test_pod_phase(states, policy, phase):
    """getPhase."""
    assert pod_phase(policy, [ContainerStatus("c", "i", state) for state in states]) == phase


def test_a_crash_looping_container_keeps_the_pod_running():
    """getPhase: waiting with a last termination state counts as stopped, and restartPolicy Always keeps
    the phase Running while it restarts."""
    looping = ContainerStatus("c", "i", Waiting("CrashLoopBackOff"), last_state=CRASHED, restart_count=3)
    assert pod_phase("Always", [looping]) == "Running"


def test_unready_containers_are_named_in_the_ready_conditions():
    """GenerateContainersReadyCondition / GeneratePodReadyCondition."""
    containers = [ContainerStatus("a", "i", Running(T0), ready=True), ContainerStatus("b", "i", Running(T0))]
    conditions = {c["type"]: c for c in pod_conditions(containers, "Running", [], T0)}
    for type_ in ("Ready", "ContainersReady"):
        assert conditions[type_]["status"] == "False"
        assert conditions[type_]["reason"] == "ContainersNotReady"
        assert conditions[type_]["message"] == "containers with unready status: [b]"
    assert conditions["Initialized"]["status"] == "True"


@pytest.mark.parametrize(("resources", "qos"), [
    ([{}], "BestEffort"),
    ([{"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}], "Burstable"),
    ([{"limits": {"cpu": "1", "memory": "512Mi"}}], "Guaranteed"),
], ids=["none", "requests-below-limits", "limits-only"])
def test_qos_class(resources, qos):
    """GetPodQOS."""
    assert qos_class({"containers": [{"name": "c", "resources": r} for r in resources]}) == qos


@pytest.mark.parametrize(("failures", "delay"), [(0, 0.0), (1, 10.0), (2, 20.0), (3, 40.0), (6, 320.0), (7, 360.0),
                                                 (30, 360.0)])
def test_job_failure_back_off_doubles_from_10_s_to_6_min(failures, delay):
    """pkg/controller/job/backoff_utils.go: DefaultJobPodFailureBackOff 10 s, MaxJobPodFailureBackOff 6 min."""
    assert backoff_delay(BACKOFF_SECONDS, failures) == delay


@pytest.mark.parametrize(("limit", "restart_counts", "exceeded"), [
    (0, [0], False), (0, [1], True), (2, [1], False), (2, [2], True), (2, [1, 1], True), (6, [5], False),
])
def test_on_failure_restarts_of_the_active_pods_count_against_the_backoff_limit(limit, restart_counts, exceeded):
    """pastBackoffLimitOnFailure: the restarts of all active pods' containers, `> 0` when the limit is 0."""
    spec = {"backoffLimit": limit, "template": {"spec": {"restartPolicy": "OnFailure"}}}
    pods = [{"status": {"containerStatuses": [{"restartCount": n}]}} for n in restart_counts]
    assert past_backoff_limit_on_failure(spec, pods) is exceeded
    never = {**spec, "template": {"spec": {"restartPolicy": "Never"}}}
    assert past_backoff_limit_on_failure(never, pods) is False


def test_a_job_gets_the_defaults_and_the_selector_of_its_uid():
    """SetDefaults_Job and the Job strategy's generateSelector."""
    job = {"metadata": {"name": "train", "uid": "u-1"},
           "spec": {"template": {"metadata": {"labels": {"app": "t"}}, "spec": {"restartPolicy": "Never",
                                                                                  "containers": [{"name": "c"}]}}}}
    defaulted = builtins.default("batch", "Job", job)
    spec = defaulted["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"], spec["completionMode"]) == \
        (1, 1, 6, "NonIndexed")
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "t", "batch.kubernetes.io/job-name": "train", "job-name": "train",
        "batch.kubernetes.io/controller-uid": "u-1", "controller-uid": "u-1"}
    assert defaulted["metadata"]["labels"] == {"app": "t"}
    assert "selector" not in job["spec"]  # the caller's object is left alone
    assert builtins.validate("batch", "Job", defaulted, None) == []
    changed = {**defaulted, "spec": {**spec, "template": {**spec["template"], "metadata": {"labels": {}}}}}
    assert [c["field"] for c in builtins.validate("batch", "Job", changed, defaulted)] == ["spec.template"]
