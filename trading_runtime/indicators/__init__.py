"""Incremental signal indicators: microstructure, session volume profile, multi-timeframe bars.

Each indicator is updated per quote or trade in O(1) (or O(window)) with plain floats; see the modules'
docstrings for the definitions used."""

from trading_runtime.indicators.bars import Bar, BarBuilder, MultiTimeframe, TimeframeFeatures
from trading_runtime.indicators.microstructure import (
    EffectiveSpread,
    Microprice,
    OrderFlowImbalance,
    SessionVpin,
    TradeFlow,
    TradeImbalance,
    Vpin,
    microprice,
    quoted_spread,
    relative_spread_bps,
)
from trading_runtime.indicators.volume_profile import ProfileLevels, VolumeProfile

__all__ = [
    "Bar",
    "BarBuilder",
    "EffectiveSpread",
    "Microprice",
    "MultiTimeframe",
    "OrderFlowImbalance",
    "ProfileLevels",
    "SessionVpin",
    "TimeframeFeatures",
    "TradeFlow",
    "TradeImbalance",
    "VolumeProfile",
    "Vpin",
    "microprice",
    "quoted_spread",
    "relative_spread_bps",
]
