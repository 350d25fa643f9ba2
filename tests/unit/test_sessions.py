"""Session calendars: the rules agree with the exchange-calendars package, periods cut time without holes."""

from __future__ import annotations

import datetime
import warnings

import exchange_calendars
import pytest

from trading_runtime.sessions import CALENDARS, PeriodTracker, calendar_for, nyse_holidays

FIRST, LAST = datetime.date(2015, 1, 1), datetime.date(2026, 12, 31)


@pytest.fixture(scope="module")
def xnys():
    """(sessions, opens, closes) from exchange-calendars (whose pandas use warns; not ours to fix)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calendar = exchange_calendars.get_calendar("XNYS", start=FIRST.isoformat(), end=LAST.isoformat())
        return ([s.date() for s in calendar.sessions], [t.timestamp() for t in calendar.opens],
                [t.timestamp() for t in calendar.closes])


def test_nyse_sessions_match_exchange_calendars(xnys):
    sessions, opens, closes = xnys
    ours = CALENDARS["XNYS"].sessions(FIRST, LAST)
    assert [day for day, _, _ in ours] == sessions
    assert [o for _, o, _ in ours] == opens
    assert [c for _, _, c in ours] == closes  # early closes included


@pytest.mark.parametrize(("day", "holiday"), [
    ("2022-12-26", True),   # Christmas on a Sunday → Monday
    ("2021-12-31", False),  # New Year's Day 2022 on a Saturday: not observed on Friday
    ("2026-07-03", True),   # Independence Day on a Saturday → Friday
    ("2025-01-09", True),   # day of mourning
    ("2026-04-03", True),   # Good Friday
    ("2021-06-18", False),  # Juneteenth before 2022
], ids=str)
def test_holiday_rules(day, holiday):
    date = datetime.date.fromisoformat(day)
    assert (date in nyse_holidays(date.year)) is holiday


def test_periods_tile_time_and_name_the_next_session():
    calendar = calendar_for("equity-options")
    friday_close = datetime.datetime(2026, 3, 6, 16, 0, tzinfo=calendar.zone).timestamp()
    inside = calendar.period(friday_close - 1)
    weekend = calendar.period(friday_close)
    assert inside.open
    assert inside.key == "2026-03-06"
    assert inside.end == friday_close
    assert not weekend.open
    assert weekend.key == "closed-before-2026-03-09"
    assert weekend.start == friday_close
    monday = calendar.period(weekend.end)
    assert monday.open
    assert monday.key == "2026-03-09"
    assert monday.start == weekend.end


def test_futures_sessions_open_the_evening_before():
    calendar = calendar_for("futures-options")
    sunday_evening = datetime.datetime(2026, 3, 8, 18, 30, tzinfo=calendar.zone).timestamp()
    period = calendar.period(sunday_evening)
    assert period.open
    assert period.key == "2026-03-09"


def test_tracker_reports_boundaries_only():
    calendar = calendar_for("equity-options")
    open_ = datetime.datetime(2026, 3, 9, 9, 30, tzinfo=calendar.zone).timestamp()
    tracker = PeriodTracker(calendar)
    changes = [tracker.update(ts) for ts in (open_ - 60, open_ - 1, open_, open_ + 3600, open_ + 86400)]
    assert changes == [False, False, True, False, True]


def test_unknown_calendar_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown market or calendar 'moon'"):
        calendar_for("moon")
    assert calendar_for("24x7").period(0.0).open
