"""The synthetic market's seeded order-flow edge: off by default without changing a draw of the stream, and
when on, learnable — the quoted size imbalance now leads the move of the next minute."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trading_runtime.feeds.synthetic import MarketSimulator

TICKS = 6000
HORIZON = 60


def stream(**kwargs: float) -> list[str]:
    sim = MarketSimulator(["SPY"], seed=11, **kwargs)
    return [json.dumps(sim.tick("SPY", 1.0), sort_keys=True) for _ in range(300)]


def test_no_edge_is_the_unchanged_stream():
    assert stream(edge=0.0) == stream()


def lead_correlation(edge: float, seed: int) -> float:
    """Correlation of the quoted size imbalance with the mid's log move over the next HORIZON ticks."""
    sim = MarketSimulator(["SPY"], seed=seed, edge=edge)
    mids, imbalance = [], []
    for _ in range(TICKS):
        quote = sim.tick("SPY", 1.0)[0]
        mids.append((quote["bid"] + quote["ask"]) / 2)
        imbalance.append((quote["bidSize"] - quote["askSize"]) / (quote["bidSize"] + quote["askSize"]))
    log_mid = np.log(np.asarray(mids))
    forward = log_mid[HORIZON:] - log_mid[:-HORIZON]
    return float(np.corrcoef(np.asarray(imbalance)[:-HORIZON], forward)[0, 1])


@pytest.mark.parametrize("seed", [1, 2])
def test_with_an_edge_the_size_imbalance_leads_the_next_minute(seed):
    assert lead_correlation(1.0, seed) > 0.1
    assert abs(lead_correlation(0.0, seed)) < 0.1
