"""MLflow: every training run tracked (parameters, metrics, the data range, the evaluation and the feature
importance as artifacts) and its model registered, aliased `challenger`; `promote` moves `champion`.

The tracking server is MLFLOW_TRACKING_URI: the embedded default is a local `mlflow server` with a SQLite
store, file artifacts and its job executor off (modelops/server.py); a cluster runs it on PostgreSQL and S3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from modelops.export import to_onnx
from modelops.train import TrainingResult

EXPERIMENT = "tradeops-meta-labelling"
CHAMPION, CHALLENGER = "champion", "challenger"


def model_name(symbol: str) -> str:
    return f"tradeops-meta-{symbol.lower()}"


@dataclass(frozen=True)
class Registered:
    run_id: str
    name: str
    version: str


def _metrics(result: TrainingResult) -> dict[str, float]:
    pooled = result.pooled
    out = {"rows": float(result.rows), "folds": float(len(result.folds)), "train_s": result.train_s,
           "coverage": pooled.coverage if pooled.coverage is not None else float("nan")}
    for name, rate in (("primary_hit_rate", pooled.primary), ("meta_precision", pooled.meta),
                       ("score_baseline_hit_rate", pooled.score_baseline),
                       ("majority_baseline_hit_rate", pooled.majority_baseline)):
        if rate.rate is not None and rate.ci is not None:
            out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = rate.rate, rate.ci[0], rate.ci[1]
    return out


def log_training(result: TrainingResult, tracking_uri: str, client: MlflowClient | None = None,
                 name: str | None = None, trigger: str = "") -> Registered:
    """Track `result` as one MLflow run and register its ONNX model as `challenger` of `name` (default: the
    symbol's model); `trigger` (e.g. the regime change that requested it) is tagged on the run."""
    mlflow.set_tracking_uri(tracking_uri)
    client = client or MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    name = name or model_name(result.symbol)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{result.symbol}-meta") as run:
        mlflow.log_params({"symbol": result.symbol, **result.spec.model_dump(mode="json")})
        mlflow.log_metrics(_metrics(result))
        mlflow.set_tags({"data.start": f"{result.data_range[0]:.0f}", "data.end": f"{result.data_range[1]:.0f}",
                         "data.symbol": result.symbol, "verdict": result.pooled.verdict,
                         **({"trigger": trigger} if trigger else {})})
        mlflow.log_dict({"pooled": result.pooled.model_dump(mode="json"),
                         "folds": [f.model_dump(mode="json", exclude={"importance"}) for f in result.folds]},
                        "evaluation.json")
        mlflow.log_dict({"importance": [f.importance.model_dump(mode="json") for f in result.folds if f.importance]},
                        "importance.json")
        proto = to_onnx(result.model, version=run.info.run_id)
        info = mlflow.onnx.log_model(proto, name="model", registered_model_name=name)
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return Registered(run.info.run_id, name, version)


@dataclass(frozen=True)
class ModelVersionView:
    name: str
    version: str
    aliases: list[str]
    run_id: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    importance: list[dict[str, Any]]


def list_versions(client: MlflowClient, name: str | None = None) -> list[ModelVersionView]:
    """Every registered version (of `name`, or of all tradeops models) without their artifacts."""
    query = f"name='{name}'" if name else "name LIKE 'tradeops-meta-%'"
    versions = client.search_model_versions(query)
    # A version found by search carries no aliases: they live on the registered model.
    aliases: dict[tuple[str, str], list[str]] = {}
    for name_ in {v.name for v in versions}:
        for alias, number in client.get_registered_model(name_).aliases.items():
            aliases.setdefault((name_, str(number)), []).append(alias)
    out = [ModelVersionView(v.name, str(v.version), sorted(aliases.get((v.name, str(v.version)), [])),
                            v.run_id or "", {}, {}, {}, []) for v in versions]
    return sorted(out, key=lambda v: (v.name, int(v.version)))


def describe(client: MlflowClient, name: str, ref: str) -> ModelVersionView:
    """A version (a number or an alias) with its run's metrics, parameters, tags and feature importance."""
    v = client.get_model_version(name, ref) if ref.isdigit() else client.get_model_version_by_alias(name, ref)
    run_id = v.run_id or ""
    run = client.get_run(run_id)
    importance = json.loads(_artifact_text(client, run_id, "importance.json")).get("importance", [])
    return ModelVersionView(v.name, str(v.version), list(v.aliases or []), run_id, dict(run.data.metrics),
                            dict(run.data.params),
                            {k: t for k, t in run.data.tags.items() if not k.startswith("mlflow.")},
                            importance)


def _artifact_text(client: MlflowClient, run_id: str, path: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        local = client.download_artifacts(run_id, path, directory)
        with open(local) as handle:
            return handle.read()


def promote(client: MlflowClient, name: str, ref: str = CHALLENGER) -> tuple[str | None, str]:
    """Point `champion` at the version `ref` names; returns (previous champion version, new one)."""
    target = client.get_model_version(name, ref) if ref.isdigit() else client.get_model_version_by_alias(name, ref)
    try:
        previous: str | None = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        previous = None
    client.set_registered_model_alias(name, CHAMPION, str(target.version))
    return previous, str(target.version)
