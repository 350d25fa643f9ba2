"""Turning indicator readings into one signal: direction, score and confidence, with thresholds from config.

Directional evidence, each scaled to roughly [−1, 1]:
- order-flow imbalance (normalised OFI, squashed by tanh),
- microprice tilt: (microprice − mid) / half-spread,
- trade imbalance (Lee–Ready, already in [−1, 1]),
- multi-timeframe agreement (already in [−1, 1]),
- value-area position: above the value area counts as continuation up, below as down, inside as nothing.
score = tanh(Σ wᵢ·xᵢ / Σ wᵢ · gain). Confidence is the weighted share of the evidence that agrees with the
score's sign, scaled down by flow toxicity (VPIN), by a dislocated option surface, and by a surface under
stress: the skew slope or the front-minus-back term spread |z| ≥ STRESS_Z against its own rolling history
(trading_runtime/pricing/surface.py) — the options market repricing risk faster than the flow shows, when
flow-based evidence deserves less trust. A signal is long or short when |score| ≥ entryScore and confidence ≥
minConfidence, else flat."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trading_runtime.config import StrategyThresholds

WEIGHTS = {"ofi": 1.0, "microprice": 0.8, "trade_imbalance": 0.8, "timeframes": 1.2, "value_area": 0.4}
GAIN = 2.5
STRESS_Z = 3.0
"""|z| of the skew slope or the term spread from which the surface counts as under stress."""


@dataclass(frozen=True)
class Evidence:
    ofi: float = 0.0
    microprice_tilt: float = 0.0
    trade_imbalance: float = 0.0
    timeframe_agreement: float = 0.0
    value_area_position: float = 0.0
    vpin: float = math.nan
    dislocated: bool = False
    skew_z: float = math.nan
    """z-score of the front expiry's skew slope against its rolling history (NaN while warming up)."""
    term_z: float = math.nan
    """z-score of the front-minus-back ATM IV spread against its rolling history (NaN while warming up)."""

    @property
    def surface_stress(self) -> bool:
        return any(abs(z) >= STRESS_Z for z in (self.skew_z, self.term_z) if not math.isnan(z))


@dataclass(frozen=True)
class Signal:
    direction: int
    score: float
    confidence: float


def _clip(x: float) -> float:
    return 0.0 if math.isnan(x) else max(-1.0, min(1.0, x))


def combine(evidence: Evidence, thresholds: StrategyThresholds) -> Signal:
    parts = {
        "ofi": math.tanh(evidence.ofi) if not math.isnan(evidence.ofi) else 0.0,
        "microprice": _clip(evidence.microprice_tilt),
        "trade_imbalance": _clip(evidence.trade_imbalance),
        "timeframes": _clip(evidence.timeframe_agreement),
        "value_area": _clip(evidence.value_area_position),
    }
    total = sum(WEIGHTS.values())
    score = math.tanh(GAIN * sum(WEIGHTS[k] * v for k, v in parts.items()) / total)
    sign = (score > 0) - (score < 0)
    agreeing = sum(WEIGHTS[k] for k, v in parts.items() if v * sign > 0)
    confidence = agreeing / total if sign else 0.0
    if not math.isnan(evidence.vpin):
        confidence *= 1.0 - 0.5 * min(max(evidence.vpin, 0.0), 1.0)
    if evidence.dislocated:
        confidence *= 0.8
    if evidence.surface_stress:
        confidence *= 0.8
    tradable = abs(score) >= thresholds.entry_score and confidence >= thresholds.min_confidence
    return Signal(direction=sign if tradable else 0, score=score, confidence=confidence)
