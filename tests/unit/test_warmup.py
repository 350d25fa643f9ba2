"""Warm-up from market-data history, the pure parts: the feed's history ring and answer, reading it, the overlap
with the live feed, the config, the engine's replay (nothing traded or recorded), and the operator's rule for
retrospective pairs (they can fail a candidate, never pass it)."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from policies.models import AnalysisMetric, Comparison, PairedDecisions
from trading_operator.analysis import PairedRequest, Query, Scope, judge_paired
from trading_operator.api import AnalysisPhase
from trading_operator.pairing import Calls, PairedCounts, pair, parse_calls
from trading_runtime.config import RuntimeConfig, Warmup
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.history import HistoryRing, history_body, history_query, overlaps, parse_history
from trading_runtime.feeds.protocol import Quote, Snapshot, parse_message
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.warmup import LiveGate, WarmupStats, fetch_history, history_url, replay

from .test_engine import Rows, config

NOW = "2026-12-06T12:00:00Z"
PAIRED = AnalysisMetric(paired=PairedDecisions(), min_samples=8, sample_unit="discordant calls",
                        passes=Comparison.BELOW, threshold=0.05, required=False, unit="ratio")
QUERY = Query("signal-calls-vs-stable", "", PAIRED,
              paired=PairedRequest(Scope("ns", "SPY", 2), Scope("ns", "SPY", 1), "/decisions"))


def quote(seq: int, ts: float, symbol: str = "SPY", bid: float = 100.0) -> dict[str, object]:
    return {"type": "quote", "symbol": symbol, "seq": seq, "ts": ts, "instrument": symbol, "bid": bid,
            "ask": bid + 0.02, "bid_size": 100.0, "ask_size": 100.0}


# The feed's history ring and answer ------------------------------------------------------------------------

def test_the_ring_keeps_the_latest_market_seconds():
    ring = HistoryRing(max_seconds=10.0, max_events=1000)
    for ts in range(30):
        ring.append(float(ts), str(ts))
    assert [int(f) for f in ring.since(0.0)] == list(range(19, 30))  # 29 - 10 = 19 is still within
    assert ring.latest_ts == 29.0


def test_the_ring_keeps_at_most_its_count():
    ring = HistoryRing(max_seconds=1e6, max_events=5)
    for ts in range(30):
        ring.append(float(ts), str(ts))
    assert [int(f) for f in ring.since(0.0)] == [25, 26, 27, 28, 29]


@pytest.mark.parametrize(("seconds", "events"), [(0.0, 100), (100.0, 0)], ids=["no-seconds", "no-events"])
def test_a_ring_bounded_to_nothing_keeps_nothing(seconds, events):
    ring = HistoryRing(seconds, events)
    ring.append(1.0, "{}")
    assert ring.since(0.0) == []
    assert ring.latest_ts is None


def test_a_negative_bound_is_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        HistoryRing(-1.0, 10)


def test_the_answer_holds_the_frames_as_sent_from_the_last_seconds():
    ring = HistoryRing(100.0, 100)
    for seq in range(1, 11):
        ring.append(float(seq), json.dumps(quote(seq, float(seq))))
    body = json.loads(history_body("SPY", ring, seconds=3.0, since=None))
    assert body["symbol"] == "SPY"
    assert body["latestTs"] == 10.0
    assert [e["seq"] for e in body["events"]] == [7, 8, 9, 10]
    assert [e["seq"] for e in json.loads(history_body("SPY", ring, None, since=9.0))["events"]] == [9, 10]
    assert len(json.loads(history_body("SPY", ring, None, None))["events"]) == 10
    assert json.loads(history_body("SPY", HistoryRing(1.0, 1), 5.0, None)) == {"symbol": "SPY", "latestTs": None,
                                                                               "events": []}


@pytest.mark.parametrize("query", [{"seconds": "-1"}, {"seconds": "abc"}, {"since": "nan"}, {"seconds": "inf"}],
                         ids=["negative", "not-a-number", "nan", "inf"])
def test_a_history_query_that_is_not_a_duration_is_refused(query):
    with pytest.raises(ValueError, match=r"finite number|could not convert"):
        history_query(query)


# Reading the answer -----------------------------------------------------------------------------------------

def test_malformed_rows_are_counted_and_dropped():
    body = {"symbol": "SPY", "events": [
        quote(1, 1.0), "not a frame", {"type": "quote"}, quote(2, 2.0, symbol="QQQ"),
        {"type": "heartbeat", "ts": 2.0}, quote(3, 3.0), quote(3, 3.5), quote(4, 2.5), quote(5, 4.0)]}
    history = parse_history(body, "SPY")
    assert [e.seq for e in history.events] == [1, 3, 5]
    # a string, a quote without fields, another symbol, a heartbeat, a repeated seq, a step back in time
    assert history.malformed == 6


@pytest.mark.parametrize(("body", "why"), [([], "not a history"), ({"symbol": "SPY"}, "not a history"),
                                           ({"symbol": "QQQ", "events": []}, "not of 'SPY'")],
                         ids=["list", "no-events", "other-symbol"])
def test_an_answer_that_is_not_a_history_is_refused(body, why):
    with pytest.raises(ValueError, match=why):
        parse_history(body, "SPY")


# The overlap with the live feed ------------------------------------------------------------------------------

@pytest.mark.parametrize(("seq", "ts", "dropped"), [
    (10, 5.0, True), (7, 4.0, True), (11, 5.0, False), (11, 5.1, False), (3, 9.0, False)],
    ids=["the-last-replayed", "older", "next-seq-same-time", "next", "feed-restarted-numbering"])
def test_the_live_messages_the_history_held_are_dropped(seq, ts, dropped):
    assert overlaps(seq, ts, last_seq=10, last_ts=5.0) is dropped


def test_the_gate_steps_aside_at_the_first_new_message():
    stats = WarmupStats()
    gate = LiveGate(last_seq=10, last_ts=5.0, stats=stats)
    snapshot = Snapshot.model_validate({"type": "snapshot", "symbol": "SPY", "seq": 9, "ts": 4.5, "underlying": {
        "instrument": "SPY", "bid": 100.0, "ask": 100.02, "bid_size": 1.0, "ask_size": 1.0}, "options": []})
    admitted = [gate.admit(m) for m in (snapshot, Quote.model_validate(quote(10, 5.0)),
                                        Quote.model_validate(quote(11, 5.1)), Quote.model_validate(quote(2, 1.0)))]
    assert admitted == [False, False, True, True]  # once past the overlap, a restarted feed's numbers pass too
    assert stats.overlap_dropped == 2
    assert gate.passed


# Config --------------------------------------------------------------------------------------------------

def test_warmup_is_off_by_default():
    assert RuntimeConfig().warmup.history_seconds == 0


@pytest.mark.parametrize("fields", [{"historySeconds": -1}, {"historySeconds": 3601}, {"url": "ftp://feed"},
                                    {"url": "http://"}, {"attempts": 0}, {"maxReplaySeconds": 0},
                                    {"timeoutSeconds": 0}, {"historySecond": 60}],
                         ids=["negative", "over-an-hour", "not-http", "no-host", "no-attempt", "no-replay-time",
                              "no-timeout", "misspelt"])
def test_a_warmup_config_out_of_bounds_is_refused(fields):
    with pytest.raises(ValidationError):
        RuntimeConfig.model_validate({"warmup": fields})


@pytest.mark.parametrize(("url", "feed", "expected"), [
    (None, "ws://127.0.0.1:8765", "http://127.0.0.1:8765/v1/history/SPY?seconds=120"),
    (None, "wss://feed.example/stream", "https://feed.example/stream/v1/history/SPY?seconds=120"),
    ("https://data.example/api/", "ws://x:1", "https://data.example/api/v1/history/SPY?seconds=120"),
], ids=["from-the-feed", "secure-feed-with-path", "named"])
def test_the_history_url(url, feed, expected):
    assert history_url(Warmup(history_seconds=120, url=url), feed, "SPY") == expected


async def test_history_that_cannot_be_had_is_retried_then_given_up_with_the_reason():
    calls: list[str] = []

    async def down(url: str, timeout_s: float) -> object:
        calls.append(url)
        raise ConnectionRefusedError(111, "Connection refused")

    stats = WarmupStats()
    reason = await fetch_history("http://feed/v1/history/SPY", "SPY", Warmup(history_seconds=60, attempts=3), stats,
                                 down)
    assert reason == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert len(calls) == 3
    assert stats.fetch_failures == 3


async def test_history_that_comes_on_a_retry_is_taken():
    answers: list[object] = [RuntimeError("answered 503: busy"), {"symbol": "SPY", "events": [quote(1, 1.0)]}]

    async def flaky(url: str, timeout_s: float) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    stats = WarmupStats()
    history = await fetch_history("u", "SPY", Warmup(history_seconds=60), stats, flaky)
    assert not isinstance(history, str)
    assert [e.seq for e in history.events] == [1]
    assert stats.fetch_failures == 1


# The engine's replay -----------------------------------------------------------------------------------------

def market(ticks: int, seed: int = 3) -> list[Quote]:
    """`ticks` of the synthetic market's underlying quotes and trades, numbered like the feed's."""
    simulator = MarketSimulator(["SPY"], seed=seed, option_quotes_per_tick=1, trade_probability=0.6, edge=1.0)
    frames, seq = [], 0
    for _ in range(ticks):
        for message in simulator.tick("SPY", 0.25):
            seq += 1
            frames.append({**message, "seq": seq})
    return [parse_message(json.dumps(f)) for f in frames]  # type: ignore[misc]


ACTIVE = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5, "horizonSeconds": 2}}


async def test_a_replay_scores_calls_and_trades_nothing():
    rows, metrics = Rows(), RuntimeMetrics("SPY")
    engine = SymbolEngine(config(**ACTIVE), True, metrics, rows, seed=0)
    from trading_runtime.feeds.history import History
    stats = WarmupStats()
    assert await replay(engine, History(market(2000), 0), 30.0, stats)
    assert stats.replayed > 2000
    assert stats.failed == 0
    assert engine.accuracy.report.calls > 10  # the same scoring as live
    assert rows.by_table == {}  # no tick, bar, signal, order or fill recorded
    assert engine.broker.held() == {}
    assert engine.state.direction == 0
    assert engine.sink is rows
    assert not engine.replaying
    assert not any(engine.state.halted.values())
    last = max(p.slot for p in engine.accuracy.decisions)
    assert engine.accuracy.retrospective_before is not None
    assert engine.accuracy.retrospective_before > last
    report = engine.decisions_report()
    assert report["retrospectiveBefore"] == engine.accuracy.retrospective_before


async def test_replayed_calls_are_the_calls_a_live_engine_made_on_the_same_ticks():
    """The replay is the live path: on the same events, the same points, directions and outcomes."""
    events = market(1500)
    live = SymbolEngine(config(**ACTIVE), True, RuntimeMetrics("SPY"), Rows(), seed=0)
    for event in events:
        await settle(live.on_message(event))
    warmed = SymbolEngine(config(**ACTIVE), True, RuntimeMetrics("SPY"), Rows(), seed=0)
    from trading_runtime.feeds.history import History
    await replay(warmed, History(events, 0), 30.0, WarmupStats())
    assert list(warmed.accuracy.decisions) == list(live.accuracy.decisions)
    assert len(live.accuracy.decisions) > 20


async def test_a_replay_past_its_time_is_cut_short_and_says_how_much_it_left():
    engine = SymbolEngine(config(**ACTIVE), True, RuntimeMetrics("SPY"), Rows(), seed=0)
    ticks = iter(range(10**6))
    from trading_runtime.feeds.history import History
    stats = WarmupStats()
    events = market(600)
    whole = await replay(engine, History(events, 0), 5.0, stats, clock=lambda: float(next(ticks)))
    assert not whole
    assert stats.replayed + stats.skipped == len(events)
    assert stats.skipped > 0
    assert not engine.replaying  # live after all


async def test_a_halt_raised_by_the_history_does_not_stop_live_trading():
    engine = SymbolEngine(config(**ACTIVE), True, RuntimeMetrics("SPY"), Rows(), seed=0)
    engine.start_warmup()
    engine._halt("black-swan", True)  # as a dislocation in the history would
    engine.go_live()
    assert engine.state.halted.get("black-swan") is False
    assert engine.trading


# Pairing retrospective calls and judging them -------------------------------------------------------------

def test_a_pair_is_retrospective_when_either_side_called_it_on_history():
    candidate = Calls(3.0, {1: (1, 1), 2: (-1, 1), 3: (1, 1), 4: (-1, 1)}, retrospective_before=3)
    stable = Calls(3.0, {1: (1, 1), 2: (1, 1), 3: (1, 1), 4: (1, 1)}, retrospective_before=4)
    counts = pair(candidate, stable)
    assert counts.pairs == 4
    assert counts.retrospective == 3  # slots 1, 2 by the candidate, 3 by stable
    assert counts.live_table == PairedCounts(both=0, candidate_only=0, stable_only=1, neither=0)


def test_without_retrospective_points_the_table_is_as_before():
    counts = pair(Calls(3.0, {1: (1, 1), 2: (-1, 1)}), Calls(3.0, {1: (1, 1), 2: (1, 1)}))
    assert counts.live is None
    assert counts.retrospective == 0
    assert counts.live_table is counts


@pytest.mark.parametrize("before", ["3", 2.5, True], ids=["string", "float", "bool"])
def test_a_retrospective_mark_that_is_not_a_slot_is_refused(before):
    with pytest.raises(ValueError, match="retrospectiveBefore"):
        parse_calls({"horizonSeconds": 3, "points": [], "retrospectiveBefore": before})


def test_the_runtime_answer_parses_with_its_mark():
    assert parse_calls({"horizonSeconds": 3, "points": [[5, 1, 1]], "retrospectiveBefore": 6}) == \
        Calls(3.0, {5: (1, 1)}, 6)


def counts(retro: PairedCounts, live: PairedCounts) -> PairedCounts:
    whole = PairedCounts(retro.both + live.both, retro.candidate_only + live.candidate_only,
                         retro.stable_only + live.stable_only, retro.neither + live.neither)
    return PairedCounts(whole.both, whole.candidate_only, whole.stable_only, whole.neither, live=live)


NONE = PairedCounts(0, 0, 0, 0)


def test_a_flipped_candidate_fails_on_retrospective_pairs_alone():
    measured = judge_paired(QUERY, counts(PairedCounts(2, 0, 12, 0), NONE), 0.9, NOW)
    assert measured.phase is AnalysisPhase.FAILED
    assert measured.low is not None
    assert measured.low > 0.05
    assert "14 of them retrospective" in measured.message


def test_retrospective_pairs_never_pass_a_candidate():
    good_history = PairedCounts(2000, 10, 10, 0)  # on its own, enough to pass
    measured = judge_paired(QUERY, counts(good_history, PairedCounts(5, 1, 1, 0)), 0.9, NOW)
    assert measured.phase is AnalysisPhase.INCONCLUSIVE
    assert "only 2 live discordant calls" in measured.message
    assert "never pass it" in measured.message


def test_a_pass_is_judged_on_the_live_pairs_alone():
    good = PairedCounts(2000, 10, 10, 0)
    passed = judge_paired(QUERY, counts(PairedCounts(50, 3, 3, 0), good), 0.9, NOW)
    assert passed.phase is AnalysisPhase.SUCCESSFUL
    assert passed.samples == 20
    assert "passed on the 2020 live pairs alone" in passed.message
    # the same live pairs, without the retrospective ones: the same verdict and interval
    alone = judge_paired(QUERY, good, 0.9, NOW)
    assert alone.phase is AnalysisPhase.SUCCESSFUL
    assert (alone.low, alone.high) == (passed.low, passed.high)


def test_a_candidate_not_failed_on_all_pairs_but_unclear_on_live_ones_is_inconclusive():
    # good on history, worse live: not failed on every pair, not passed on the live ones
    measured = judge_paired(QUERY, counts(PairedCounts(3000, 40, 40, 0), PairedCounts(30, 2, 12, 0)), 0.9, NOW)
    assert measured.phase is AnalysisPhase.INCONCLUSIVE, measured.message
    assert not math.isnan(measured.value or math.nan)


def test_calls_read_while_the_history_is_still_replaying_are_all_retrospective():
    engine = SymbolEngine(config(**ACTIVE), True, RuntimeMetrics("SPY"), Rows(), seed=0)
    engine.start_warmup()
    for event in market(1000):
        engine.warm(event)
    report = engine.decisions_report()
    assert report["points"]
    assert report["retrospectiveBefore"] > max(p[0] for p in report["points"])
