"""A regime change the runtime detects is a condition, one Event and one retraining Job, and the Job trains.

The runtime's own ML loop (regime detector and metrics, trading_runtime/ml/) is fed the synthetic market's
quotes, a ×3 volatility and spread shift among them, and serves its /metrics to a real Prometheus as the pod of
revision 1 would; the real operator (kopf, on the emulated API) reads the regime series from Prometheus, and the
planner announces the change and creates the retraining Job its risk policy allows. The emulator's Job
controller runs it (`--run-training`: the training image's pod is a real `python -m modelops train` process,
the trading pods stay simulated) against a real MLflow server; the test only observes: a new `challenger`
version tagged with the change, the Job Complete, and the operator announcing the outcome."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import time
from collections.abc import Iterator

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from prometheus_client import start_http_server
from sklearn.linear_model import LogisticRegression

from devstack.processes import PrometheusProcess, free_port, wait_for
from modelops.export import to_onnx
from tests.integration.conftest import Stack, start_stack
from tests.integration.operator_harness import (
    condition,
    create_ts,
    events,
    new_namespace,
    status,
    wait_event,
    wait_status,
)
from tests.mlflow_server import ThrowawayMlflow
from trading_operator.kube import JOBS, PODS
from trading_runtime.config import MachineLearning, RenderedConfig, RuntimeConfig
from trading_runtime.feeds.synthetic import SymbolMarket, profile_for
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.features import FEATURE_NAMES
from trading_runtime.ml.loop import MlLoop

pytestmark = pytest.mark.integration
NAME = "tradeops-meta-spy"
POLICIES = pathlib.Path(__file__).parent / "policies" / "regime"
WARMUP = 60
ML = {"regimeDetection": True, "regimeWarmupSeconds": WARMUP, "regimeCooldownSeconds": 1800}


@pytest.fixture(scope="module")
def registry() -> Iterator[ThrowawayMlflow]:
    with ThrowawayMlflow() as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    running = PrometheusProcess(tmp_path_factory.mktemp("regime")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def training_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API server of the module's own whose kubelet runs the training image's pods as processes."""
    workdir = tmp_path_factory.mktemp("regime-stack")
    yield from start_stack(workdir, ["--run-training", str(workdir / "kubelet")])


@pytest.fixture(scope="module")
def operator(training_stack, registry, prometheus):
    process = training_stack.operator("regime-operator", args=["--standalone"], env={
        "MLFLOW_TRACKING_URI": registry.url, "TRADEOPS_PROMETHEUS_URL": prometheus.url,
        "TRADEOPS_POLICIES_DIR": str(POLICIES), "TRADEOPS_RESYNC_SECONDS": "2"}).start()
    try:
        yield training_stack
    finally:
        process.stop()
    crashes = [line for line in process.log().splitlines() if "Traceback" in line or "permanently" in line]
    assert not crashes, "operator handlers crashed:\n" + "\n".join(crashes[:10])


def register(server: ThrowawayMlflow) -> int:
    """A small ONNX meta-model registered as the champion the symbol serves."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, len(FEATURE_NAMES)))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run() as run:
        info = mlflow.onnx.log_model(to_onnx(model, version=run.info.run_id), name="model", registered_model_name=NAME)
    version = str(info.registered_model_version)
    MlflowClient(server.url).set_registered_model_alias(NAME, "champion", version)
    return int(version)


class Pod:
    """Revision 1's runtime as far as regime detection goes: its ML loop on the synthetic market's quotes."""

    def __init__(self) -> None:
        self.metrics = RuntimeMetrics("SPY")
        config = RenderedConfig(symbol="SPY", market="equity-options", revision=1,
                                runtime=RuntimeConfig(ml=MachineLearning.model_validate(ML)))
        self.loop = MlLoop(config, self.metrics)
        calm = dataclasses.replace(profile_for("SPY"), vol_of_vol=0.0, jumps_per_year=0.0)
        self.market = SymbolMarket(calm, np.random.default_rng(11), datetime.date(2026, 1, 1))
        self.changes: list[float] = []

    def serve(self, prometheus: PrometheusProcess, namespace: str) -> None:
        port = free_port()
        start_http_server(port, addr="127.0.0.1", registry=self.metrics.registry)
        prometheus.publish(f"{namespace}-spy-1", f"127.0.0.1:{port}",
                           {"namespace": namespace, "symbol": "SPY", "revision": "1"})

    def quotes(self, start: float, seconds: int) -> None:
        for i in range(seconds):
            self.market.step(1.0)
            q = self.market.underlying_quote()
            change = self.loop.on_quote(start + i, (q["bid"] + q["ask"]) / 2, q["ask"] - q["bid"],
                                        q["bidSize"] + q["askSize"])
            if change is not None:
                self.changes.append(change.ts)

    def shift(self, factor: float) -> None:
        p = self.market.profile
        self.market.profile = dataclasses.replace(p, vol=p.vol * factor, spread_bps=p.spread_bps * factor)
        self.market.log_vol = float(np.log(self.market.profile.vol))


def jobs(kube, ns: str) -> list[dict]:
    return kube.list_objects(JOBS, ns)


def test_a_regime_change_is_one_event_and_one_retraining_job_that_registers_a_challenger(operator, registry,
                                                                                        prometheus):
    kube = operator.kube
    ns = new_namespace(kube)
    champion = register(registry)
    create_ts(kube, ns, "spy", model={"name": NAME, "alias": "champion", "pollIntervalSeconds": 1},
              config={"ml": ML})
    wait_status(kube, ns, "spy", timeout=60, phase="Ready", currentRevision=1, stableRevision=1)

    pod = Pod()
    pod.serve(prometheus, ns)
    # Quotes of the last few minutes: calm past the warm-up, the operator sees a watching detector.
    start = float(int(time.time()) - 400)
    pod.quotes(start, 240)
    assert pod.changes == []
    stable = wait_for(lambda: (c := condition(kube, ns, "spy", "RegimeChange")) and c["reason"] == "RegimeStable"
                      and c, 90, "RegimeChange False: RegimeStable")
    assert stable["status"] == "False"
    assert "RegimeChanged" not in {e.get("reason") for e in events(kube, ns, "spy")}

    pod.shift(3.0)
    pod.quotes(start + 240, 120)
    assert len(pod.changes) == 1, pod.changes
    assert pod.changes[0] - (start + 240) <= 60, pod.changes
    changed = wait_event(kube, ns, "spy", "RegimeChanged", timeout=90)
    assert changed["type"] == "Warning"
    requested = wait_event(kube, ns, "spy", "RetrainingRequested", timeout=30)
    [job] = jobs(kube, ns)
    assert job["metadata"]["name"] == f"spy-retrain-{int(pod.changes[0])}"
    assert job["metadata"]["name"] in requested["message"]
    found = condition(kube, ns, "spy", "RegimeChange")
    assert (found["status"], found["reason"]) == ("True", "RegimeChanged")
    # Measured again (every 30 s) and reconciled many times: still one Event, one Job.
    time.sleep(40)
    reasons = [e.get("reason") for e in events(kube, ns, "spy")]
    assert reasons.count("RegimeChanged") == 1
    assert reasons.count("RetrainingRequested") == 1
    assert len(jobs(kube, ns)) == 1

    # The Job controller has run its pod (the training pipeline, registering a challenger under the symbol's
    # model) to completion; the operator announces it once and keeps the outcome.
    name = job["metadata"]["name"]
    succeeded = wait_event(kube, ns, "spy", "RetrainingSucceeded", timeout=600)
    assert name in succeeded["message"]
    finished = kube.get(JOBS, ns, name)
    assert finished["status"]["succeeded"] == 1
    assert [c["type"] for c in finished["status"]["conditions"] if c["status"] == "True"] == ["Complete"]
    [trainer] = [p for p in kube.list_objects(PODS, ns) if p["metadata"]["labels"].get("job-name") == name]
    assert trainer["status"]["phase"] == "Succeeded"
    assert trainer["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert "modelops" in trainer["status"]["containerStatuses"][0]["imageID"]
    client = MlflowClient(registry.url)
    challenger = client.get_model_version_by_alias(NAME, "challenger")
    assert int(challenger.version) > champion
    run = client.get_run(challenger.run_id)
    assert run.data.tags["trigger"].startswith("regime-change@")
    assert client.get_model_version_by_alias(NAME, "champion").version == str(champion)

    wait_for(lambda: status(kube, ns, "spy")["regime"]["retraining"].get("outcome") == "Succeeded", 30,
             "status.regime.retraining.outcome Succeeded")
