"""The meta-labelling ensemble: LightGBM, a logistic regression and a random forest, soft-voted, then
probability-calibrated (sigmoid on out-of-fold predictions) so that "accept at p ≥ 0.5" means what it says."""

from __future__ import annotations

from typing import Any

import numpy as np
from lightgbm import LGBMClassifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

MEMBERS = ("lightgbm", "logistic", "forest")


def build(seed: int = 0) -> CalibratedClassifierCV:
    """An unfitted ensemble (small trees: it is scored per decision within a 200 µs budget)."""
    voting = VotingClassifier([
        ("lightgbm", LGBMClassifier(n_estimators=40, num_leaves=15, learning_rate=0.05, min_child_samples=30,
                                    subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=seed,
                                    n_jobs=1, verbose=-1)),
        ("logistic", Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=0.5, max_iter=500))])),
        ("forest", RandomForestClassifier(n_estimators=25, max_depth=6, min_samples_leaf=30, random_state=seed,
                                          n_jobs=1)),
    ], voting="soft", flatten_transform=False)
    # Contiguous folds (no shuffle): rows next in time share overlapping horizons.
    return CalibratedClassifierCV(voting, method="sigmoid", cv=KFold(3), ensemble=False)


def fit(x: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
    if len(np.unique(y)) < 2:
        raise ValueError(f"training labels hold one class only ({len(y)} rows): nothing to learn")
    return build(seed).fit(x, y)


def probability(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(x))[:, 1]


def lightgbm_member(model: Any) -> LGBMClassifier | None:
    """The fitted LightGBM member of a fitted ensemble (`build`), if it has one."""
    calibrated = getattr(model, "calibrated_classifiers_", None)
    voting = calibrated[0].estimator if calibrated else model
    member = getattr(voting, "named_estimators_", {}).get("lightgbm")
    return member if isinstance(member, LGBMClassifier) else None
