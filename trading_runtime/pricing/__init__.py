"""Option pricing, greeks, implied volatility and the cross-strike surface analysis."""
