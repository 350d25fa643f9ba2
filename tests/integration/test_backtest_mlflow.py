"""Backtests tracked in MLflow: `opsctl backtest run|walk-forward --mlflow-uri` against a real tracking server
records one run each with the data's identity, the spec, the performance (no "no data" figure logged as a
number) and the whole result; a server that cannot be reached is exit 4 after the result is printed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from backtest.metrics import Performance
from modelops.backtest_tracking import EXPERIMENT, performance_metrics
from tests.mlflow_server import ThrowawayMlflow
from tests.servers import free_port

pytestmark = pytest.mark.integration
SMALL = ("--synthetic-days", "2", "--session-minutes", "20", "--workers", "1", "--json")


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayMlflow]:
    with ThrowawayMlflow() as running:
        yield running


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsctl", "backtest", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def tracked(server: ThrowawayMlflow, kind: str) -> list[Any]:
    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, "no backtest experiment"
    return [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("kind") == kind]


def test_a_run_and_a_walk_forward_are_tracked_with_their_data_and_figures(server):
    done = backtest("run", *SMALL, "--mlflow-uri", server.url)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    (run,) = tracked(server, "run")
    assert run.data.tags["data.fingerprint"] == result["data"]["fingerprint"]
    assert run.data.tags["backtest.run_id"] == result["run_id"]
    assert run.data.params["events"] == str(result["data"]["events"])
    assert run.data.metrics["pnl"] == pytest.approx(result["performance"]["pnl"])
    for name, value in result["performance"].items():
        if value is None:  # "no data" is not a number in MLflow either
            assert name not in run.data.metrics

    done = backtest("walk-forward", "--grid", "strategy.entryScore=0.4,0.6", "--train", "1", "--test", "1", *SMALL,
                    "--mlflow-uri", server.url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (run,) = tracked(server, "walk-forward")
    assert run.data.params["folds"] == str(len(result["folds"]))
    assert "strategy.entryScore=0.4,0.6" in run.data.params["grid"]
    assert run.data.metrics["fills"] == result["out_of_sample"]["fills"]


def test_an_unreachable_server_is_exit_4_after_the_result():
    done = backtest("run", "--synthetic-days", "1", "--session-minutes", "5", "--workers", "1", "--json",
                    "--mlflow-uri", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 4, done.stderr
    assert json.loads(done.stdout)[0]["performance"]  # printed all the same
    assert "not tracked in MLflow" in done.stderr


def test_no_data_is_left_out_of_the_metrics():
    performance = Performance(
        pnl=0.0, return_pct=0.0, sharpe=None, sharpe_ci=None, sortino=None, returns=0, max_drawdown=0.0, turnover=0.0,
        fills=0, fees=0.0, scored=0, calls=0, hits=0, hit_rate=None, hit_rate_ci=None, coverage=None,
        persistence_hits=0, baseline_hit_rate=None, majority_hits=0, majority_hit_rate=None, unscored_breaks=0,
        verdict="inconclusive", reason="no calls")
    metrics = performance_metrics(performance)
    assert "sharpe" not in metrics
    assert "hit_rate" not in metrics
    assert "sharpe_ci_low" not in metrics
    assert metrics["fills"] == 0.0
