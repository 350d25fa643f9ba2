"""Training runs tracked in a real MLflow server, the model registered as `challenger`, promoted to
`champion` with `opsctl model`, and the registered ONNX file served by the runtime."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from modelops.tracking import CHALLENGER, CHAMPION, EXPERIMENT, Registered, log_training
from modelops.train import TrainingResult, TrainSpec, synthetic_events, train
from opsctl.errors import ExitCode
from opsctl.main import app
from tests.mlflow_server import ThrowawayMlflow
from tests.servers import free_port
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.serving import MetaGate

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayMlflow]:
    mlflow_server = ThrowawayMlflow().start()
    try:
        yield mlflow_server
    finally:
        mlflow_server.destroy()


@pytest.fixture(scope="module")
def trained() -> TrainingResult:
    events = synthetic_events("SPY", 5, 2001, 30, "equity-options")
    return train(events, TrainSpec(horizon_seconds=30, train_sessions=3, test_sessions=1, importance_repeats=2))


@pytest.fixture(scope="module")
def registered(server: ThrowawayMlflow, trained: TrainingResult) -> Registered:
    return log_training(trained, server.url)


def opsctl(server: ThrowawayMlflow, *args: str) -> Any:
    return runner.invoke(app, ["model", *args, "--tracking-uri", server.url])


def test_walk_forward_training_reports_precision_against_coverage_on_held_out_folds(trained):
    assert len(trained.folds) == 2
    for fold in trained.folds:
        assert fold.train[1] <= fold.test[0] - 60  # purged: no train label measured in the test window
        assert fold.test_rows > 0
        assert fold.importance is not None
        assert set(fold.importance.mean) >= {"ofi", "score", "realised_vol"}
    pooled = trained.pooled
    assert pooled.points == sum(f.test_rows for f in trained.folds)
    assert pooled.primary.ci is not None
    assert pooled.score_baseline.calls == pooled.meta.calls  # baselines on the same number of points
    assert pooled.verdict in ("edge", "no-significant-edge", "worse-than-primary", "inconclusive")


def test_a_training_run_is_tracked_with_its_data_range_evaluation_and_importance(server, registered, trained):
    client = MlflowClient(server.url)
    run = client.get_run(registered.run_id)
    assert run.data.params["symbol"] == "SPY"
    assert run.data.params["horizon_seconds"] == "30"
    assert run.data.metrics["rows"] == trained.rows
    assert run.data.metrics["primary_hit_rate"] == pytest.approx(trained.pooled.primary.rate)
    assert run.data.tags["data.start"] == f"{trained.data_range[0]:.0f}"
    artifacts = {a.path for a in client.list_artifacts(registered.run_id)}
    assert {"evaluation.json", "importance.json"} <= artifacts
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_the_model_is_registered_as_challenger_and_served_by_the_runtime(server, registered, tmp_path):
    client = MlflowClient(server.url)
    version = client.get_model_version_by_alias(registered.name, CHALLENGER)
    assert str(version.version) == registered.version
    mlflow.set_tracking_uri(server.url)
    local = pathlib.Path(mlflow.artifacts.download_artifacts(f"models:/{registered.name}@{CHALLENGER}",
                                                             dst_path=str(tmp_path)))
    onnx_file = next(local.rglob("*.onnx"))
    gate = MetaGate(str(onnx_file), 0.5, RuntimeMetrics("SPY"))
    assert gate.status.serving, gate.status.message
    assert gate.status.version == registered.run_id


def test_opsctl_model_lists_describes_and_promotes(server, registered):
    listed = opsctl(server, "list", "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert [(v["name"], v["aliases"]) for v in json.loads(listed.stdout)] == [(registered.name, [CHALLENGER])]
    described = opsctl(server, "describe", "SPY", CHALLENGER)
    assert described.exit_code == 0, described.output
    assert "Permutation importance" in described.stdout
    assert "meta_precision" in described.stdout or "primary_hit_rate" in described.stdout
    promoted = opsctl(server, "promote", "spy", "-o", "json")
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.stdout) == {"name": registered.name, "champion": registered.version, "previous": None}
    client = MlflowClient(server.url)
    assert str(client.get_model_version_by_alias(registered.name, CHAMPION).version) == registered.version


def test_opsctl_model_failures_have_their_exit_codes(server, registered):
    missing = opsctl(server, "describe", "QQQ")
    assert missing.exit_code == ExitCode.NOT_FOUND, missing.output
    unreachable = runner.invoke(app, ["model", "list", "--tracking-uri", f"http://127.0.0.1:{free_port()}"],
                                env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert unreachable.exit_code == ExitCode.UNREACHABLE, unreachable.output
    no_uri = runner.invoke(app, ["model", "list"], env={"MLFLOW_TRACKING_URI": ""})
    assert no_uri.exit_code == ExitCode.USAGE, no_uri.output
