"""Tables as kubectl prints them, pure: columns sized to their content (text/tabwriter with kubectl's
settings: padding 3, minimum cell 6), never cut. When a width is given (a terminal) and a row does not fit,
the columns marked `wrap` wrap at word boundaries; a word longer than its column is never split (the line
runs on, as kubectl's do). Durations read like kubectl's ages: `42s`, `5m30s`, `3h10m`, `2d4h`, `400d`."""

from __future__ import annotations

import datetime
import textwrap
from dataclasses import dataclass

from trading_operator.timestamps import parse_time

PADDING = 3
MIN_CELL = 6
MIN_WRAP = 20
"""A wrapped column is never narrower than this (or its longest word)."""


@dataclass(frozen=True)
class Column:
    header: str
    wrap: bool = False
    """May wrap at word boundaries when a terminal is too narrow (messages, change summaries)."""


def format_table(columns: list[Column], rows: list[list[str]], width: int | None = None,
                 header: bool = True, min_widths: list[int] | None = None) -> list[str]:
    """The lines of a table: header (unless `header` is False) and rows, no trailing blanks. `min_widths`
    keeps later rows aligned with an earlier table (`get -w`)."""
    table = ([[c.header for c in columns]] if header else []) + [[cell.replace("\n", " ") for cell in row]
                                                                  for row in rows]
    if not table:
        return []
    limits = _wrap_limits(columns, table, width)
    cells = [[textwrap.wrap(cell, limits[i], break_long_words=False, break_on_hyphens=False) or [""]
              if i in limits else [cell] for i, cell in enumerate(row)] for row in table]
    widths = [max(len(line) for row in cells for line in row[i]) for i in range(len(columns))]
    if min_widths is not None:
        widths = [max(w, m) for w, m in zip(widths, min_widths, strict=True)]
    lines = []
    for row in cells:
        for index in range(max(len(cell) for cell in row)):
            lines.append(_join([cell[index] if index < len(cell) else "" for cell in row], widths))
    return lines


def natural_widths(columns: list[Column], rows: list[list[str]]) -> list[int]:
    """The width of each column, header included, unwrapped."""
    return [max(len(row[i]) for row in [[c.header for c in columns], *rows]) for i in range(len(columns))]


def _wrap_limits(columns: list[Column], table: list[list[str]], width: int | None) -> dict[int, int]:
    """Column index -> wrap width of the wrap columns, when the table is wider than `width`."""
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    wrapping = [i for i, c in enumerate(columns) if c.wrap]
    if width is None or not wrapping or _total(widths) <= width:
        return {}
    fixed = _total([0 if i in wrapping else w for i, w in enumerate(widths)])
    share = max((width - fixed) // len(wrapping), MIN_WRAP)
    return {i: share for i in wrapping if widths[i] > share}


def _total(widths: list[int]) -> int:
    """Width of a line of cells this wide (the last one unpadded)."""
    return sum(max(w + PADDING, MIN_CELL) for w in widths[:-1]) + (widths[-1] if widths else 0)


def _join(cells: list[str], widths: list[int]) -> str:
    padded = [cell.ljust(max(width + PADDING, MIN_CELL)) for cell, width in zip(cells[:-1], widths, strict=False)]
    return ("".join(padded) + cells[-1]).rstrip()


def human_duration(seconds: float) -> str:
    """kubectl's age format (apimachinery's HumanDuration)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 - 365 * (hours // 24 // 365)
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, now: datetime.datetime) -> str:
    """How long ago an RFC 3339 timestamp was, kubectl's way; `<unknown>` when there is none."""
    if not timestamp:
        return "<unknown>"
    try:
        then = parse_time(timestamp)
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())
