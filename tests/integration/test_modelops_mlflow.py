"""Training runs tracked in a real MLflow server, the model registered as `challenger`, promoted to
`champion` with `opsctl model`, and the registered ONNX file served by the runtime."""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from audit.kinds import Kind
from audit.store import entries, verify_log
from modelops.tracking import CHALLENGER, CHAMPION, EXPERIMENT, Registered, log_training
from modelops.train import TrainingResult, TrainSpec, synthetic_events, train
from opsctl.errors import ExitCode
from opsctl.main import app
from tests.mlflow_server import ThrowawayMlflow
from tests.prometheus_server import ThrowawayPrometheus
from tests.servers import audit_database, free_port
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.serving import MetaGate

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayMlflow]:
    with ThrowawayMlflow() as running:
        yield running


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
        # TreeSHAP of the LightGBM member on the held-out rows: every feature, non-negative, not all zero.
        assert fold.importance.shap is not None
        assert set(fold.importance.shap) == set(fold.importance.mean)
        assert min(fold.importance.shap.values()) >= 0 < max(fold.importance.shap.values())
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
    stored = json.loads(pathlib.Path(client.download_artifacts(registered.run_id, "importance.json")).read_text())
    assert [w["shap"] for w in stored["importance"]] == [f.importance.shap for f in trained.folds if f.importance]
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
    # Registered as challenger; champion too when a test of this module's server promoted it first.
    [(name, aliases)] = [(v["name"], v["aliases"]) for v in json.loads(listed.stdout)]
    assert (name, CHALLENGER in aliases) == (registered.name, True)
    assert set(aliases) <= {CHALLENGER, CHAMPION}
    described = opsctl(server, "describe", "SPY", CHALLENGER)
    assert described.exit_code == 0, described.output
    assert "Permutation importance and TreeSHAP" in described.stdout
    assert "MEAN |SHAP|" in described.stdout
    assert "meta_precision" in described.stdout or "primary_hit_rate" in described.stdout
    promoted = opsctl(server, "promote", "spy", "-o", "json")
    assert promoted.exit_code == 0, promoted.output
    previous = registered.version if CHAMPION in aliases else None
    assert json.loads(promoted.stdout) == {"name": registered.name, "champion": registered.version,
                                           "previous": previous}
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


@pytest.fixture
def audit_db() -> Iterator[str]:
    with audit_database() as dsn:
        yield dsn


@pytest.fixture
def prometheus() -> Iterator[ThrowawayPrometheus]:
    """The compliance report also reads the drills' results from Prometheus (none here)."""
    server = ThrowawayPrometheus().start()
    try:
        yield server
    finally:
        server.destroy()


def test_a_promotion_is_in_the_audit_trail_and_the_compliance_report(server, registered, audit_db, prometheus):
    """Who moved `champion`, for which model, to which version, from which: appended to the hash-chained log,
    listed as a change by the compliance report, and the chain still verifies."""
    first = opsctl(server, "promote", "spy", registered.version, "--database-url", audit_db, "-o", "json")
    assert first.exit_code == 0, first.output
    again = opsctl(server, "promote", "SPY", registered.version, "--database-url", audit_db, "-o", "json")
    assert again.exit_code == 0, again.output
    promotions = [e for e in entries(audit_db) if e.kind == Kind.MODEL_PROMOTION.value]
    assert len(promotions) == 2, "each promotion is its own entry"
    latest = promotions[-1]
    assert latest.subject == "SPY"
    assert "via opsctl" in latest.actor
    assert json.loads(latest.detail_text) == {"model": registered.name, "alias": CHAMPION,
                                              "version": registered.version, "previous": registered.version}
    assert verify_log(audit_db, []).ok
    # The report covers whole hours: end it after the current one.
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)).isoformat()
    report = runner.invoke(app, ["report", "compliance", "--database-url", audit_db, "--from", "-1d", "--to", until,
                                 "--prometheus-url", prometheus.url, "-o", "json"])
    assert report.exit_code == 0, report.output
    changes = [c for c in json.loads(report.stdout)["changes"] if c["kind"] == Kind.MODEL_PROMOTION.value]
    assert [c["what"] for c in changes][-1] == (f"{registered.name}: champion → version {registered.version} "
                                                f"(was version {registered.version})")


def test_a_promotion_whose_audit_entry_cannot_be_written_says_so(server, registered):
    dead = f"postgresql://tradeops@127.0.0.1:{free_port()}/tradeops"
    result = opsctl(server, "promote", "spy", registered.version, "--database-url", dead)
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert "not recorded in the audit trail" in result.output
    unrecorded = runner.invoke(app, ["model", "promote", "spy", registered.version, "--tracking-uri", server.url],
                               env={"TRADEOPS_DATABASE_URL": ""})
    assert unrecorded.exit_code == 0, unrecorded.output
    assert "NOT recorded in the audit trail" in unrecorded.stderr
