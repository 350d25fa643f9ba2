"""The engine's evidence at one decision as a typed feature vector, stamped with its decision time.

The vector holds only what the engine knew at `ts` (indicator values, the combiner's score and confidence,
the primary direction); the label is joined later (trading_runtime/ml/labels.py), once the horizon passed."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields

import numpy as np

from trading_runtime.pricing.surface import SurfaceFeatures
from trading_runtime.signals.combiner import Evidence, Signal


@dataclass(frozen=True, slots=True)
class FeatureVector:
    """Model inputs in a fixed order (`FEATURE_NAMES`); NaN where the engine has no reading yet."""

    ofi: float
    microprice_tilt: float
    trade_imbalance: float
    timeframe_agreement: float
    value_area_position: float
    vpin: float
    realised_vol: float
    spread_bps: float
    skew_z: float
    term_z: float
    dislocated: float
    score: float
    confidence: float
    direction: float
    """The primary signal (−1, 0, 1) the meta-model accepts or rejects."""

    def values(self) -> tuple[float, ...]:
        """The features in `FEATURE_NAMES` order (an attrgetter: no copy of the dataclass, unlike astuple)."""
        values: tuple[float, ...] = _VALUES(self)
        return values

    def as_array(self) -> np.ndarray:
        return np.array(self.values(), dtype=np.float32)


FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(FeatureVector))
_VALUES = operator.attrgetter(*FEATURE_NAMES)


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision of the engine: when, at which mid and spread, with which features."""

    ts: float
    mid: float
    spread: float
    features: FeatureVector


def feature_vector(evidence: Evidence, signal: Signal, direction: int, realised_vol: float, mid: float,
                   spread: float, surface: SurfaceFeatures | None) -> FeatureVector:
    """The vector of one decision from what the engine computed for it."""
    return FeatureVector(
        ofi=evidence.ofi, microprice_tilt=evidence.microprice_tilt, trade_imbalance=evidence.trade_imbalance,
        timeframe_agreement=evidence.timeframe_agreement, value_area_position=evidence.value_area_position,
        vpin=evidence.vpin, realised_vol=realised_vol,
        spread_bps=spread / mid * 1e4 if mid > 0 else math.nan,
        skew_z=surface.skew_z if surface else math.nan, term_z=surface.term_z if surface else math.nan,
        dislocated=float(evidence.dislocated), score=signal.score, confidence=signal.confidence,
        direction=float(direction))
