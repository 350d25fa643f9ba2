"""Risk: portfolio metrics, correlation limits, position sizing, drawdown protection, black-swan detection."""
