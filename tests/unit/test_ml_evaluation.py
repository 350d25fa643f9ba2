"""Precision against coverage: intervals, the baselines on the same points, and honest verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.evaluation import SCORE, evaluate
from trading_runtime.ml.features import FEATURE_NAMES


def _rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(FEATURE_NAMES))).astype(np.float32)
    hit = (rng.random(n) < 0.5).astype(np.int8)
    outcome = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    return x, hit, outcome


def test_a_model_that_knows_the_labels_shows_an_edge_over_the_primary_and_the_score_baseline():
    x, hit, outcome = _rows(600)
    p = np.where(hit == 1, 0.9, 0.1)
    result = evaluate(p, x, hit, outcome, 0.5, 1)
    assert result.meta.rate == 1.0
    assert result.coverage == pytest.approx(hit.mean())
    assert result.verdict == "edge"
    assert result.score_baseline.calls == result.meta.calls
    assert result.score_baseline.rate < 0.65  # |score| is noise here
    assert result.curve[0].meta.rate == 1.0


def test_a_model_of_noise_is_no_significant_edge_and_few_accepted_calls_are_inconclusive():
    x, hit, outcome = _rows(2000, seed=1)
    noise = np.random.default_rng(2).random(2000)
    assert evaluate(noise, x, hit, outcome, 0.5, 1).verdict == "no-significant-edge"
    few = evaluate(np.where(np.arange(2000) < 10, 0.9, 0.1), x, hit, outcome, 0.5, 1)
    assert few.verdict == "inconclusive"
    assert few.meta.calls == 10


def test_the_score_baseline_ranks_by_the_combiners_absolute_score():
    x, hit, outcome = _rows(100, seed=3)
    x[:, SCORE] = np.where(hit == 1, 0.9, 0.1) * np.where(np.arange(100) % 2, 1, -1)
    result = evaluate(np.full(100, 0.6), x, hit, outcome, 0.5, 1)
    assert result.curve[0].score_baseline.rate == 1.0


def test_no_points_is_no_data_not_zero():
    x = np.zeros((0, len(FEATURE_NAMES)), np.float32)
    result = evaluate(np.zeros(0), x, np.zeros(0, np.int8), np.zeros(0, np.int8), 0.5, 1)
    assert result.primary.rate is None
    assert result.coverage is None
    assert result.verdict == "inconclusive"


def test_training_from_the_command_line_needs_a_tracking_server_and_data_that_hold_a_fold(monkeypatch, capsys):
    from modelops.__main__ import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as usage:
        main(["train"])
    assert usage.value.code == 2
    assert main(["train", "--synthetic-days", "1", "--session-minutes", "5", "--tracking-uri",
                 "http://127.0.0.1:9"]) == 1
    assert "no fold" in capsys.readouterr().err
