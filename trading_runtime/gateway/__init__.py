"""Load-balanced HTTP access to market-data and order APIs across several endpoints and API keys."""
