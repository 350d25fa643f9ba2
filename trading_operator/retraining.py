"""The retraining Job a regime change requests — a manifest, no I/O.

The Job runs the training pipeline (`python -m modelops train`) on the risk policy's data arguments: walk-forward
training, an MLflow run tagged with the regime change that triggered it, and the new ONNX version registered
under the symbol's model as `challenger`. Nothing rolls it out by itself: `opsctl model promote` moves
`champion`, and a `spec.model` following `champion` then gets a new revision, analysed like any change."""

from __future__ import annotations

import datetime

from policies.models import RegimeRetraining
from trading_operator import naming
from trading_operator.builders import Manifest, Owner, _metadata

TTL_SECONDS = 7 * 86400
"""A finished Job (and its pod's log) stays a week, then goes (the run is in MLflow)."""
COMPONENT = "retraining"
COMPONENT_LABEL = "app.kubernetes.io/component"


def job_name(owner_name: str, change_ts: float) -> str:
    """One name per TradingSymbol and change: a re-planned reconcile creates the same Job, not a second."""
    return f"{owner_name[:40]}-retrain-{int(change_ts)}"


def selector(owner_name: str) -> str:
    """The label selector of a TradingSymbol's retraining Jobs."""
    return f"{naming.OWNER_NAME_LABEL}={owner_name},{COMPONENT_LABEL}={COMPONENT}"


def outcome(job: Manifest) -> tuple[str, str] | None:
    """How a Job ended — ("Succeeded" | "Failed", why) from the Job controller's conditions — or None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "Succeeded", ""
        if condition.get("type") == "Failed":
            return "Failed", f"{condition.get('reason', '')}: {condition.get('message', '')}".strip(": ")
    return None


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_job(owner: Owner, symbol: str, market: str, model: str, tracking_uri: str, change_ts: float,
              policy: RegimeRetraining) -> Manifest:
    """The Job that trains and registers a new `challenger` of `model` after the change at `change_ts`."""
    metadata = _metadata(owner, job_name(owner.name, change_ts), symbol, {COMPONENT_LABEL: COMPONENT})
    # Its pods carry none of the labels that select the symbol's trading pods (the Service, the PDB, the
    # NetworkPolicy, the operator's own listing): a training pod is not a trading pod.
    selecting = {*naming.selector_labels(owner.name), naming.OWNER_NAME_LABEL}
    labels = {k: v for k, v in metadata["labels"].items() if k not in selecting}
    container = {
        "name": "train",
        "image": policy.image,
        "command": ["python", "-m", "modelops", "train"],
        "args": ["--symbol", symbol, "--market", market, "--model-name", model,
                 "--trigger", f"regime-change@{iso(change_ts)}", *policy.arguments],
        "env": [{"name": "MLFLOW_TRACKING_URI", "value": tracking_uri}],
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": policy.deadline_seconds,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": labels},
                         "spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }
