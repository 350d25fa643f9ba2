"""Machine learning in the loop, the runtime's side: feature vectors and labels, the served meta-model with
its rule-based fallback, online thresholds, the regime detector and the sizing bandit. Training, evaluation
and the MLflow registry live in `modelops/`, which the runtime never imports."""
