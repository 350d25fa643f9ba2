"""TreeSHAP of the ensemble's LightGBM member (LightGBM's own `pred_contrib`), stored with the importance."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from modelops import ensemble
from modelops.train import tree_shap
from trading_runtime.ml.features import FEATURE_NAMES


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURE_NAMES)))
    driver = FEATURE_NAMES.index("ofi")
    y = (x[:, driver] + 0.3 * rng.normal(size=len(x)) > 0).astype(int)
    return x, y


def test_the_feature_the_labels_depend_on_has_the_largest_mean_abs_shap():
    x, y = _data()
    model = ensemble.fit(x, y)
    shap = tree_shap(model, x[:200])
    assert shap is not None
    assert set(shap) == set(FEATURE_NAMES)
    assert max(shap, key=lambda k: shap[k]) == "ofi"
    assert all(v >= 0 for v in shap.values())


def test_contributions_are_shapley_values_of_the_member_margin():
    x, y = _data(1)
    member = ensemble.lightgbm_member(ensemble.fit(x, y))
    assert member is not None
    contributions = np.asarray(member.predict(x[:50], pred_contrib=True))
    margin = np.asarray(member.predict(x[:50], raw_score=True))
    np.testing.assert_allclose(contributions.sum(axis=1), margin, rtol=1e-6, atol=1e-9)  # local accuracy


def test_no_lightgbm_member_no_shap():
    x, y = _data()
    assert ensemble.lightgbm_member(LogisticRegression().fit(x, y)) is None
    assert tree_shap(LogisticRegression().fit(x, y), x) is None
    assert tree_shap(ensemble.fit(x, y), x[:0]) is None
