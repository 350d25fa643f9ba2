"""The anytime-valid confidence sequence of a mean in [-1, 1] (`confidence_sequence.py`): its intervals, that
looking at it after every value does not fail a candidate as good as stable more often than alpha/2 (where a
fixed-sample interval looked at as often does), and that a fully flipped candidate fails within a dozen or so
pairs."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_operator.confidence_sequence import mean_sequence
from trading_operator.intervals import wilson, z_for

ALPHA = 0.05
MARGIN = 0.05
"""signal-calls-vs-stable's threshold: fail when worse than stable by more than this."""


@pytest.mark.parametrize(
    ("counts", "mean", "low", "high"),
    [
        ({}, 0.0, -1.0, 1.0),
        ({1: 1}, 1.0, -0.976, 1.0),  # one value says next to nothing
        ({1: 8}, 1.0, 0.015, 1.0),  # eight identical values: just past the margin's other side
        ({1: 9}, 1.0, 0.090, 1.0),  # nine: the margin excluded
        ({1: 12, -1: 1}, 0.846, 0.088, 1.0),
        ({0: 500}, 0.0, -0.0115, 0.0115),  # agreement on 500 pairs: surely within a point either way
        ({1: 15, -1: 15, 0: 360}, 0.0, -0.0457, 0.0457),
    ],
    ids=["none", "one", "eight-same", "nine-same", "one-against", "all-agree", "even"],
)
def test_interval_of_known_samples(counts, mean, low, high):
    assert mean_sequence(counts, ALPHA) == pytest.approx((mean, low, high), abs=1e-3)


def test_a_lower_confidence_gives_a_narrower_interval():
    counts = {1: 30, -1: 10, 0: 60}
    _, low95, high95 = mean_sequence(counts, 0.05)
    _, low80, high80 = mean_sequence(counts, 0.2)
    assert low95 < low80 < 0.2 < high80 < high95


counts_strategy = st.dictionaries(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), st.integers(0, 400), min_size=1)


@settings(max_examples=60, deadline=None)
@given(counts_strategy)
def test_the_interval_holds_the_sample_mean_and_mirrors_with_the_values(counts):
    mean, low, high = mean_sequence(counts, ALPHA)
    assert -1.0 <= low <= mean + 1e-9 <= high + 2e-9 <= 1.0 + 2e-9
    mirrored = mean_sequence({-value: n for value, n in counts.items()}, ALPHA)
    assert mirrored == pytest.approx((-mean, -high, -low), abs=1e-9)


def _fails_at(judge: Callable[[int, int], bool], looks: int) -> list[int]:
    """For each number of pairs n (1..looks), the fewest candidate-worse pairs k among n (the rest
    candidate-better) at which `judge(k, n)` fails the candidate; n + 1 when none does. Failing is monotone in
    k, and the boundary moves by a step or two from one n to the next, so it is walked, not searched."""
    boundary, k = [], 1
    for n in range(1, looks + 1):
        k = min(k, n + 1)
        while k > 0 and judge(k - 1, n):
            k -= 1
        while k <= n and not judge(k, n):
            k += 1
        boundary.append(k)
    return boundary


def _chance_of_ever_failing(boundary: list[int], worse_share: float) -> float:
    """Exactly: the chance that a candidate worse on each discordant pair with probability `worse_share`,
    independently, is failed at any of the looks (one after every pair), from the failing boundary."""
    alive = {0: 1.0}  # candidate-worse count → probability, among the paths not failed yet
    failed = 0.0
    for k_fail in boundary:
        grown: dict[int, float] = {}
        for k, p in alive.items():
            grown[k + 1] = grown.get(k + 1, 0.0) + p * worse_share
            grown[k] = grown.get(k, 0.0) + p * (1 - worse_share)
        failed += sum(p for k, p in grown.items() if k >= k_fail)
        alive = {k: p for k, p in grown.items() if k < k_fail}
    return failed


def _sequence_fails(k: int, n: int) -> bool:
    return mean_sequence({1: k, -1: n - k}, ALPHA)[1] >= MARGIN


def _fixed_sample_fails(k: int, n: int) -> bool:
    """The mean of ±1 values is 2p - 1 with p the share of +1: its Wilson interval, as if n had been fixed."""
    return 2 * wilson(k, n, z_for(1 - ALPHA))[0] - 1 >= MARGIN


LOOKS = 300


@pytest.mark.parametrize("worse_share", [0.5, (1 + MARGIN) / 2], ids=["as-good-as-stable", "at-the-margin"])
def test_looking_after_every_pair_fails_a_candidate_within_the_margin_at_most_alpha_over_2(worse_share):
    """300 discordant pairs, judged after each one as the operator does every second: the chance of ever
    failing a candidate that is no worse than the margin stays within the sequence's alpha/2 — exactly
    computed, not sampled. The fixed-sample interval judged as often fails the same candidate far more often:
    what judging Newcombe's or Wilson's interval on a growing sample did."""
    assert _chance_of_ever_failing(_fails_at(_sequence_fails, LOOKS), worse_share) <= ALPHA / 2
    assert _chance_of_ever_failing(_fails_at(_fixed_sample_fails, LOOKS), worse_share) > 2 * ALPHA


def test_a_candidate_at_the_margin_with_agreeing_calls_is_rarely_failed_over_many_looks():
    """Seeded simulation with concordant pairs too (80 % of calls the same), the candidate worse by exactly
    the margin (12.5 % candidate-worse pairs, 7.5 % candidate-better): at most alpha/2 of 100 are ever failed
    over 200 pairs, looked at every 5."""
    failed = 0
    for seed in range(100):
        rng, counts = random.Random(seed), {1: 0, -1: 0, 0: 0}
        for n in range(1, 201):
            u = rng.random()
            counts[1 if u < 0.125 else -1 if u < 0.2 else 0] += 1
            if n % 5 == 0 and mean_sequence(counts, ALPHA)[1] >= MARGIN:
                failed += 1
                break
    assert failed <= 100 * ALPHA / 2


def test_a_fully_flipped_candidate_fails_within_a_small_number_of_pairs():
    """Every call flipped, stable right on 90 % of the calls (the devstack's edge market): seeded, the
    sequence fails it within a dozen or so pairs, and within 30 for 95 % of them."""
    needed = []
    for seed in range(200):
        rng, counts, n = random.Random(seed), {1: 0, -1: 0}, 0
        while mean_sequence(counts, ALPHA)[1] < MARGIN:
            counts[1 if rng.random() < 0.9 else -1] += 1
            n += 1
        needed.append(n)
    assert min(needed) == 9  # nine identical values are the fewest that can decide
    assert statistics.median(needed) <= 14
    assert sorted(needed)[int(0.95 * len(needed))] <= 30
