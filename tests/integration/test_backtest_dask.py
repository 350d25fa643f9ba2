"""Backtests as Dask tasks on real clusters (an embedded LocalCluster of worker processes, and a separate
scheduler reached by its address): results identical whatever the number of workers; `opsctl backtest`
end to end with its JSON, reports and exit codes."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest
from distributed import LocalCluster
from matplotlib.image import imread

from backtest import jobs
from backtest.data import SyntheticSource, load
from backtest.distributed import executor
from backtest.params import parse_grid
from backtest.report import write_run, write_walk_forward
from backtest.runner import RunSpec
from tests.unit.recorded_files import MONDAY, minute_bars, write_csv

SPEC = RunSpec.model_validate({"config": {"strategy": {"exitScore": 0.1, "minConfidence": 0.5}}})
GRID = parse_grid(["strategy.entryScore=0.3,0.5"])


@pytest.fixture(scope="module")
def events():
    return load(SyntheticSource(days=3, session_minutes=20, seed=1), "equity-options").events


@pytest.fixture(scope="module")
def by_workers(events):
    """The same walk-forward and sweep on one and on two embedded workers."""
    out = {}
    for workers in (1, 2):
        with executor(workers) as pool:
            assert pool.workers == workers
            out[workers] = (jobs.walk_forward(pool, events, SPEC, GRID, train=1, test=1),
                            jobs.sweep(pool, events, SPEC, GRID))
    return out


def test_results_are_identical_on_one_and_two_workers(by_workers):
    (walk_1, sweep_1), (walk_2, sweep_2) = by_workers[1], by_workers[2]
    assert walk_1.model_dump_json() == walk_2.model_dump_json()
    assert sweep_1.model_dump_json() == sweep_2.model_dump_json()
    assert len(walk_1.folds) == 2
    assert [f.test_sessions for f in walk_1.folds] == [("2026-03-03",), ("2026-03-04",)]


def test_walk_forward_chooses_on_train_and_scores_on_test_only(by_workers, events):
    result, _ = by_workers[2]
    for fold in result.folds:
        assert fold.train_end <= fold.test_start - result.purge_s
        best = max(range(len(fold.train_scores)), key=lambda i: (fold.train_scores[i], -i))
        assert fold.chosen == [c.params for c in result.candidates][best]
        assert fold.test.data.start >= fold.test_start
        assert fold.test.data.end < fold.test_end
    assert result.out_of_sample.fills == sum(f.test.performance.fills for f in result.folds)
    assert result.data.fingerprint == events.fingerprint()


def test_a_shared_cluster_is_reached_by_its_address(events, by_workers):
    shared = LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                          scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"}, silence_logs=40)
    with shared as cluster, executor(scheduler=cluster.scheduler_address) as pool:
        result = jobs.sweep(pool, events, SPEC, GRID)
    assert result.model_dump_json() == by_workers[1][1].model_dump_json()


def test_reports_are_an_image_and_a_page(by_workers, tmp_path):
    walk, _ = by_workers[1]
    write_walk_forward(walk, tmp_path / "wf.png")
    assert imread(tmp_path / "wf.png").shape[:2] == (600, 1000)
    write_run(walk.folds[0].test, tmp_path / "run.html")
    page = (tmp_path / "run.html").read_text()
    assert "data:image/png;base64," in page
    assert "Persistence baseline, same points" in page
    with pytest.raises(ValueError, match=r"\.png or \.html"):
        write_run(walk.folds[0].test, tmp_path / "run.pdf")


def opsctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsctl", "backtest", *args], capture_output=True, text=True,
                          timeout=240, check=False)


def test_opsctl_backtest_run_on_a_recorded_file_prints_json(tmp_path):
    path = write_csv(tmp_path / "spy-1m.csv", minute_bars([MONDAY]))
    done = opsctl("run", "--file", str(path), "--json", "--workers", "1", "--report", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert result["data"]["symbol"] == "SPY"
    assert result["data"]["events"] == 780
    assert result["performance"]["fills"] == 0  # bars carry no option chain: nothing to trade, said as such
    assert "lowercase-symbol: 390 noted" in done.stderr  # the load report
    assert "runs" not in done.stderr  # no progress bar off a terminal
    assert (tmp_path / "r.html").exists()


def test_the_progress_bar_shows_on_a_terminal_and_leaves_the_json_alone():
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "opsctl", "backtest", "run", "--synthetic-days", "1",
                               "--session-minutes", "5", "--workers", "1", "--json"], stdout=subprocess.PIPE,
                              stderr=follower, text=True, timeout=240, check=False,
                              env={**os.environ, "TERM": "xterm"})  # a terminal that can draw a bar (not dumb)
        os.close(follower)
        follower = -1
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed once the process ended
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert done.returncode == 0
    assert json.loads(done.stdout)[0]["data"]["sessions"] == 1
    assert b"runs" in terminal


def test_opsctl_backtest_refuses_bad_data_and_bad_grids(tmp_path):
    rows = minute_bars([MONDAY])[:3]
    for row in rows:
        row["close"] = "-"
    done = opsctl("run", "--file", str(write_csv(tmp_path / "bad.csv", rows)), "--workers", "1")
    assert done.returncode == 6
    assert done.stderr.startswith("opsctl: error: nothing usable in")
    done = opsctl("sweep", "--grid", "strategy.entryScore", "--synthetic-days", "1", "--session-minutes", "5")
    assert done.returncode == 2
    assert "expected PATH=V1,V2" in done.stderr
