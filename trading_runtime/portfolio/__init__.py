"""The portfolio risk service: every symbol's positions and fills in from Redis Streams (consumer groups),
portfolio VaR/CVaR, exposure and correlation caps out, for the runtimes to read (`python -m
trading_runtime.portfolio`)."""
