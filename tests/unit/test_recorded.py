"""The recorded-data loader on files shaped like the failures users hit: each defect of the backtesting
issue has a test here that failed with the old replay (rows silently dropped, wrong dates, lost quotes)."""

from __future__ import annotations

import datetime
import math

import pytest

from tests.unit.recorded_files import MONDAY, NEW_YORK, minute_bars, open_at, ticks, write_csv, write_parquet
from trading_runtime.feeds.events import QUOTE, TRADE, merge
from trading_runtime.feeds.protocol import Quote, Trade
from trading_runtime.feeds.recorded import LoadOptions, RecordedDataError, load_recorded


def test_iso_timestamps_a_timestamp_column_and_lowercase_symbols_load(tmp_path):
    """The old replay dropped every such row silently and scored nothing (output nan, exit 0)."""
    path = write_csv(tmp_path / "spy-1m.csv", minute_bars([MONDAY]))
    recorded = load_recorded(path)
    report, events = recorded.report, recorded.events
    assert (report.layout, report.time_column, report.symbol) == ("bars", "timestamp", "SPY")
    assert report.rows == 390
    assert report.dropped == 0
    assert report.issues["lowercase-symbol"].count == 390  # noted, not dropped
    assert len(events) == 2 * 390
    assert events.symbol == "SPY"
    assert report.bar_seconds == 60


def test_bars_replay_at_their_close_with_a_spread(tmp_path):
    """Bars used to replay at their start time (a look-ahead of one bar) with bid = ask and zero sizes."""
    path = write_csv(tmp_path / "spy-1m.csv", minute_bars([MONDAY])[:3])
    recorded = load_recorded(path, LoadOptions(bar_spread_bps=2.0))
    quote, trade = list(recorded.events.messages())[:2]
    assert isinstance(quote, Quote)
    assert isinstance(trade, Trade)
    assert quote.ts == trade.ts == open_at(MONDAY).timestamp() + 60  # the first bar closes at 09:31
    assert quote.ask - quote.bid == pytest.approx(quote.mid * 2e-4)
    assert recorded.report.issues["modelled-quote"].count == 3


def test_millisecond_epochs_are_read_as_milliseconds(tmp_path):
    """The old replay read them as seconds: 'year 45728 is out of range' on every tick, swallowed."""
    path = write_csv(tmp_path / "spy-ticks.csv", ticks(MONDAY, 60))
    recorded = load_recorded(path)
    assert recorded.report.epoch_units == ["ms"]
    assert recorded.events.start == open_at(MONDAY).timestamp()
    assert recorded.report.dropped == 0
    kinds = recorded.events.kind.tolist()
    assert kinds.count(QUOTE) == 60
    assert kinds.count(TRADE) == 20


def test_a_zero_volume_bar_keeps_its_quote(tmp_path):
    rows = minute_bars([MONDAY])[:3]
    rows[1]["volume"] = 0.0
    recorded = load_recorded(write_csv(tmp_path / "bars.csv", rows))
    kinds = recorded.events.kind.tolist()
    assert kinds == [QUOTE, TRADE, QUOTE, QUOTE, TRADE]
    assert recorded.report.issues["zero-volume-bar"].count == 1
    assert recorded.report.dropped == 0


def test_out_of_order_and_duplicate_bars_are_dropped_and_counted_with_their_lines(tmp_path):
    rows = minute_bars([MONDAY])[:6]
    rows[3], rows[4] = rows[4], rows[3]  # minute 4 before minute 3
    rows.insert(2, dict(rows[1]))  # the same minute twice
    recorded = load_recorded(write_csv(tmp_path / "bars.csv", rows))
    issues = recorded.report.issues
    assert issues["out-of-order"].count == 1
    assert issues["out-of-order"].dropped
    assert issues["out-of-order"].examples[0].startswith("line 7:")
    assert issues["duplicate-bar"].count == 1
    assert issues["duplicate-bar"].examples[0].startswith("line 4:")
    assert recorded.report.dropped == 2
    assert list(recorded.events.ts) == sorted(recorded.events.ts)


def test_gaps_inside_a_session_are_reported_but_overnight_and_weekends_are_not(tmp_path):
    friday, monday = datetime.date(2026, 3, 6), datetime.date(2026, 3, 9)
    rows = minute_bars([friday, monday])
    del rows[100:130]  # half an hour missing on Friday
    recorded = load_recorded(write_csv(tmp_path / "bars.csv", rows))
    gaps = recorded.report.issues["gap"]
    assert gaps.count == 1
    assert "no data for 1860 s" in gaps.examples[0]
    assert recorded.report.sessions == 2


def test_rows_on_holidays_and_outside_regular_hours_are_dropped_and_counted(tmp_path):
    good_friday = datetime.date(2026, 4, 3)
    rows = minute_bars([good_friday], minutes=5) + minute_bars([datetime.date(2026, 4, 6)], minutes=5)
    pre_market = dict(rows[-1], timestamp=(open_at(datetime.date(2026, 4, 7)) - datetime.timedelta(hours=1))
                      .isoformat())
    recorded = load_recorded(write_csv(tmp_path / "bars.csv", [*rows, pre_market]), LoadOptions(bar_seconds=60))
    assert recorded.report.issues["outside-session"].count == 6
    assert len(recorded.events) == 10
    extended = load_recorded(write_csv(tmp_path / "bars2.csv", [*rows, pre_market]),
                             LoadOptions(bar_seconds=60, extended_hours=True))
    assert "outside-session" not in extended.report.issues


def test_zero_size_quotes_are_dropped_and_counted(tmp_path):
    rows = ticks(MONDAY, 10)
    rows[0]["bid_size"] = 0.0
    recorded = load_recorded(write_csv(tmp_path / "ticks.csv", rows))
    assert recorded.report.issues["zero-size-quote"].count == 1
    assert recorded.report.issues["zero-size-quote"].examples[0].startswith("line 2:")


def test_unparseable_rows_are_counted_with_line_and_reason(tmp_path):
    rows = ticks(MONDAY, 5)
    rows[2]["bid"] = "abc"  # rows 0, 2, 3, 4 are quotes, 1 a trade
    rows[3]["ts"] = "yesterday"
    rows[4]["bid"], rows[4]["ask"] = 501.0, 500.0  # crossed
    recorded = load_recorded(write_csv(tmp_path / "ticks.csv", rows))
    unparseable = recorded.report.issues["unparseable"]
    assert unparseable.count == 3
    assert unparseable.examples[0].startswith("line 4: bid: Input should be a valid number")
    assert unparseable.examples[1] == "line 5: timestamp 'yesterday' is neither an epoch number nor ISO 8601"
    assert "crossed quote" in unparseable.examples[2]


def test_naive_timestamps_need_a_time_zone(tmp_path):
    rows = minute_bars([MONDAY])[:3]
    for row in rows:
        row["timestamp"] = datetime.datetime.fromisoformat(row["timestamp"]).replace(tzinfo=None).isoformat()
    path = write_csv(tmp_path / "naive.csv", rows)
    with pytest.raises(RecordedDataError, match=r"has no time zone.*--timezone America/New_York"):
        load_recorded(path)
    recorded = load_recorded(path, LoadOptions(timezone="America/New_York"))
    assert recorded.events.start == open_at(MONDAY).timestamp() + 60


def test_nothing_usable_is_an_error_with_the_report(tmp_path):
    rows = ticks(MONDAY, 3)
    for row in rows:
        row["price"] = row["bid"] = "n/a"
    with pytest.raises(RecordedDataError, match=r"(?s)nothing usable in .*unparseable: 4 dropped; line 2: bid"):
        load_recorded(write_csv(tmp_path / "bad.csv", rows))


def test_several_symbols_need_a_choice_and_unknown_columns_are_reported(tmp_path):
    rows = ticks(MONDAY, 5) + ticks(MONDAY, 5, symbol="QQQ")
    for row in rows:
        row["exchange"] = "Q"
    path = write_csv(tmp_path / "two.csv", sorted(rows, key=lambda r: r["ts"]))
    with pytest.raises(RecordedDataError, match=r"several symbols \(SPY and QQQ"):
        load_recorded(path)
    recorded = load_recorded(path, LoadOptions(symbol="qqq"))
    assert recorded.events.symbol == "QQQ"
    assert recorded.report.unknown_columns == ["exchange"]
    assert recorded.report.issues["other-symbol"].count == 7


def test_no_time_column_is_a_clear_error(tmp_path):
    path = write_csv(tmp_path / "x.csv", [{"when": 1, "bid": 1.0, "ask": 1.1}])
    with pytest.raises(RecordedDataError, match="no time column; expected one of ts, timestamp"):
        load_recorded(path)


def test_parquet_with_timezone_aware_timestamps_and_option_quotes(tmp_path):
    origin = open_at(MONDAY)
    rows = [{"timestamp": origin + datetime.timedelta(seconds=i), "symbol": "SPY", "type": "quote",
             "expiry": "2026-03-20", "strike": 500.0, "right": "c", "bid": 5.0, "ask": 5.2, "bid_size": 10.0,
             "ask_size": 12.0} for i in range(3)]
    recorded = load_recorded(write_parquet(tmp_path / "chain.parquet", rows))
    assert recorded.events.instruments == ("SPY-20260320-C-500",)
    assert recorded.events.start == origin.timestamp()
    assert origin.tzinfo is NEW_YORK


def test_events_slice_by_time_and_fingerprint_their_content(tmp_path):
    recorded = load_recorded(write_csv(tmp_path / "bars.csv", minute_bars([MONDAY])))
    events = recorded.events
    start = open_at(MONDAY).timestamp()
    first_hour = events.between(start, start + 3600)
    assert len(first_hour) == 2 * 59
    assert first_hour.end < start + 3600
    assert events.fingerprint() == load_recorded(write_csv(tmp_path / "b.csv", minute_bars([MONDAY]))).events \
        .fingerprint()
    assert events.fingerprint() != first_hour.fingerprint()
    assert not math.isnan(first_hour.start)


def test_quote_trade_and_chain_files_of_one_symbol_merge_in_time_order(tmp_path):
    rows = ticks(MONDAY, 6)
    quotes = [r for r in rows if r["type"] == "quote"]
    trades = [r for r in rows if r["type"] == "trade"]
    origin = open_at(MONDAY)
    chain = [{"timestamp": (origin + datetime.timedelta(seconds=i, milliseconds=250)).isoformat(), "symbol": "SPY",
              "expiry": "2026-03-20", "strike": 500, "right": "P", "bid": 4.0, "ask": 4.1, "bid_size": 5,
              "ask_size": 5} for i in range(3)]
    parts = [load_recorded(write_csv(tmp_path / f"{name}.csv", part)).events
             for name, part in (("quotes", quotes), ("trades", trades), ("chain", chain))]
    merged = merge(parts)
    assert len(merged) == sum(len(p) for p in parts)
    assert list(merged.ts) == sorted(merged.ts)
    assert set(merged.instruments) == {"SPY", "SPY-20260320-P-500"}
    names = [m.instrument for m in merged.messages()]
    assert names.count("SPY-20260320-P-500") == 3
    with pytest.raises(ValueError, match="several symbols"):
        merge([parts[0], load_recorded(write_csv(tmp_path / "q.csv", ticks(MONDAY, 2, symbol="QQQ"))).events])
