"""Market regime changes: a two-sided CUSUM per feature on blocks of underlying quotes.

Every `BLOCK_SECONDS` of quotes gives three features: the log realised volatility (root of the summed squared
log returns), the log mean relative spread and the log mean quoted size. The first blocks of a regime (the
warm-up) estimate each feature's mean and spread; after it each block's standardised value z feeds the CUSUMs
S⁺ = max(0, S⁺ + z − k) and S⁻ = max(0, S⁻ − z − k), and a change is declared when either passes h. A large
shift (volatility ×3: about 5 σ of a 10 s block's log volatility) crosses h in a few blocks, where ADWIN on
per-minute means needed 20 minutes; on calm data a CUSUM with k = 1 σ, h = 12 σ waits far longer than a
session between false alarms (measured in modelops/regime_eval.py). After a change the detector learns the
new regime for `RELEARN_SECONDS` before it watches again: a change is declared once, not at every block.

A change is counted and timed in the metrics, written as a risk event, and tightens sizing by
`regimeSizeMultiplier` for `regimeCooldownSeconds` (trading_runtime/ml/loop.py); the operator reads the
metrics and may request retraining (trading_operator/regime_watch.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BLOCK_SECONDS = 10.0
WARMUP_SECONDS = 1800.0
RELEARN_SECONDS = 600.0
ALLOWANCE = 1.0
"""k: the drift (in σ) a CUSUM forgives per block."""
THRESHOLD = 12.0
"""h: the summed excess (in σ) that declares a change."""
SIGMA_FLOOR = 0.05
"""Least σ of a feature (log units: 5 %): a nearly constant one (a spread pinned to the tick) would otherwise
standardise its rounding noise into alarms."""
FEATURES = ("volatility", "spread", "volume")


@dataclass(frozen=True)
class RegimeChange:
    ts: float
    features: tuple[str, ...]
    """The features whose level changed."""


@dataclass
class _Block:
    start: float
    squared: float = 0.0
    returns: int = 0
    spread_sum: float = 0.0
    quotes: int = 0
    volume: float = 0.0


@dataclass
class _Cusum:
    """One feature: its baseline (Welford over the learning blocks), then the two CUSUMs."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    up: float = 0.0
    down: float = 0.0

    def learn(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def watch(self, x: float) -> bool:
        sigma = max(math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0, SIGMA_FLOOR)
        z = (x - self.mean) / sigma
        self.up = max(0.0, self.up + z - ALLOWANCE)
        self.down = max(0.0, self.down - z - ALLOWANCE)
        return self.up > THRESHOLD or self.down > THRESHOLD


@dataclass
class RegimeDetector:
    warmup_seconds: float = WARMUP_SECONDS
    relearn_seconds: float = RELEARN_SECONDS
    block_seconds: float = BLOCK_SECONDS
    features: dict[str, _Cusum] = field(default_factory=dict)
    learning: int = 0
    """Blocks left before the detector watches (the warm-up, then the relearning after a change)."""
    _block: _Block | None = None
    _last_mid: float = math.nan

    def __post_init__(self) -> None:
        self._learn_for(self.warmup_seconds)

    @property
    def watching(self) -> bool:
        """Past the warm-up (or the relearning after a change): a change can be declared."""
        return self.learning == 0

    def _learn_for(self, seconds: float) -> None:
        self.features = {name: _Cusum() for name in FEATURES}
        self.learning = max(2, math.ceil(seconds / self.block_seconds))

    def new_period(self) -> None:
        """A session break: the overnight move is not a block's return, and a part block is no block."""
        self._block = None
        self._last_mid = math.nan

    def update(self, ts: float, mid: float, spread: float, size: float) -> RegimeChange | None:
        """Feed every underlying quote; returns a change when a block closes with one."""
        if not mid > 0 or not math.isfinite(mid):
            return None
        start = ts - ts % self.block_seconds
        change = None
        block = self._block
        if block is not None and start > block.start:
            change = self._close(block)
            block = None
        if block is None:
            block = self._block = _Block(start)
        if self._last_mid > 0:
            block.squared += math.log(mid / self._last_mid) ** 2
            block.returns += 1
        self._last_mid = mid
        block.spread_sum += spread / mid
        block.quotes += 1
        block.volume += size
        return change

    def _close(self, block: _Block) -> RegimeChange | None:
        if block.returns < 2:  # too few quotes for a volatility (a gap, the first quotes of a session)
            return None
        values = {"volatility": math.log(math.sqrt(block.squared) + 1e-9),
                  "spread": math.log(block.spread_sum / block.quotes + 1e-12),
                  "volume": math.log(block.volume / block.quotes + 1.0)}
        if self.learning:
            for name, value in values.items():
                self.features[name].learn(value)
            self.learning -= 1
            return None
        fired = tuple(name for name, value in values.items() if self.features[name].watch(value))
        if not fired:
            return None
        self._learn_for(self.relearn_seconds)
        return RegimeChange(block.start + self.block_seconds, fired)
