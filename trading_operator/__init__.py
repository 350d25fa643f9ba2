"""The tradeops Kubernetes operator: TradingSymbol API, planner, builders, revisions, kopf handlers."""
