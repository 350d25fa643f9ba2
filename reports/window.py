"""The time window a report covers, and its parsing from the command line."""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass

HOUR = 3600
DAY = 86400


def parse_time(text: str, now: datetime.datetime) -> datetime.datetime:
    """`now`, an ISO date or time (UTC unless an offset is given), or `-30d` / `-12h` before now."""
    if text == "now":
        return now
    relative = re.fullmatch(r"-([0-9]+)([hd])", text)
    if relative:
        amount = int(relative.group(1)) * (HOUR if relative.group(2) == "h" else DAY)
        return now - datetime.timedelta(seconds=amount)
    moment = datetime.datetime.fromisoformat(text)
    return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment.astimezone(datetime.UTC)


@dataclass(frozen=True)
class Window:
    start: datetime.datetime
    end: datetime.datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"the window ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})")

    @classmethod
    def whole_hours(cls, start: datetime.datetime, end: datetime.datetime) -> Window:
        """The window shrunk to whole hours (reports step by the hour or the day)."""
        def floor(moment: datetime.datetime) -> datetime.datetime:
            return moment.replace(minute=0, second=0, microsecond=0)
        first = floor(start) if floor(start) == start else floor(start) + datetime.timedelta(hours=1)
        return cls(first, floor(end))

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def hours(self) -> float:
        return self.seconds / HOUR

    @property
    def days(self) -> float:
        return self.seconds / DAY

    @property
    def range(self) -> str:
        """The window as a PromQL range (`720h`)."""
        return f"{self.seconds}s"

    def day_ends(self) -> list[datetime.datetime]:
        """The end of each whole day (UTC midnight) within the window."""
        first = self.start.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=1)
        out = []
        while first <= self.end:
            out.append(first)
            first += datetime.timedelta(days=1)
        return out

    def label(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC ({self.days:.1f} days)"


def hours_in_month(moment: datetime.datetime) -> int:
    return calendar.monthrange(moment.year, moment.month)[1] * 24
