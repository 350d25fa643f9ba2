"""Session calendars: when a market is open, so that indicators, risk and scoring treat an overnight, weekend
or holiday gap as the break it is rather than as one very long tick.

Time is cut into periods: a session (the market open) or the closed stretch between two sessions. Every
timestamp falls in exactly one period, and the engine resets what must not span a break (the black-swan
reference, scoring points, the session volume profile) when the period changes. Data stamped outside a
session is still processed (a feed that runs around the clock, like the synthetic one, keeps working); the
recorded-data loader drops and counts it unless extended hours are asked for.

Calendars (rules, not a downloaded list; `tests/unit/test_sessions.py` checks them against the
exchange-calendars package for 2015–2026):
- `XNYS` (equity options): 09:30–16:00 America/New_York on NYSE trading days; early close 13:00 on July 3
  (when a weekday before the holiday), the day after Thanksgiving and Christmas Eve. Holidays: New Year's
  Day (a Saturday one is not observed), Martin Luther King Jr. Day, Washington's Birthday, Good Friday,
  Memorial Day, Juneteenth (from 2022), Independence Day, Labor Day, Thanksgiving, Christmas (Saturday →
  Friday, Sunday → Monday), and the unscheduled closures listed in `CLOSURES`.
- `XCBO-INDEX` (index options such as SPX): NYSE days, 09:30–16:15, early close 13:15.
- `CME-EQUITY` (equity-index futures options such as ES): the session of trading day D runs from 18:00 on
  the calendar day before D to 17:00 on D (America/New_York), on NYSE trading days; early close 13:15.
  CME's own holiday schedule (abbreviated sessions on some exchange holidays) is not modelled.
- `24x7`: one endless session (no breaks).
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")

CLOSURES = frozenset(datetime.date.fromisoformat(d) for d in (
    "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14",  # September 11
    "2004-06-11",  # President Reagan's funeral
    "2007-01-02",  # President Ford's funeral
    "2012-10-29", "2012-10-30",  # Hurricane Sandy
    "2018-12-05",  # President George H. W. Bush's funeral
    "2025-01-09",  # President Carter's funeral
))
"""Unscheduled NYSE closures (days of mourning, storms)."""


@dataclass(frozen=True)
class Period:
    """A session (`open`) or the closed stretch before it, as [start, end) in epoch seconds."""

    key: str
    """The session's date (`2026-03-02`), or `closed-before-2026-03-02` for the stretch before it."""
    open: bool
    start: float
    end: float

    def __contains__(self, ts: float) -> bool:
        return self.start <= ts < self.end


def _easter(year: int) -> datetime.date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month = (h + weekday_shift - 7 * m + 114) // 31
    day = (h + weekday_shift - 7 * m + 114) % 31 + 1
    return datetime.date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> datetime.date:
    """The n-th (1-based; -1 = last) given weekday (Monday = 0) of a month."""
    if n > 0:
        first = datetime.date(year, month, 1)
        return first + datetime.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = datetime.date(year + month // 12, month % 12 + 1, 1) - datetime.timedelta(days=1)
    return last - datetime.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: datetime.date) -> datetime.date:
    """Saturday holidays are observed on Friday, Sunday ones on Monday."""
    if day.weekday() == 5:
        return day - datetime.timedelta(days=1)
    if day.weekday() == 6:
        return day + datetime.timedelta(days=1)
    return day


@functools.cache
def nyse_holidays(year: int) -> frozenset[datetime.date]:
    """Full-day NYSE closures of a year (weekends aside)."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - datetime.timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(datetime.date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(datetime.date(year, 12, 25)),
    }
    new_year = datetime.date(year, 1, 1)
    if new_year.weekday() != 5:  # NYSE does not close on the Friday before a Saturday New Year's Day
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(datetime.date(year, 6, 19)))  # Juneteenth
    return frozenset(days | {d for d in CLOSURES if d.year == year})


def nyse_trading_day(day: datetime.date) -> bool:
    return day.weekday() < 5 and day not in nyse_holidays(day.year)


def nyse_early_close(day: datetime.date) -> bool:
    """Half days: July 3 (Monday–Thursday), the day after Thanksgiving, Christmas Eve (Monday–Thursday)."""
    if not nyse_trading_day(day):
        return False
    if day.month == 7 and day.day == 3 and day.weekday() < 4:
        return True
    if day.month == 12 and day.day == 24 and day.weekday() < 4:
        return True
    return day == _nth_weekday(day.year, 11, 3, 4) + datetime.timedelta(days=1)


@dataclass(frozen=True)
class SessionCalendar:
    """Regular sessions on NYSE trading days (module doc); `previous_evening` opens a session the evening
    before its trading day (CME Globex)."""

    name: str
    open: datetime.time
    close: datetime.time
    early_close: datetime.time
    previous_evening: bool = False
    zone: ZoneInfo = NEW_YORK

    def _epoch(self, day: datetime.date, at: datetime.time) -> float:
        return datetime.datetime.combine(day, at, self.zone).timestamp()

    def session(self, day: datetime.date) -> tuple[float, float] | None:
        """[open, close) of trading day `day` in epoch seconds; None when it is not a trading day."""
        if not nyse_trading_day(day):
            return None
        opens_on = day - datetime.timedelta(days=1) if self.previous_evening else day
        close = self.early_close if nyse_early_close(day) else self.close
        return self._epoch(opens_on, self.open), self._epoch(day, close)

    def _trading_day_on_or_after(self, day: datetime.date) -> datetime.date:
        while not nyse_trading_day(day):
            day += datetime.timedelta(days=1)
        return day

    def period(self, ts: float) -> Period:
        """The session containing `ts`, or the closed stretch before the next session."""
        local = datetime.datetime.fromtimestamp(ts, self.zone).date()
        day = self._trading_day_on_or_after(local - datetime.timedelta(days=1))
        while True:
            bounds = self.session(day)
            assert bounds is not None
            start, end = bounds
            if ts < start:
                previous = self._previous_close(day)
                return Period(f"closed-before-{day.isoformat()}", False, previous, start)
            if ts < end:
                return Period(day.isoformat(), True, start, end)
            day = self._trading_day_on_or_after(day + datetime.timedelta(days=1))

    def _previous_close(self, day: datetime.date) -> float:
        before = day - datetime.timedelta(days=1)
        while not nyse_trading_day(before):
            before -= datetime.timedelta(days=1)
        bounds = self.session(before)
        assert bounds is not None
        return bounds[1]

    def sessions(self, first: datetime.date, last: datetime.date) -> list[tuple[datetime.date, float, float]]:
        """(trading day, open, close) of every session from `first` to `last` inclusive."""
        found = []
        day = first
        while day <= last:
            bounds = self.session(day)
            if bounds is not None:
                found.append((day, *bounds))
            day += datetime.timedelta(days=1)
        return found


@dataclass(frozen=True)
class AlwaysOpen:
    """A market that never closes: one endless session."""

    name: str = "24x7"

    def period(self, ts: float) -> Period:
        return Period("always", True, float("-inf"), float("inf"))


Calendar = SessionCalendar | AlwaysOpen

CALENDARS: dict[str, Calendar] = {
    "XNYS": SessionCalendar("XNYS", datetime.time(9, 30), datetime.time(16, 0), datetime.time(13, 0)),
    "XCBO-INDEX": SessionCalendar("XCBO-INDEX", datetime.time(9, 30), datetime.time(16, 15), datetime.time(13, 15)),
    "CME-EQUITY": SessionCalendar("CME-EQUITY", datetime.time(18, 0), datetime.time(17, 0), datetime.time(13, 15),
                                  previous_evening=True),
    "24x7": AlwaysOpen(),
}
MARKET_CALENDARS = {"equity-options": "XNYS", "index-options": "XCBO-INDEX", "futures-options": "CME-EQUITY"}


def calendar_for(market: str) -> Calendar:
    """The calendar of a TradingSymbol market (`equity-options`, ...) or a calendar name (`XNYS`, `24x7`)."""
    name = MARKET_CALENDARS.get(market, market)
    if name not in CALENDARS:
        known = sorted(MARKET_CALENDARS) + sorted(CALENDARS)
        raise ValueError(f"unknown market or calendar {market!r}; known: {known}")
    return CALENDARS[name]


class PeriodTracker:
    """The current period of a stream of timestamps; `changed` says whether the last `update` crossed a
    boundary. O(1) per timestamp inside a period (the calendar is asked only when a boundary is passed)."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.current: Period | None = None

    def update(self, ts: float) -> bool:
        """Track `ts`; True when it starts a period other than the previous timestamp's (not on the first)."""
        current = self.current
        if current is not None and ts in current:
            return False
        self.current = self.calendar.period(ts)
        return current is not None and self.current.key != current.key
