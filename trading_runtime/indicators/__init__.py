"""Incremental signal indicators: microstructure, volume profile, multi-timeframe bars."""
