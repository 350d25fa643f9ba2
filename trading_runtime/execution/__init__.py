"""Order execution behind a broker interface; paper trading (simulated fills) is the default."""
