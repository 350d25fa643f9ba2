"""Where a backtest's events come from — a recorded file (validated by the runtime's loader) or the
seeded synthetic market laid on a session calendar — and the sessions they span."""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trading_runtime.feeds.events import EventsBuilder, MarketEvents
from trading_runtime.feeds.protocol import Quote, Trade
from trading_runtime.feeds.recorded import LoadOptions, LoadReport, load_recorded
from trading_runtime.feeds.synthetic import MarketSimulator
from trading_runtime.sessions import AlwaysOpen, Calendar, SessionCalendar, calendar_for

OVERNIGHT_VARIANCE = 0.2
"""Share of the closed hours' diffusion the synthetic market moves between two sessions (overnight moves are
quieter per hour than the session's)."""


class RecordedSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: pathlib.Path
    symbol: str | None = None
    timezone: str | None = None
    extended_hours: bool = False
    bar_spread_bps: float = Field(1.0, gt=0.0)


class SyntheticSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = "SPY"
    days: int = Field(5, ge=1, le=260)
    seed: int = 1000
    start: datetime.date = datetime.date(2026, 3, 2)
    tick_seconds: float = Field(1.0, gt=0.0)
    """Exchange time between two underlying quotes."""
    session_minutes: int | None = Field(None, ge=1)
    """Generate only the first minutes of each session (small test data); None for whole sessions."""
    edge: float = Field(0.0, ge=0.0, le=2.0)
    """A seeded order-flow edge in the market (trading_runtime/feeds/synthetic.py `SymbolMarket.edge`); 0: none."""


Source = RecordedSource | SyntheticSource


@dataclass(frozen=True)
class Loaded:
    events: MarketEvents
    report: LoadReport | None
    """The loader's report for a recorded file (None for synthetic data)."""


def load(source: Source, calendar: str) -> Loaded:
    """The events of a source, on the market's calendar (a recorded file's rows outside it are dropped and
    reported by the loader)."""
    if isinstance(source, RecordedSource):
        recorded = load_recorded(source.path, LoadOptions(
            symbol=source.symbol, calendar=calendar, timezone=source.timezone,
            extended_hours=source.extended_hours, bar_spread_bps=source.bar_spread_bps))
        return Loaded(recorded.events, recorded.report)
    return Loaded(synthetic(source, calendar_for(calendar)), None)


def _messages(raw: list[dict[str, Any]], seq: int) -> list[Quote | Trade]:
    out: list[Quote | Trade] = []
    for message in raw:
        payload = {**message, "seq": seq}
        out.append(Quote.model_validate(payload) if message["type"] == "quote" else Trade.model_validate(payload))
    return out


def synthetic(source: SyntheticSource, calendar: Calendar) -> MarketEvents:
    """The synthetic market (trading_runtime/feeds/synthetic.py, seeded) over `days` sessions of `calendar`
    from `source.start`: a snapshot's quotes at each open, then ticks every `tick_seconds` until the close
    (or `session_minutes`), and a quieter diffusion over the closed hours."""
    sessions = trading_sessions(calendar, source.start, source.days)
    simulator = MarketSimulator([source.symbol], seed=source.seed, start_ts=sessions[0][0], edge=source.edge)
    market = simulator.markets[source.symbol]
    builder = EventsBuilder(source.symbol)
    previous_close: float | None = None
    for open_ts, close_ts in sessions:
        if previous_close is not None:
            market.step((open_ts - previous_close) * OVERNIGHT_VARIANCE)
        simulator.ts = open_ts
        snapshot = simulator.snapshot(source.symbol)
        builder.add(Quote.model_validate({"type": "quote", "symbol": source.symbol, "seq": 0, "ts": open_ts,
                                          **snapshot["underlying"]}))
        for option in snapshot["options"]:  # (expiry, strike and right are in the option id too)
            builder.add(Quote.model_validate({**option, "type": "quote", "symbol": source.symbol, "seq": 0,
                                              "ts": open_ts}))
        end = close_ts if source.session_minutes is None else min(close_ts, open_ts + 60 * source.session_minutes)
        while simulator.ts + source.tick_seconds < end:
            builder.extend(_messages(simulator.tick(source.symbol, source.tick_seconds), 0))
        previous_close = end
    return builder.build()


def trading_sessions(calendar: Calendar, start: datetime.date, days: int) -> list[tuple[float, float]]:
    """(open, close) of the first `days` sessions from `start`; UTC days for a market that never closes."""
    if isinstance(calendar, AlwaysOpen):
        first = datetime.datetime.combine(start, datetime.time(), datetime.UTC).timestamp()
        return [(first + 86400 * i, first + 86400 * (i + 1)) for i in range(days)]
    assert isinstance(calendar, SessionCalendar)
    found = calendar.sessions(start, start + datetime.timedelta(days=days * 2 + 10))
    return [(o, c) for _, o, c in found[:days]]


@dataclass(frozen=True)
class SessionWindow:
    key: str
    start: float
    end: float


def session_windows(events: MarketEvents, calendar: Calendar) -> list[SessionWindow]:
    """The sessions the events fall in, in order (UTC days for a market that never closes); events outside
    any session (extended hours) join the session that follows them."""
    windows: list[SessionWindow] = []
    if not len(events):
        return windows
    ts = events.ts
    index = 0
    while index < len(ts):
        period = calendar.period(float(ts[index]))
        if isinstance(calendar, AlwaysOpen):
            day = datetime.datetime.fromtimestamp(float(ts[index]), datetime.UTC).date()
            start = datetime.datetime.combine(day, datetime.time(), datetime.UTC).timestamp()
            window = SessionWindow(day.isoformat(), start, start + 86400)
        elif period.open:
            window = SessionWindow(period.key, period.start, period.end)
        else:
            following = calendar.period(period.end)
            window = SessionWindow(following.key, period.start, following.end)
        windows.append(window)
        index = int(events.ts.searchsorted(window.end, side="left"))
    return _merged(windows)


def _merged(windows: list[SessionWindow]) -> list[SessionWindow]:
    """Closed stretches joined to the session after them share its key: one window per key."""
    merged: list[SessionWindow] = []
    for window in windows:
        if merged and merged[-1].key == window.key:
            merged[-1] = SessionWindow(window.key, merged[-1].start, max(merged[-1].end, window.end))
        else:
            merged.append(window)
    return merged
