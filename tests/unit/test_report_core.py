"""The reports' pure helpers: intervals on proportions and honest verdicts, windows from the command line,
incident runs from stepped series, and rendering (Markdown cells, HTML escaping)."""

from __future__ import annotations

import datetime

import pytest

from reports.document import Document, Section, Table, html, markdown
from reports.performance import intervals
from reports.sources import Series
from reports.stats import Proportion, compare
from reports.window import Window, parse_time

NOW = datetime.datetime(2026, 12, 6, 12, 30, tzinfo=datetime.UTC)


def test_wilson_interval_matches_the_textbook_value():
    low, high = Proportion(81, 263).interval()  # Newcombe (1998), example (a): 0.2553 – 0.3662
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert Proportion(0, 0).interval() is None


@pytest.mark.parametrize(("a", "b", "verdict"), [
    (Proportion(600, 1000), Proportion(500, 1000), "better"),
    (Proportion(400, 1000), Proportion(500, 1000), "worse"),
    (Proportion(510, 1000), Proportion(500, 1000), "inconclusive (the interval spans no difference)"),
    (Proportion(20, 20), Proportion(0, 20), "inconclusive (fewer than 30 samples)"),
], ids=["better", "worse", "overlapping", "too-few"])
def test_verdicts_are_judged_on_the_interval(a, b, verdict):
    assert compare(a, b) == verdict


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW), ("-30d", NOW - datetime.timedelta(days=30)), ("-12h", NOW - datetime.timedelta(hours=12)),
    ("2026-11-01", datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)),
    ("2026-11-01T02:00:00+02:00", datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)),
])
def test_window_times(text, expected):
    assert parse_time(text, NOW) == expected


def test_windows_are_whole_hours_and_never_backwards():
    window = Window.whole_hours(NOW - datetime.timedelta(days=1), NOW)
    assert (window.start.minute, window.end.minute, window.hours) == (0, 0, 23)
    assert [e.day for e in Window(NOW - datetime.timedelta(days=2), NOW).day_ends()] == [5, 6]
    with pytest.raises(ValueError, match="before it starts"):
        Window(NOW, NOW - datetime.timedelta(hours=1))


def test_runs_of_steps_become_intervals():
    up = Series({"symbol": "SPY"}, ((600.0, 0.0), (900.0, 0.5), (1800.0, 0.0)))
    assert [(i.start, i.seconds) for i in intervals([up], None, 300, down=True)] == [(600.0, 450.0),
                                                                                     (1800.0, 300.0)]
    halted = Series({"symbol": "QQQ", "reason": "kill-switch"}, ((300.0, 1.0), (600.0, 1.0)))
    (run,) = intervals([halted], "reason", 300, down=False)
    assert (run.symbol, run.what, run.start, run.seconds) == ("QQQ", "kill-switch", 300.0, 600.0)


def test_rendering_escapes_what_it_shows():
    doc = Document("x", "A <report>", ["line"], [Section("S", ["<b>text</b>"], [Table(["a|b"], [["1|2"]])])], {})
    assert "| a\\|b |" in markdown(doc)
    page = html(doc)
    assert "&lt;b&gt;text&lt;/b&gt;" in page
    assert "<title>A &lt;report&gt;</title>" in page
