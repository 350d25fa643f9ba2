"""opsctl: the command-line interface of tradeops."""
