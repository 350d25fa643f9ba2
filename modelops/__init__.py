"""Training, evaluation, export and the MLflow registry of the runtime's models (the `ml` extra). The runtime
never imports this package: it serves the ONNX files this package exports (trading_runtime/ml/serving.py)."""
