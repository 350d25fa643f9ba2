"""The devstack's kubelet: every Pod a real `python -m trading_runtime` process, failing the ways pods fail in
a cluster (crash loops with back-off, never ready, OOMKilled, a config the runtime refuses, an image that
cannot be pulled, a missing ConfigMap), and the stack cleaning up after itself. One local stack (feed,
Prometheus, emulated API with the process kubelet at 1/20 of a real kubelet's timing, the operator)."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import yaml
from kubernetes import client

from devstack.processes import kube_for, wait_for
from devstack.stack import AnalysisStack, start_analysis_stack
from tests.integration.emulator_fixtures import api_client_for, unique_namespace
from tests.integration.operator_harness import create_ts, wait_status
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import NAMESPACES, PODS

SCALE = 0.05
"""Back-off 0.5 s doubling, probes every 0.25 s, ConfigMap sync every 3 s."""
RUNTIME = "ghcr.io/tradeops/trading-runtime:0.1.0"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalysisStack]:
    running = start_analysis_stack(tmp_path_factory.mktemp("devstack"), time_scale=SCALE)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api(stack: AnalysisStack) -> Iterator[tuple[client.CoreV1Api, client.AppsV1Api]]:
    with api_client_for(stack.emulator.url) as api_client:
        yield client.CoreV1Api(api_client), client.AppsV1Api(api_client)


@pytest.fixture
def ns(api: tuple[client.CoreV1Api, client.AppsV1Api]) -> str:
    name = unique_namespace("d")
    api[0].create_namespace({"metadata": {"name": name}})
    return name


def runtime_yaml(**runtime: Any) -> str:
    return yaml.safe_dump({"symbol": "SPY", "market": "equity-options", "revision": 1, "runtime": runtime})


def deployment(name: str, config: str = "cfg", replicas: int = 1, image: str = RUNTIME, memory: str = "512Mi",
               **container: Any) -> dict[str, Any]:
    """A Deployment shaped like the operator's: the config volume, /tmp, the metrics port, /readyz."""
    spec = {"name": "trading", "image": image,
            "args": ["--config", "/etc/tradeops/runtime.yaml", "--switches", "/etc/tradeops/switches.yaml"],
            "ports": [{"name": "metrics", "containerPort": 9102}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5,
                               "failureThreshold": 2},
            "resources": {"limits": {"memory": memory}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/tradeops", "readOnly": True},
                             {"name": "tmp", "mountPath": "/tmp"}], **container}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [spec], "terminationGracePeriodSeconds": 10,
                                           "volumes": [{"name": "config", "configMap": {"name": config}},
                                                       {"name": "tmp", "emptyDir": {}}]}}}}


def configure(api: tuple[client.CoreV1Api, client.AppsV1Api], ns: str, name: str = "cfg", trading: bool = True,
              **runtime: Any) -> None:
    api[0].create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": {
        "runtime.yaml": runtime_yaml(**runtime), "switches.yaml": f"tradingEnabled: {str(trading).lower()}\n"}})


def pods(stack: AnalysisStack, ns: str) -> list[dict[str, Any]]:
    return stack.emulator.list_objects("v1", "pods", ns)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod["status"].get("containerStatuses") or [{}]
    return dict(statuses[0])


def runtime_processes(address: str) -> list[psutil.Process]:
    """The processes of this test session serving a pod IP."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and address in " ".join(p.cmdline())]


def last_termination(stack: AnalysisStack, ns: str, what: str) -> dict[str, Any]:
    """The lastState.terminated of the namespace's (only) pod, once there is one."""
    def terminated() -> dict[str, Any] | None:
        found = pods(stack, ns)
        return (container(found[0]).get("lastState", {}).get("terminated") or None) if found else None

    return wait_for(terminated, 90, what)


def ready_pods(stack: AnalysisStack, ns: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        found = [p for p in pods(stack, ns) if container(p).get("ready")]
        return found if len(found) == count else None

    return wait_for(ready, timeout, f"{count} ready pods in {ns}")


def test_each_pod_is_a_runtime_process_on_its_own_address(stack, api, ns):
    """Replicas 2 → 2 processes, each listening on its pod IP at the container's port; the config comes
    from the ConfigMap volume; Prometheus scrapes podIP:9102."""
    configure(api, ns)
    api[1].create_namespaced_deployment(ns, deployment("spy", replicas=2))
    running = ready_pods(stack, ns, 2)
    addresses = {p["status"]["podIP"] for p in running}
    assert len(addresses) == 2
    assert all(re.fullmatch(r"127\.\d+\.\d+\.\d+", a) and a != "127.0.0.1" for a in addresses)
    for address in addresses:
        assert len(runtime_processes(address)) == 1
        report = json.loads(urllib.request.urlopen(f"http://{address}:9102/positions", timeout=5).read())
        assert set(report) == {"openPositions"}
        assert report["openPositions"] >= 0

    def scraped() -> set[str]:
        query = urllib.parse.quote(f'up{{namespace="{ns}"}} == 1')
        answer = json.loads(urllib.request.urlopen(f"{stack.prometheus.url}/api/v1/query?query={query}").read())
        return {r["metric"]["instance"] for r in answer["data"]["result"]}

    assert wait_for(lambda: scraped() == {f"{a}:9102" for a in addresses}, 30, "Prometheus scraping both pods")


def test_a_config_map_update_reaches_the_mounted_files(stack, api, ns):
    """The kubelet's periodic sync writes a changed ConfigMap into the volume (atomic ..data swap) and
    the runtime hot-reloads the kill switch from it."""
    configure(api, ns)
    api[1].create_namespaced_deployment(ns, deployment("spy"))
    [pod] = ready_pods(stack, ns, 1)
    address = pod["status"]["podIP"]
    api[0].patch_namespaced_config_map("cfg", ns, {"data": {"switches.yaml": "tradingEnabled: false\n"}})

    def halted() -> bool:
        text = urllib.request.urlopen(f"http://{address}:9102/metrics", timeout=5).read().decode()
        return 'tradeops_trading_halted{reason="kill-switch",symbol="SPY"} 1.0' in text

    wait_for(halted, 30, "the kill switch read from the updated volume")
    volume = next(stack.workdir.glob(f"pods/{ns}_{pod['metadata']['name']}_*/volumes/config"))
    assert (volume / "..data").is_symlink()
    assert (volume / "switches.yaml").resolve().parent == (volume / "..data").resolve()


def test_a_crash_at_start_loops_with_the_kubelet_back_off(stack, api, ns):
    """faultInjection.crashAfterSeconds: exit 1 → restarted at once, then CrashLoopBackOff with doubling
    back-off (doBackOff); lastState.terminated has the exit code and reason; the pod stays Running;
    `kubectl logs --previous` has the crash."""
    configure(api, ns, faultInjection={"crashAfterSeconds": 0.2})
    api[1].create_namespaced_deployment(ns, deployment("crash"))
    seen: list[str] = []

    def looping() -> dict[str, Any] | None:
        [pod] = pods(stack, ns) or [None]
        if pod is None:
            return None
        state = container(pod).get("state", {})
        message = state.get("waiting", {}).get("message", "")
        if message and message not in seen:
            seen.append(message)
        return pod if container(pod).get("restartCount", 0) >= 3 and "waiting" in state else None

    pod = wait_for(looping, 120, "three restarts and a back-off")
    status = container(pod)
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert status["ready"] is False
    assert pod["status"]["phase"] == "Running"
    backoffs = [re.match(r"back-off (\S+) restarting failed container=trading pod=crash-", m).group(1)
                for m in seen if m.startswith("back-off")]
    assert backoffs[:2] == ["500ms", "1s"]
    previous = api[0].read_namespaced_pod_log(pod["metadata"]["name"], ns, previous=True)
    assert "fault injection: exiting with status 1" in previous
    reasons = {e.reason for e in api[0].list_namespaced_event(ns).items}
    assert "BackOff" in reasons
    available = next(c for c in stack.emulator.get_object("apps/v1", "deployments", ns, "crash")["status"]
                     ["conditions"] if c["type"] == "Available")
    assert available["status"] == "False"


def test_never_ready_runs_but_the_rollout_exceeds_its_deadline(stack, api, ns):
    """faultInjection.neverReady: the container runs, its readiness probe fails (Unhealthy Events), the
    Deployment's progress deadline passes (ProgressDeadlineExceeded)."""
    configure(api, ns, faultInjection={"neverReady": True})
    manifest = deployment("stuck")
    manifest["spec"]["progressDeadlineSeconds"] = 3
    api[1].create_namespaced_deployment(ns, manifest)

    def timed_out() -> dict[str, Any] | None:
        status = stack.emulator.get_object("apps/v1", "deployments", ns, "stuck").get("status") or {}
        return next((c for c in status.get("conditions", []) if c["reason"] == "ProgressDeadlineExceeded"), None)

    wait_for(timed_out, 60, "ProgressDeadlineExceeded")
    [pod] = pods(stack, ns)
    assert "running" in container(pod)["state"]
    assert container(pod)["ready"] is False
    unhealthy = [e.message for e in api[0].list_namespaced_event(ns).items if e.reason == "Unhealthy"]
    assert unhealthy
    assert unhealthy[0].startswith("Readiness probe failed: ")


def test_memory_over_the_limit_is_oom_killed(stack, api, ns):
    """faultInjection.memoryBallastMb over limits.memory: SIGKILL like the cgroup, OOMKilled, exit 137."""
    configure(api, ns, faultInjection={"memoryBallastMb": 400})
    api[1].create_namespaced_deployment(ns, deployment("hungry", memory="256Mi"))

    terminated = last_termination(stack, ns, "an OOM kill")
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)


def test_a_config_the_runtime_refuses_exits_2_with_the_reason(stack, api, ns):
    """A queueCapacity below the batchSize passes the schema (each within bounds) and the operator's rules
    but not the runtime's start: exit 2, the reason on stderr, in the termination message
    (FallbackToLogsOnError) and in `kubectl logs --previous`."""
    configure(api, ns, parameters={"queueCapacity": 200})
    api[1].create_namespaced_deployment(ns, deployment("refused", terminationMessagePolicy="FallbackToLogsOnError"))
    terminated = last_termination(stack, ns, "the runtime refusing its config")
    assert terminated["exitCode"] == 2
    expected = "parameters.queueCapacity (200) is smaller than parameters.batchSize (256)"
    assert expected in terminated["message"]
    [pod] = pods(stack, ns)
    assert expected in api[0].read_namespaced_pod_log(pod["metadata"]["name"], ns, previous=True)


def test_an_image_the_devstack_cannot_run_is_err_image_pull_then_back_off(stack, api, ns):
    """EnsureImageExists: ErrImagePull, then ImagePullBackOff while the pull back-off lasts; no process."""
    configure(api, ns)
    api[1].create_namespaced_deployment(ns, deployment("typo", image="ghcr.io/tradeops/trading-runtme:0.1.0"))
    reasons: list[str] = []

    def both_seen() -> bool:
        found = pods(stack, ns)
        reason = container(found[0]).get("state", {}).get("waiting", {}).get("reason") if found else None
        if reason and reason not in reasons:
            reasons.append(reason)
        return "ImagePullBackOff" in reasons

    wait_for(both_seen, 30, "ErrImagePull then ImagePullBackOff")
    # A kubelet reports ContainerCreating until the first pull attempt ends; a loaded machine may show it.
    assert [r for r in reasons if r != "ContainerCreating"][:2] == ["ErrImagePull", "ImagePullBackOff"]
    [pod] = pods(stack, ns)
    assert pod["status"]["phase"] == "Pending"
    assert runtime_processes(pod["status"]["podIP"]) == []
    assert 'failed to pull and unpack image "ghcr.io/tradeops/trading-runtme:0.1.0"' in \
        next(e.message for e in api[0].list_namespaced_event(ns).items if e.message.startswith("Failed to pull"))


TRAINING = "ghcr.io/tradeops/tradeops-modelops:0.1.0"


def training_job(name: str, command: list[str], image: str = TRAINING, **spec: Any) -> dict[str, Any]:
    """A Job shaped like the operator's retraining Job (retraining.build_job)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, **spec, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "train", "image": image, "command": command}]}}}}


def job_condition(stack: AnalysisStack, ns: str, name: str) -> dict[str, Any] | None:
    job = stack.emulator.get_object("batch/v1", "jobs", ns, name) or {}
    return next((c for c in (job.get("status") or {}).get("conditions") or [] if c["status"] == "True"), None)


def test_a_training_job_runs_python_m_modelops_as_a_process_and_completes(stack, api, ns):
    """The Job controller's pod runs the training image as the working tree's `python -m modelops` (no
    runtime flags appended): it exits 0, the pod Succeeded, the Job Complete; its log is the process's."""
    client.BatchV1Api(api[0].api_client).create_namespaced_job(
        ns, training_job("help", ["python", "-m", "modelops", "--help"]))
    done = wait_for(lambda: job_condition(stack, ns, "help"), 60, "the Job finished")
    assert done["type"] == "Complete"
    [pod] = pods(stack, ns)
    assert pod["status"]["phase"] == "Succeeded"
    assert container(pod)["state"]["terminated"]["exitCode"] == 0
    assert api[0].read_namespaced_pod_log(pod["metadata"]["name"], ns).startswith("usage: python -m modelops")


def test_a_training_job_whose_process_fails_fails_at_its_backoff_limit(stack, api, ns):
    """A real exit code 2 (no MLflow server configured) fails the pod; backoffLimit 0 fails the Job."""
    client.BatchV1Api(api[0].api_client).create_namespaced_job(
        ns, training_job("untracked", ["python", "-m", "modelops", "train"]))
    failed = wait_for(lambda: job_condition(stack, ns, "untracked"), 60, "the Job finished")
    assert (failed["type"], failed["reason"]) == ("Failed", "BackoffLimitExceeded")
    [pod] = pods(stack, ns)
    assert container(pod)["state"]["terminated"]["exitCode"] == 2
    assert "no MLflow tracking server" in api[0].read_namespaced_pod_log(pod["metadata"]["name"], ns)


def test_deleting_a_running_training_job_stops_its_process(stack, api, ns):
    """Deleting the Job collects its pod; the kubelet stops the process (SIGTERM) and the pod goes."""
    batch = client.BatchV1Api(api[0].api_client)
    batch.create_namespaced_job(ns, training_job("long", ["python", "-c", "import time; time.sleep(600)"]))
    running = wait_for(lambda: (found := pods(stack, ns)) and "running" in container(found[0]).get("state", {})
                       and found[0], 60, "the training process running")
    pid = int(container(running)["containerID"].rsplit("/", 1)[-1])
    assert psutil.pid_exists(pid)
    batch.delete_namespaced_job("long", ns, propagation_policy="Background")
    wait_for(lambda: not pods(stack, ns), 30, "the pod gone")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_job_whose_image_the_devstack_cannot_map_waits_in_err_image_pull(stack, api, ns):
    """As for a Deployment's pod: ErrImagePull, no process; the Job keeps it active (no failure counted)."""
    client.BatchV1Api(api[0].api_client).create_namespaced_job(
        ns, training_job("typo", ["python", "-m", "modelops", "--help"], image="ghcr.io/tradeops/modelops:0.1.0"))
    wait_for(lambda: (found := pods(stack, ns)) and container(found[0]).get("state", {}).get("waiting", {}).get(
        "reason") in ("ErrImagePull", "ImagePullBackOff"), 30, "ErrImagePull")
    job = stack.emulator.get_object("batch/v1", "jobs", ns, "typo")
    assert job is not None
    assert job["status"]["active"] == 1
    assert "failed" not in job["status"]


def test_a_missing_config_map_volume_waits_in_container_creating(stack, api, ns):
    """A non-optional ConfigMap volume that does not exist: FailedMount, the container stays
    ContainerCreating (the kubelet only reports CreateContainerConfigError for env references)."""
    api[1].create_namespaced_deployment(ns, deployment("unmounted", config="missing"))

    def failed_mount() -> list[str]:
        return [e.message for e in api[0].list_namespaced_event(ns).items if e.reason == "FailedMount"]

    messages = wait_for(failed_mount, 30, "a FailedMount Event")
    assert messages[0] == 'MountVolume.SetUp failed for volume "config" : configmap "missing" not found'
    [pod] = pods(stack, ns)
    assert container(pod)["state"] == {"waiting": {"reason": "ContainerCreating"}}
    configure(api, ns, name="missing")
    ready_pods(stack, ns, 1)  # the volume manager's retry mounts it once it exists


def test_a_missing_env_config_map_is_create_container_config_error(stack, api, ns):
    """makeEnvironmentVariables: envFrom a ConfigMap that does not exist (not optional)."""
    configure(api, ns)
    api[1].create_namespaced_deployment(ns, deployment("noenv", envFrom=[{"configMapRef": {"name": "absent"}}]))

    def config_error() -> dict[str, Any] | None:
        found = pods(stack, ns)
        waiting = container(found[0]).get("state", {}).get("waiting") if found else None
        return waiting if waiting and waiting["reason"] == "CreateContainerConfigError" else None

    assert wait_for(config_error, 30, "CreateContainerConfigError")["message"] == 'configmap "absent" not found'


def test_deleting_a_trading_symbol_stops_its_processes_promptly(stack):
    """The operator's children go (garbage collection, the drain allowing it at once); every runtime process
    of the symbol stops within a few seconds of its pods being deleted."""
    kube = kube_for(stack.kubeconfig)
    namespace = unique_namespace("ts")
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    create_ts(kube, namespace, "spy", drain={"timeoutSeconds": 0})
    wait_status(kube, namespace, "spy", timeout=90, phase="Ready")
    [pod] = ready_pods(stack, namespace, 1)
    address = pod["status"]["podIP"]
    processes = runtime_processes(address)
    assert len(processes) == 1
    kube.delete(TRADING_SYMBOLS, namespace, "spy")
    wait_for(lambda: stack.emulator.get_object("apps/v1", "deployments", namespace, "spy-trading") is None, 60,
             "the symbol's Deployment collected")
    _, alive = psutil.wait_procs(processes, timeout=10)  # SIGTERM: the runtime flushes and exits (~1-3 s)
    assert not alive, f"runtime processes left 10 s after the Deployment went: {[p.pid for p in alive]}"
    wait_for(lambda: not pods(stack, namespace), 5, "the symbol's pods gone")


def leader_metric(address: str) -> float | None:
    text = urllib.request.urlopen(f"http://{address}:9102/metrics", timeout=5).read().decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("tradeops_leader{")]
    return values[0] if values else None


def test_a_symbols_replicas_elect_one_trader_on_its_lease_and_hand_over_when_it_goes(stack):
    """replicas: 2 through the operator: both pods Ready, exactly one holds the symbol's Lease (the pod named in
    holderIdentity reports tradeops_leader 1, the other 0); deleting that pod hands the Lease to the other."""
    kube = kube_for(stack.kubeconfig)
    namespace = unique_namespace("ls")
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    create_ts(kube, namespace, "spy", replicas=2, drain={"timeoutSeconds": 0})
    running = ready_pods(stack, namespace, 2, timeout=120)
    role = stack.emulator.get_object("rbac.authorization.k8s.io/v1", "roles", namespace, "spy-trading")
    assert role is not None
    assert {tuple(r.get("resourceNames", ())) for r in role["rules"]} == {("spy-trading",), ()}

    def elected() -> tuple[str, dict[str, float | None]] | None:
        lease = stack.emulator.get_object("coordination.k8s.io/v1", "leases", namespace, "spy-trading")
        views = {p["metadata"]["name"]: leader_metric(p["status"]["podIP"]) for p in running}
        holder = (lease or {}).get("spec", {}).get("holderIdentity")
        if holder in views and views[holder] == 1.0 and sorted(views.values()) == [0.0, 1.0]:
            return holder, views
        return None

    holder, _ = wait_for(elected, 60, "one pod leading on the Lease")
    standby = next(p["metadata"]["name"] for p in running if p["metadata"]["name"] != holder)
    kube.delete(PODS, namespace, holder)

    def handed_over() -> bool:
        lease = stack.emulator.get_object("coordination.k8s.io/v1", "leases", namespace, "spy-trading") or {}
        return lease.get("spec", {}).get("holderIdentity") == standby

    wait_for(handed_over, 60, f"the Lease handed to {standby}")
    lease = stack.emulator.get_object("coordination.k8s.io/v1", "leases", namespace, "spy-trading")
    assert lease["spec"]["leaseTransitions"] >= 1
    kube.delete(TRADING_SYMBOLS, namespace, "spy")


def test_the_stack_stops_every_process_it_started(tmp_path):
    """AnalysisStack.stop: operator, pods' runtimes, Prometheus and the feed all gone."""
    running = start_analysis_stack(tmp_path, time_scale=SCALE)
    try:
        kube = kube_for(running.kubeconfig)
        kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "one"}})
        create_ts(kube, "one", "spy", drain={"timeoutSeconds": 0})
        ready_pods(running, "one", 1, timeout=90)
        started = [p for p in psutil.Process().children(recursive=True)
                   if str(tmp_path) in _cmdline(p) or p.pid in _stack_pids(running)]
        assert len(started) >= 4  # feed, Prometheus, operator, a runtime
    finally:
        running.stop()
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"left running: {[' '.join(p.cmdline()[:3]) for p in alive]}"


def _cmdline(process: psutil.Process) -> str:
    """A child's command line; "" for one that has already exited (a zombie not yet reaped has none to read)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def _stack_pids(running: AnalysisStack) -> set[int]:
    parts = (running.feed.process, running.prometheus.process, running.operator.process)
    return {p.pid for p in parts if p is not None}
