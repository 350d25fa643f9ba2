"""The ensemble to ONNX (skl2onnx, with onnxmltools' LightGBM converter), carrying its feature names and
version in the ONNX metadata that the runtime checks before it serves the model."""

from __future__ import annotations

from typing import Any

import onnx
from lightgbm import LGBMClassifier
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

from trading_runtime.ml.features import FEATURE_NAMES

update_registered_converter(
    LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes, convert_lightgbm,
    options={"nocl": [True, False], "zipmap": [True, False, "columns"]})


def to_onnx(model: Any, version: str) -> onnx.ModelProto:
    """The fitted ensemble as ONNX: input `features` (n × FEATURE_NAMES, float32), output `probabilities`."""
    inputs = [("features", FloatTensorType([None, len(FEATURE_NAMES)]))]
    proto: onnx.ModelProto = convert_sklearn(model, initial_types=inputs, options={id(model): {"zipmap": False}},
                                             target_opset={"": 17, "ai.onnx.ml": 3})
    for key, value in (("feature_names", ",".join(FEATURE_NAMES)), ("model_version", version)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto
