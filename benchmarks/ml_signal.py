"""Machine learning in the loop, measured on a seeded synthetic market with walk-forward folds (issue 11).

- the meta-labelling ensemble: the primary signal's hit rate on held-out test folds, the meta-model's
  precision and coverage (accept at p ≥ 0.5) with its 95 % Wilson interval, and the baseline on the same
  number of points (the combiner's own |score| ranking: what raising the entry threshold would give);
- inference: per-decision scoring time of the exported ONNX model in-process (MetaGate.decide: the feature
  array, ONNX Runtime, the accept test), over the test rows one at a time;
- MLflow: the training run and each comparison backtest tracked in a tracking server (the embedded default
  unless --tracking-uri), the model registered as challenger;
- sizing: the bandit against the fixed formula, Sharpe (pooled over the test windows) and max drawdown;
  online thresholds against the fixed ones — on the same sessions of the synthetic market with its seeded
  order-flow edge on (--edge, SyntheticSource.edge): on the edge-free market the primary's hit rate is below
  0.5, the Kelly fraction 0 and no variant trades, so there would be no Sharpe ratio to compare;
- regime detection: false alarms per day on calm data (with a 95 % upper bound), and the delay from an injected
  shift (volatility and/or spread, several sizes) to the first alarm: median, p90 and max per kind of shift;
  `regime_detection_delay_s` is the median for volatility and spread ×3 (the issue's figure).
The load average (os.getloadavg) at the start and the end is printed with the figures: timings on a shared
machine mean little without it.
Seeds are held out (2000+): nothing here was tuned on them.

    python benchmarks/ml_signal.py [--days 8] [--session-minutes 90] [--edge 1.0] [--tracking-uri URI] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sys
import tempfile
import time

# Run as a script, benchmarks/backtest.py would shadow the backtest package: import the installed one.
sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import mlflow  # noqa: E402
import numpy as np  # noqa: E402

from modelops.compare import compare  # noqa: E402
from modelops.dataset import collect  # noqa: E402
from modelops.export import to_onnx  # noqa: E402
from modelops.regime_eval import measure  # noqa: E402
from modelops.server import LocalTrackingServer  # noqa: E402
from modelops.tracking import EXPERIMENT, log_training  # noqa: E402
from modelops.train import TrainSpec, synthetic_events, train  # noqa: E402
from trading_runtime.config import MachineLearning  # noqa: E402
from trading_runtime.metrics import RuntimeMetrics  # noqa: E402
from trading_runtime.ml.features import FeatureVector  # noqa: E402
from trading_runtime.ml.serving import MetaGate  # noqa: E402


def inference(result, rows: np.ndarray) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "model.onnx"
        path.write_bytes(to_onnx(result.model, "benchmark").SerializeToString())
        gate = MetaGate(str(path), 0.5, RuntimeMetrics("SPY"))
        vectors = [FeatureVector(*map(float, row)) for row in rows]
        for vector in vectors[:200]:  # warm-up
            gate.decide(vector)
        times = []
        for vector in vectors:
            started = time.perf_counter_ns()
            gate.decide(vector)
            times.append(time.perf_counter_ns() - started)
    return float(np.percentile(times, 50)) / 1e3, float(np.percentile(times, 95)) / 1e3


def regime_figures() -> dict[str, object]:
    regime = measure()
    headline = regime.shifts[0]
    return {
        "regime_calm_days": regime.calm_days, "regime_false_alarms_per_day": regime.false_alarms_per_day,
        "regime_false_alarms_per_day_upper95": round(regime.false_alarms_per_day_upper95, 3),
        "regime_detection_delay_s": headline.median_delay_s,
        "regime_detected": f"{headline.detected}/{headline.shifts}",
        "regime_stochastic_market_alarms_per_day": regime.stochastic_alarms_per_day,
        "regime_delays": {f.shift: {"detected": f"{f.detected}/{f.shifts}", "median_s": f.median_delay_s,
                                    "p90_s": f.p90_delay_s, "max_s": f.max_delay_s} for f in regime.shifts},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--session-minutes", type=int, default=90)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--edge", type=float, default=1.0, help="the seeded edge of the sizing comparison's market")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--regime-only", action="store_true", help="only the regime detector's figures")
    args = parser.parse_args()
    load_start = os.getloadavg()
    if args.regime_only:
        out = {"load_average_start": load_start, **regime_figures(), "load_average_end": os.getloadavg()}
        print(json.dumps(out, indent=2) if args.json else "\n".join(f"{k:32} {v}" for k, v in out.items()))
        return 0
    spec = TrainSpec(train_sessions=4, test_sessions=1)
    events = synthetic_events("SPY", args.days, args.seed, args.session_minutes, spec.market)
    server = None
    # MLflow prints a line per run to stdout: it goes to stderr, so that --json prints JSON alone.
    with tempfile.TemporaryDirectory() as directory, contextlib.redirect_stdout(sys.stderr):
        uri = args.tracking_uri
        if uri is None:
            server = LocalTrackingServer(pathlib.Path(directory) / "mlflow").start()
            uri = server.url
        try:
            result = train(events, spec)
            registered = log_training(result, uri)
            rows = collect(events, spec.run_spec()).x
            rows = rows[rows[:, -1] != 0]
            p50, p95 = inference(result, np.tile(rows, (max(1, 3000 // max(len(rows), 1)), 1))[:5000])
            base = spec.run_spec()
            variants = {
                "fixed": base,
                "bandit": base.model_copy(update={"config": base.config.model_copy(update={
                    "ml": MachineLearning(bandit_sizing=True)})}),
                "adaptive-thresholds": base.model_copy(update={"config": base.config.model_copy(update={
                    "ml": MachineLearning(adaptive_thresholds=True, entry_score_min=0.2, entry_score_max=0.8)})}),
            }
            edged = synthetic_events("SPY", args.days, args.seed, args.session_minutes, spec.market, edge=args.edge)
            figures = {f.name: f for f in compare(edged, variants, spec.train_sessions, spec.test_sessions)}
            mlflow.set_tracking_uri(uri)
            experiment = mlflow.get_experiment_by_name(EXPERIMENT)
            for name, f in figures.items():
                with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=f"backtest-{name}"):
                    mlflow.log_params({"variant": name, "days": args.days, "seed": args.seed, "edge": args.edge})
                    mlflow.log_metrics({k: v for k, v in {"sharpe": f.sharpe, "max_drawdown": f.max_drawdown,
                                                          "pnl": f.pnl, "hit_rate": f.hit_rate,
                                                          "coverage": f.coverage}.items() if v is not None})
            runs = len(mlflow.search_runs([experiment.experiment_id], output_format="list"))
        finally:
            if server is not None:
                server.stop()
    pooled = result.pooled
    out = {"load_average_start": load_start,
        "folds": len(result.folds), "rows": result.rows, "test_points": pooled.points,
        "primary_hit_rate": pooled.primary.rate, "primary_ci": pooled.primary.ci,
        "meta_precision": pooled.meta.rate, "meta_coverage": pooled.coverage, "precision_ci": pooled.meta.ci,
        "meta_calls": pooled.meta.calls, "baseline_hit_rate": pooled.score_baseline.rate,
        "baseline_ci": pooled.score_baseline.ci, "majority_baseline_hit_rate": pooled.majority_baseline.rate,
        "verdict": pooled.verdict, "top_decile_precision": pooled.curve[0].meta.rate,
        "top_decile_baseline": pooled.curve[0].score_baseline.rate,
        "inference_p50_us": round(p50, 1), "inference_p95_us": round(p95, 1), "train_s": round(result.train_s, 1),
        "mlflow_runs": runs, "model_version": registered.version,
        "sizing_market_edge": args.edge,
        "rl_sharpe": figures["bandit"].sharpe, "fixed_sharpe": figures["fixed"].sharpe,
        "rl_sharpe_ci": figures["bandit"].sharpe_ci, "fixed_sharpe_ci": figures["fixed"].sharpe_ci,
        "rl_max_drawdown": figures["bandit"].max_drawdown, "fixed_max_drawdown": figures["fixed"].max_drawdown,
        "adaptive_sharpe": figures["adaptive-thresholds"].sharpe,
        "adaptive_hit_rate": figures["adaptive-thresholds"].hit_rate, "fixed_hit_rate": figures["fixed"].hit_rate,
        **regime_figures(), "load_average_end": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            print(f"{key:32} {value}")
    return 0 if result.rows else 1


if __name__ == "__main__":
    sys.exit(main())
