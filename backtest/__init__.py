"""The backtester: the live `SymbolEngine` on recorded or synthetic data through an injected clock and a
simulated broker; results with honest statistics; walk-forward folds and parameter sweeps executed as
Dask tasks; reports. `opsctl backtest` is its command line."""
