"""The fault-matrix benchmark still runs end to end (one fault, one run, a short soak): it prints the one JSON
object its docstring promises, and the fault it injects is caught. Its figures are not judged here."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "fault_matrix.py"


def test_fault_matrix_runs_one_fault_and_a_short_soak() -> None:
    # A surge rollout of the healthy change: a shadow run would take its 300 measurements.
    done = subprocess.run([sys.executable, str(SCRIPT), "--json", "--faults", "latency", "--runs", "1",
                           "--healthy", "1", "--soak-seconds", "5", "--healthy-rollout", "surge"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert set(result) >= {"faults", "healthy_runs", "soak_s", "false_rollbacks", "false_restarts",
                           "stable_pods_saw_new_config"}
    [row] = result["faults"]
    assert (row["fault"], row["runs"], row["detected"]) == ("latency", 1, 1), done.stderr[-3000:]
    assert 0 < row["rollback_p50_s"] == row["rollback_p95_s"] < 120
    assert any("tick-to-signal-latency" in reason for reason in row["reasons"])
    assert (result["healthy_runs"], result["soak_s"]) == (1, 5.0)
    for count in ("false_rollbacks", "false_restarts", "stable_pods_saw_new_config"):
        assert isinstance(result[count], int)


def test_fault_matrix_refuses_an_unknown_fault() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--faults", "latency,meteor"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "unknown faults ['meteor']" in done.stderr
