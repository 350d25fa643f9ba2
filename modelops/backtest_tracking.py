"""MLflow for backtests: each `opsctl backtest run|sweep|walk-forward` with a tracking server is one MLflow run
in the experiment `tradeops-backtests` — its kind, the data (symbol, fingerprint, range, sessions), the spec
and the grid as parameters, the performance as metrics (a ratio with no data is left out, never logged as 0)
and the whole result as `result.json`. The backtester itself stays free of MLflow (`backtest` imports no
modelops); the command line calls this after a run."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from backtest.metrics import Performance
from backtest.runner import DataRef

EXPERIMENT = "tradeops-backtests"
MAX_PARAM_LENGTH = 6000
"""MLflow refuses longer parameter values; a longer one is cut and the full value is in result.json."""


def performance_metrics(performance: Performance, prefix: str = "") -> dict[str, float]:
    """The numeric figures of a performance; None ("no data") and non-finite values are left out."""
    out: dict[str, float] = {}
    for name, value in performance.model_dump().items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            out[prefix + name] = float(value)
        elif isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, float) for v in value):
            out[f"{prefix}{name}_low"], out[f"{prefix}{name}_high"] = float(value[0]), float(value[1])
    return out


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MAX_PARAM_LENGTH]


def log_backtest(tracking_uri: str, kind: str, data: DataRef, performance: Performance | None, result: BaseModel,
                 params: dict[str, Any], run_id: str | None = None) -> str:
    """Track one backtest result; returns the MLflow run id. Raises when the server cannot be reached."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    # MLflow writes the run's links to stdout when it ends: to stderr here, stdout is the command's result.
    with contextlib.redirect_stdout(sys.stderr), \
            mlflow.start_run(experiment_id=experiment_id, run_name=f"{kind} {data.symbol}") as run:
        mlflow.set_tags({"kind": kind, "data.symbol": data.symbol, "data.fingerprint": data.fingerprint,
                         "data.start": f"{data.start:.0f}", "data.end": f"{data.end:.0f}",
                         "verdict": performance.verdict if performance else "no-candidate",
                         **({"backtest.run_id": run_id} if run_id else {})})
        mlflow.log_params({name: _param(value) for name, value in
                           {"events": data.events, "sessions": data.sessions, **params}.items()})
        if performance is not None:
            mlflow.log_metrics(performance_metrics(performance))
        mlflow.log_dict(result.model_dump(mode="json"), "result.json")
        return str(run.info.run_id)
