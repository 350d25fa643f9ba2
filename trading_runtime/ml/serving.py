"""The meta-model served in-process with ONNX Runtime, and the fallback that keeps trading on the rule-based
combiner when it cannot serve.

The model file is the ONNX export modelops/ writes, with its feature names in the ONNX metadata
(`feature_names`, comma-separated): a model trained on other features than this runtime computes is refused
at load time, not scored on the wrong columns. Any failure to load or to score sets a condition-like status
(type ModelServing, status False, a reason) and counts `tradeops_model_fallback_total{reason}`; the decision
then stands as the combiner made it. The runtime never crashes on a model."""

from __future__ import annotations

import logging
import math
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.features import FEATURE_NAMES, FeatureVector

log = logging.getLogger(__name__)
FETCH_TIMEOUT_SECONDS = 10.0

Reason = Literal["NotConfigured", "Loaded", "LoadFailed", "ScoreFailed", "SchemaMismatch"]


@dataclass(frozen=True)
class ModelStatus:
    """A condition in the Kubernetes shape: `serving` is its status, `reason` CamelCase, `message` the why."""

    serving: bool
    reason: Reason
    message: str
    version: str = ""


class ModelLoadError(RuntimeError):
    pass


def _model_source(path: str) -> str | bytes:
    """A file path as it is; an http(s) URL (a registry version's artifact, pinned by the operator) fetched."""
    if not path.startswith(("http://", "https://")):
        return path
    try:
        with urllib.request.urlopen(path, timeout=FETCH_TIMEOUT_SECONDS) as response:
            body: bytes = response.read()
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot fetch {path}: {exc}") from exc
    return body


class OnnxMetaModel:
    """P(the primary signal is right | features) from an ONNX classifier, one row at a time."""

    def __init__(self, path: str) -> None:
        try:
            import onnxruntime as ort  # the `ml` extra: imported only when a model is configured
        except ImportError as exc:
            raise ModelLoadError(f"onnxruntime is not installed ({exc}): install the ml extra") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one row per call: threads only add hand-off latency
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # converters leave unused initialisers: ONNX Runtime warns on each load
        try:
            self.session: Any = ort.InferenceSession(_model_source(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"cannot load {path}: {exc}") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        names = tuple(meta.get("feature_names", "").split(","))
        if names != FEATURE_NAMES:
            raise ModelLoadError(f"{path} was trained on features {names}, this runtime computes {FEATURE_NAMES}")
        self.version = meta.get("model_version", "")
        self.input = self.session.get_inputs()[0].name
        self.output = next(o.name for o in self.session.get_outputs() if "prob" in o.name)
        # One input row and one output row, allocated once and bound to the session (I/O binding: no feed
        # dict, no output allocation per decision); each decision overwrites the row in place.
        self._row = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
        self._out = np.zeros((1, 2), dtype=np.float32)
        self._binding = self.session.io_binding()
        self._binding.bind_cpu_input(self.input, self._row)
        self._binding.bind_ortvalue_output(self.output, ort.OrtValue.ortvalue_from_numpy(self._out))
        try:  # one row through the bound buffers: a model that cannot score a row is refused at load
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise ModelLoadError(f"{path} cannot score one row of {len(FEATURE_NAMES)} features: {exc}") from exc

    def probability(self, features: FeatureVector) -> float:
        row = self._row
        row[0] = features.values()
        np.nan_to_num(row, copy=False, nan=0.0)
        self.session.run_with_iobinding(self._binding)
        p = float(self._out[0, 1])
        if not math.isfinite(p):
            raise ValueError(f"non-finite probability {p}")
        return p


class MetaGate:
    """Accepts or rejects the primary signal with the meta-model; passes it through when none serves."""

    def __init__(self, path: str | None, accept: float, metrics: RuntimeMetrics) -> None:
        self.accept, self.metrics = accept, metrics
        self.model: OnnxMetaModel | None = None
        self.status = ModelStatus(False, "NotConfigured", "no model configured: rule-based combiner")
        if path:
            try:
                self.model = OnnxMetaModel(path)
                self.status = ModelStatus(True, "Loaded", f"serving {path}", self.model.version)
            except ModelLoadError as exc:
                reason: Reason = "SchemaMismatch" if "trained on features" in str(exc) else "LoadFailed"
                self._fall_back(reason, str(exc))
        self._publish()

    def _fall_back(self, reason: Reason, message: str) -> None:
        self.model = None
        self.status = ModelStatus(False, reason, f"{message}; falling back to the rule-based combiner")
        self.metrics.model_fallbacks.labels(self.metrics.symbol, reason).inc()
        log.error("model fallback (%s): %s", reason, message)

    def _publish(self) -> None:
        self.metrics.model_serving.labels(self.metrics.symbol).set(1 if self.status.serving else 0)

    def decide(self, features: FeatureVector) -> int:
        """The direction to trade: the primary one if accepted (or no model serves), else 0."""
        direction = int(features.direction)
        if not direction or self.model is None:
            return direction
        started = time.perf_counter()
        try:
            p = self.model.probability(features)
        except Exception as exc:
            self._fall_back("ScoreFailed", f"scoring failed: {exc}")
            self._publish()
            return direction
        self.metrics.model_inference.labels(self.metrics.symbol).observe(time.perf_counter() - started)
        accepted = p >= self.accept
        self.metrics.meta_decisions.labels(self.metrics.symbol, "accepted" if accepted else "rejected").inc()
        return direction if accepted else 0
