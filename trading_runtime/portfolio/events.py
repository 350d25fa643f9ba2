"""What the runtimes publish for the portfolio service, and what it publishes back (one schema each way).

A position event carries the symbol's whole exposure and a `version` that grows with every event of that
symbol, so applying an old or repeated one is a no-op; a fill carries its id, so it is counted once."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

POSITIONS_STREAM = "tradeops:position-events"
FILLS_STREAM = "tradeops:fill-events"
CAPS_KEY = "tradeops:portfolio:caps"
RISK_KEY = "tradeops:portfolio:risk"
GROUP = "portfolio-risk"

Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class PositionEvent(_Event):
    symbol: str
    version: Annotated[int, Field(ge=0)]
    """Grows with each event of the symbol (the runtime's start time in ns plus a counter)."""
    mid: Finite
    notional: Finite
    delta: Finite
    gamma: Finite
    vega: Finite
    correlation_threshold: Annotated[float, Field(ge=0.0, le=1.0, alias="correlationThreshold")] = 0.7
    correlated_exposure_cap: Annotated[float, Field(gt=0.0, alias="correlatedExposureCap")] = 1_000_000.0
    """The symbol's own correlation limits (its config's risk section): its cap is computed with them."""


class FillEvent(_Event):
    fill_id: str = Field(alias="fillId")
    symbol: str
    instrument: str
    quantity: Finite
    price: Finite
    fee: Finite
    multiplier: Finite = 1.0
    ts: Finite


class SymbolCap(_Event):
    """The most notional a symbol may hold in its direction, given the other symbols it moves with."""

    cap: Finite
    computed_at: Finite = Field(alias="computedAt")


class PortfolioView(_Event):
    computed_at: Finite = Field(alias="computedAt")
    gross: Finite
    net: Finite
    delta: Finite
    gamma: Finite
    vega: Finite
    historical_var: float | None = Field(alias="historicalVar")
    historical_cvar: float | None = Field(alias="historicalCvar")
    parametric_var: float | None = Field(alias="parametricVar")
    parametric_cvar: float | None = Field(alias="parametricCvar")
    """None: not enough return history yet (no data, not a VaR of 0)."""
    symbols: int
