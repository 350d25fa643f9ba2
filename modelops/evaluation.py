"""Precision against coverage on held-out points, with Wilson intervals and the baselines on the same points.

On a test fold's labelled calls of the primary signal:
- primary hit rate: all the calls (what trading without the meta-model gets);
- meta precision and coverage: the calls the meta-model accepts (p ≥ the acceptance probability) and their
  share of all calls;
- baselines on the same number of points: the combiner's own |score| ranking (does the model beat simply
  raising the entry threshold?), and on the very accepted points the always-the-majority-sign call;
- the curve: precision of the most confident 10 %, 20 %, … of the calls.
The verdict says "edge" only when the precision's interval lies above the primary hit rate; too few accepted
calls is "inconclusive"."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from trading_runtime.ml.features import FEATURE_NAMES
from trading_runtime.signals.accuracy import wilson_interval

MIN_CALLS = 30
SCORE = FEATURE_NAMES.index("score")
Verdict = Literal["edge", "no-significant-edge", "worse-than-primary", "inconclusive"]


class Rate(BaseModel):
    model_config = ConfigDict(frozen=True)

    hits: int
    calls: int
    rate: float | None
    ci: tuple[float, float] | None

    @staticmethod
    def of(hits: np.ndarray) -> Rate:
        n, k = len(hits), int(np.sum(hits))
        return Rate(hits=k, calls=n, rate=k / n if n else None, ci=wilson_interval(k, n) if n else None)


class CurvePoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    coverage: float
    meta: Rate
    score_baseline: Rate


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)

    points: int
    primary: Rate
    meta: Rate
    coverage: float | None
    score_baseline: Rate
    """The same number of calls, chosen by the combiner's |score|."""
    majority_baseline: Rate
    """The accepted points, called with the training majority's sign."""
    curve: list[CurvePoint]
    verdict: Verdict
    reason: str


def _top(order_by: np.ndarray, hits: np.ndarray, k: int) -> np.ndarray:
    return hits[np.argsort(-order_by, kind="stable")[:k]]


def evaluate(p: np.ndarray, x: np.ndarray, hit: np.ndarray, outcome: np.ndarray, accept: float,
             majority_sign: int) -> Evaluation:
    """The module doc's figures for probabilities `p` of the rows `x` with meta-labels `hit`."""
    accepted = p >= accept
    k = int(accepted.sum())
    confidence = np.abs(x[:, SCORE]) if len(x) else np.zeros(0)
    curve = []
    for share in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0):
        n = max(1, round(share * len(hit))) if len(hit) else 0
        curve.append(CurvePoint(coverage=share, meta=Rate.of(_top(p, hit, n)),
                                score_baseline=Rate.of(_top(confidence, hit, n))))
    primary, meta = Rate.of(hit), Rate.of(hit[accepted])
    if k < MIN_CALLS or primary.rate is None or meta.ci is None:
        verdict: Verdict = "inconclusive"
        reason = f"{k} accepted calls (fewer than {MIN_CALLS})"
    else:
        low, high = meta.ci
        span = f"precision {meta.rate:.3f} [{low:.3f}, {high:.3f}] vs primary {primary.rate:.3f} on {len(hit)} calls"
        verdict = "edge" if low > primary.rate else "worse-than-primary" if high < primary.rate else \
            "no-significant-edge"
        reason = span
    return Evaluation(points=len(hit), primary=primary, meta=meta, coverage=k / len(hit) if len(hit) else None,
                      score_baseline=Rate.of(_top(confidence, hit, k)),
                      majority_baseline=Rate.of(outcome[accepted] == majority_sign), curve=curve, verdict=verdict,
                      reason=reason)
