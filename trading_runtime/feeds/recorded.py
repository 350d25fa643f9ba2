"""Recorded market data: the loader that validates a file of ticks, quotes, trades, option quotes or bars
(CSV or Parquet; the layout is documented in docs/recorded-data.md) and reports what it did with every row.

Nothing is dropped in silence: each row is kept, or dropped and counted under a named issue with the first
line numbers; noted issues (gaps, zero-volume bars, modelled quotes, lower-case symbols) are counted too.
A file that cannot be read as market data (no time column, naive timestamps without a time zone, several
symbols and none chosen) is a `RecordedDataError` with the reason, and so is a file with nothing usable
left: callers exit non-zero rather than report on nothing."""

from __future__ import annotations

import collections
import csv
import datetime
import enum
import itertools
import math
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from trading_runtime.feeds.events import EventsBuilder, MarketEvents
from trading_runtime.feeds.protocol import Quote, Trade, option_id
from trading_runtime.sessions import PeriodTracker, calendar_for

TIME_COLUMNS = ("ts", "timestamp", "datetime", "time", "date")
"""Accepted names of the time column, in order of preference (`date` + `time` columns are joined)."""
ALIASES = {"bidsize": "bid_size", "asksize": "ask_size", "bid_sz": "bid_size", "ask_sz": "ask_size",
           "ticker": "symbol", "side": "aggressor", "qty": "size", "vol": "volume"}
BAR_COLUMNS = frozenset({"open", "high", "low", "close", "volume"})
KNOWN = frozenset({*TIME_COLUMNS, "symbol", "type", "instrument", "bid", "ask", "bid_size", "ask_size", "price",
                   "size", "aggressor", "expiry", "strike", "right", *BAR_COLUMNS})
EARLIEST, LATEST = 631_152_000.0, 4_102_444_800.0  # 1990-01-01 .. 2100-01-01 UTC
EXAMPLES = 3


class RecordedDataError(ValueError):
    """The file cannot be used: the message says why and what to do."""


class Issue(enum.StrEnum):
    UNPARSEABLE = "unparseable"
    OUT_OF_ORDER = "out-of-order"
    DUPLICATE = "duplicate"
    DUPLICATE_BAR = "duplicate-bar"
    ZERO_SIZE_QUOTE = "zero-size-quote"
    OUTSIDE_SESSION = "outside-session"
    OTHER_SYMBOL = "other-symbol"
    ZERO_VOLUME_BAR = "zero-volume-bar"
    MODELLED_QUOTE = "modelled-quote"
    GAP = "gap"
    LOWERCASE_SYMBOL = "lowercase-symbol"


DROPPING = frozenset({Issue.UNPARSEABLE, Issue.OUT_OF_ORDER, Issue.DUPLICATE_BAR, Issue.ZERO_SIZE_QUOTE,
                      Issue.OUTSIDE_SESSION, Issue.OTHER_SYMBOL})
"""Issues whose rows are dropped; the others are noted and the rows kept."""


@dataclass(frozen=True)
class LoadOptions:
    symbol: str | None = None
    """The symbol to load; None takes the file's only symbol (several → error)."""
    calendar: str = "XNYS"
    """Session calendar (trading_runtime/sessions.py) or market name, for sessions and gaps."""
    extended_hours: bool = False
    """Keep rows outside regular sessions (dropped and counted otherwise)."""
    timezone: str | None = None
    """Time zone of timestamps written without one (refused otherwise)."""
    bar_timestamps: Literal["start", "end"] = "start"
    """Whether a bar's timestamp is its start (replayed at start + bar length: its close is not known
    before) or its end."""
    bar_seconds: float | None = None
    """Bar length; inferred from the most common step between bars when None."""
    bar_spread_bps: float = 1.0
    """Bid–ask spread modelled around a bar's close when the file has no bid/ask columns."""
    max_gap_s: float | None = None
    """A pause longer than this inside a session is reported as a gap (default 300 s; five bars for bars)."""


@dataclass
class IssueCount:
    count: int = 0
    dropped: bool = False
    examples: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    path: str
    layout: str = ""
    time_column: str = ""
    unknown_columns: list[str] = field(default_factory=list)
    rows: int = 0
    events: int = 0
    symbol: str = ""
    first_ts: float = math.nan
    last_ts: float = math.nan
    sessions: int = 0
    bar_seconds: float | None = None
    epoch_units: list[str] = field(default_factory=list)
    issues: dict[str, IssueCount] = field(default_factory=dict)

    def note(self, issue: Issue, line: int, why: str) -> None:
        counted = self.issues.setdefault(issue.value, IssueCount(dropped=issue in DROPPING))
        counted.count += 1
        if len(counted.examples) < EXAMPLES:
            counted.examples.append(f"line {line}: {why}")

    @property
    def dropped(self) -> int:
        return sum(c.count for c in self.issues.values() if c.dropped)

    def summary(self) -> str:
        """What was loaded and every issue, one line each."""
        lines = [f"{self.path}: {self.layout} of {self.symbol or '?'}, {self.rows} rows -> {self.events} events, "
                 f"{self.dropped} rows dropped, {self.sessions} sessions"]
        if self.unknown_columns:
            lines.append(f"  unknown columns (ignored): {', '.join(self.unknown_columns)}")
        for name, counted in self.issues.items():
            action = "dropped" if counted.dropped else "noted"
            lines.append(f"  {name}: {counted.count} {action}; {'; '.join(counted.examples)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Recorded:
    events: MarketEvents
    report: LoadReport


def _rows(path: pathlib.Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """(column names, (line number, row) pairs). CSV lines count from the header (line 1); Parquet rows
    are numbered like CSV lines (row 0 is line 2) so reports read the same."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq  # ~28 MB: loaded by the processes that read a Parquet file, not by every runtime

        parquet = pq.ParquetFile(path)

        def parquet_rows() -> Iterator[tuple[int, dict[str, Any]]]:
            line = 1
            for batch in parquet.iter_batches(batch_size=10_000):
                for row in batch.to_pylist():
                    line += 1
                    yield line, row

        return list(parquet.schema_arrow.names), parquet_rows()
    with path.open(newline="") as handle:
        names = next(csv.reader(handle), [])

    def csv_rows() -> Iterator[tuple[int, dict[str, Any]]]:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, row

    return names, csv_rows()


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value))


def epoch_unit(value: float) -> tuple[str, float]:
    """The unit of a numeric epoch timestamp by its magnitude, and the divisor to seconds."""
    magnitude = abs(value)
    if magnitude < 1e11:
        return "s", 1.0
    if magnitude < 1e14:
        return "ms", 1e3
    if magnitude < 1e17:
        return "us", 1e6
    return "ns", 1e9


class _Loader:
    def __init__(self, path: pathlib.Path, options: LoadOptions) -> None:
        self.path, self.options = path, options
        self.report = LoadReport(str(path))
        self.calendar = calendar_for(options.calendar)
        self.zone = self._zone(options.timezone)
        self.units: set[str] = set()

    @staticmethod
    def _zone(name: str | None) -> ZoneInfo | None:
        if name is None:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise RecordedDataError(f"unknown time zone {name!r}") from exc

    # Columns ------------------------------------------------------------------------------------------

    def columns(self, names: list[str]) -> dict[str, str]:
        """Canonical name → the file's name; records the layout, time column and unknown columns."""
        mapping: dict[str, str] = {}
        for name in names:
            canonical = _canonical(name)
            if canonical in KNOWN and canonical not in mapping:
                mapping[canonical] = name
            else:
                self.report.unknown_columns.append(name)
        found = [c for c in TIME_COLUMNS if c in mapping]
        if not found:
            raise RecordedDataError(f"{self.path}: no time column; expected one of {', '.join(TIME_COLUMNS)} "
                                    f"(columns: {', '.join(names)})")
        self.report.time_column = "date+time" if set(found) == {"date", "time"} else found[0]
        if mapping.keys() >= BAR_COLUMNS:
            self.report.layout = "bars"
        elif "type" in mapping or mapping.keys() >= {"bid", "ask"} or mapping.keys() >= {"price", "size"}:
            self.report.layout = "ticks"
        else:
            raise RecordedDataError(f"{self.path}: neither ticks (type/bid/ask/price/size) nor bars "
                                    f"(open/high/low/close/volume) (columns: {', '.join(names)})")
        return mapping

    # Values -------------------------------------------------------------------------------------------

    def timestamp(self, row: dict[str, Any], mapping: dict[str, str]) -> float:
        if self.report.time_column == "date+time":
            value: Any = f"{row[mapping['date']]} {row[mapping['time']]}".strip()
        else:
            value = row[mapping[self.report.time_column]]
        if _blank(value):
            raise ValueError("no timestamp")
        if isinstance(value, datetime.datetime):
            ts = self._aware(value, str(value)).timestamp()
        elif isinstance(value, int | float):
            ts = self._epoch(float(value))
        else:
            text = str(value).strip()
            try:
                ts = self._epoch(float(text))
            except ValueError:
                try:
                    parsed = datetime.datetime.fromisoformat(text)
                except ValueError:
                    raise ValueError(f"timestamp {text!r} is neither an epoch number nor ISO 8601") from None
                ts = self._aware(parsed, text).timestamp()
        if not EARLIEST <= ts < LATEST:
            raise ValueError(f"timestamp {value!r} is out of range (read as {ts:.0f} s since 1970)")
        return ts

    def _epoch(self, value: float) -> float:
        unit, divisor = epoch_unit(value)
        self.units.add(unit)
        return value / divisor

    def _aware(self, value: datetime.datetime, text: str) -> datetime.datetime:
        if value.tzinfo is not None:
            return value
        if self.zone is None:
            raise RecordedDataError(f"{self.path}: timestamp {text!r} has no time zone; write it with an offset "
                                    "(2024-03-01T09:30:00-05:00, ...Z) or give the file's time zone "
                                    "(--timezone America/New_York)")
        return value.replace(tzinfo=self.zone)


def _symbol(row: dict[str, Any], mapping: dict[str, str], default: str | None) -> str:
    value = row.get(mapping["symbol"]) if "symbol" in mapping else None
    if _blank(value):
        if default is None:
            raise ValueError("no symbol (add a symbol column or choose the symbol)")
        return default
    return str(value).strip()


def _value(row: dict[str, Any], mapping: dict[str, str], name: str) -> Any:
    if name not in mapping:
        return None
    value = row[mapping[name]]
    return None if _blank(value) else value


def _instrument(row: dict[str, Any], mapping: dict[str, str], symbol: str) -> str:
    instrument = _value(row, mapping, "instrument")
    if instrument is not None:
        return str(instrument).strip().upper()
    expiry, strike, right = (_value(row, mapping, n) for n in ("expiry", "strike", "right"))
    if expiry is not None and strike is not None and right is not None:
        return option_id(symbol, str(expiry).strip(), str(right).strip().upper()[:1], float(strike))
    return symbol


def _tick(row: dict[str, Any], mapping: dict[str, str], symbol: str, ts: float) -> Quote | Trade:
    kind = _value(row, mapping, "type")
    if kind is None:
        kind = "quote" if _value(row, mapping, "bid") is not None else "trade"
    kind = str(kind).strip().lower()
    base = {"symbol": symbol, "seq": 0, "ts": ts, "instrument": _instrument(row, mapping, symbol)}
    if kind in ("quote", "q"):
        return Quote.model_validate({**base, "type": "quote", "bid": _value(row, mapping, "bid"),
                                     "ask": _value(row, mapping, "ask"),
                                     "bidSize": _value(row, mapping, "bid_size"),
                                     "askSize": _value(row, mapping, "ask_size")})
    if kind in ("trade", "t"):
        aggressor = _value(row, mapping, "aggressor")
        side = {"b": "buy", "buy": "buy", "s": "sell", "sell": "sell"}.get(str(aggressor).strip().lower()) \
            if aggressor is not None else None
        return Trade.model_validate({**base, "type": "trade", "price": _value(row, mapping, "price"),
                                     "size": _value(row, mapping, "size"), "aggressor": side})
    raise ValueError(f"unknown row type {kind!r} (quote or trade)")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def load_recorded(path: pathlib.Path, options: LoadOptions | None = None) -> Recorded:
    """Validate and load one symbol's events from a CSV or Parquet file (module doc)."""
    options = options or LoadOptions()
    if not path.is_file():
        raise RecordedDataError(f"{path}: no such file")
    loader = _Loader(path, options)
    names, rows = _rows(path)
    mapping = loader.columns(names)
    if loader.report.layout == "bars":
        return _Bars(loader, mapping).load(rows)
    return _Ticks(loader, mapping).load(rows)


class _Stream:
    """What ticks and bars share: symbol choice, sessions, order, gaps, the report."""

    def __init__(self, loader: _Loader, mapping: dict[str, str]) -> None:
        self.loader, self.mapping, self.options = loader, mapping, loader.options
        self.report = loader.report
        self.symbol = loader.options.symbol.upper() if loader.options.symbol else None
        self.others: collections.Counter[str] = collections.Counter()
        self.builder: EventsBuilder | None = None
        self.periods = PeriodTracker(loader.calendar)
        self.sessions: set[str] = set()
        self.last_ts = -math.inf
        self.max_gap = self.options.max_gap_s or 300.0

    def accept_symbol(self, raw: str, line: int) -> bool:
        symbol = raw.upper()
        if symbol != raw:
            self.report.note(Issue.LOWERCASE_SYMBOL, line, f"symbol {raw!r} read as {symbol!r}")
        if self.symbol is None:
            self.symbol = symbol
        if symbol != self.symbol:
            self.others[symbol] += 1
            self.report.note(Issue.OTHER_SYMBOL, line, f"symbol {symbol} (loading {self.symbol})")
            return False
        return True

    def in_session(self, ts: float, line: int) -> bool:
        """Session check on `ts`; gaps inside a session are noted."""
        changed = self.periods.update(ts)
        period = self.periods.current
        assert period is not None
        if not period.open and not self.options.extended_hours:
            self.report.note(Issue.OUTSIDE_SESSION, line, f"{_iso(ts)} is outside the {self.loader.calendar.name} "
                                                          "sessions (--extended-hours keeps it)")
            return False
        if not changed and self.last_ts > -math.inf and ts - self.last_ts > self.max_gap:
            self.report.note(Issue.GAP, line, f"no data for {ts - self.last_ts:.0f} s before {_iso(ts)}")
        self.sessions.add(period.key)
        return True

    def in_order(self, ts: float, line: int) -> bool:
        if ts < self.last_ts:
            self.report.note(Issue.OUT_OF_ORDER, line, f"{_iso(ts)} is before the previous row's {_iso(self.last_ts)}")
            return False
        return True

    def add(self, message: Quote | Trade) -> None:
        if self.builder is None:
            self.builder = EventsBuilder(message.symbol)
        self.builder.add(message)

    def finish(self) -> Recorded:
        report = self.report
        report.symbol = self.symbol or ""
        report.sessions = len(self.sessions)
        report.epoch_units = sorted(self.loader.units)
        if self.others and self.options.symbol is None:
            listed = ", ".join(f"{s} ({n} rows)" for s, n in self.others.most_common(5))
            raise RecordedDataError(f"{report.path}: holds several symbols ({report.symbol} and {listed}); "
                                    "choose one (--symbol)")
        events = self.builder.build() if self.builder is not None else None
        if events is None or not len(events):
            raise RecordedDataError(f"nothing usable in {report.path}:\n{report.summary()}")
        report.events = len(events)
        report.first_ts, report.last_ts = events.start, events.end
        return Recorded(events, report)


class _Ticks(_Stream):
    def load(self, rows: Iterator[tuple[int, dict[str, Any]]]) -> Recorded:
        previous: dict[str, Any] | None = None
        for line, row in rows:
            self.report.rows += 1
            try:
                ts = self.loader.timestamp(row, self.mapping)
                if not self.accept_symbol(_symbol(row, self.mapping, self.symbol), line):
                    continue
                assert self.symbol is not None
                message = _tick(row, self.mapping, self.symbol, ts)
            except RecordedDataError:
                raise
            except ValidationError as exc:
                self.report.note(Issue.UNPARSEABLE, line, _first_error(exc))
                continue
            except (ValueError, TypeError) as exc:
                self.report.note(Issue.UNPARSEABLE, line, str(exc))
                continue
            if not self.in_order(ts, line) or not self.in_session(ts, line):
                continue
            if isinstance(message, Quote) and (message.bid_size == 0 or message.ask_size == 0):
                self.report.note(Issue.ZERO_SIZE_QUOTE, line, f"{message.instrument} quote with no size on a side")
                continue
            if row == previous:
                self.report.note(Issue.DUPLICATE, line, "same as the previous row (kept: prints can repeat)")
            previous = row
            self.last_ts = ts
            self.add(message)
        return self.finish()


class _Bars(_Stream):
    def __init__(self, loader: _Loader, mapping: dict[str, str]) -> None:
        super().__init__(loader, mapping)
        self.has_quotes = mapping.keys() >= {"bid", "ask"}
        self.bar_seconds = self.options.bar_seconds
        if self.bar_seconds is not None and self.options.max_gap_s is None:
            self.max_gap = 5 * self.bar_seconds

    def load(self, rows: Iterator[tuple[int, dict[str, Any]]]) -> Recorded:
        held: list[tuple[int, dict[str, Any], float]] = []
        for line, row in rows:
            self.report.rows += 1
            try:
                ts = self.loader.timestamp(row, self.mapping)
                if not self.accept_symbol(_symbol(row, self.mapping, self.symbol), line):
                    continue
            except RecordedDataError:
                raise
            except (ValueError, TypeError) as exc:
                self.report.note(Issue.UNPARSEABLE, line, str(exc))
                continue
            if self.bar_seconds is None:  # hold bars back until their length is known
                held.append((line, row, ts))
                if len(held) >= 200:
                    self._infer(held)
                    for item in held:
                        self._bar(*item)
                    held.clear()
                continue
            self._bar(line, row, ts)
        if held:
            self._infer(held)
            for item in held:
                self._bar(*item)
        self.report.bar_seconds = self.bar_seconds
        return self.finish()

    def _infer(self, held: list[tuple[int, dict[str, Any], float]]) -> None:
        steps = collections.Counter(round(b - a, 6) for (_, _, a), (_, _, b) in itertools.pairwise(held)
                                    if b > a)
        if not steps:
            raise RecordedDataError(f"{self.report.path}: cannot tell the bar length from the file "
                                    "(give --bar-seconds)")
        self.bar_seconds = steps.most_common(1)[0][0]
        if self.options.max_gap_s is None:
            self.max_gap = 5 * self.bar_seconds

    def _bar(self, line: int, row: dict[str, Any], ts: float) -> None:
        assert self.bar_seconds is not None
        assert self.symbol is not None
        start = ts if self.options.bar_timestamps == "start" else ts - self.bar_seconds
        if not self.in_order(start, line):
            return
        if start == self.last_ts:
            self.report.note(Issue.DUPLICATE_BAR, line, f"a second bar for {_iso(start)}")
            return
        if not self.in_session(start, line):
            return
        try:
            messages = self._messages(row, start + self.bar_seconds, line)
        except ValidationError as exc:
            self.report.note(Issue.UNPARSEABLE, line, _first_error(exc))
            return
        except (ValueError, TypeError) as exc:
            self.report.note(Issue.UNPARSEABLE, line, str(exc))
            return
        self.last_ts = start
        for message in messages:
            self.add(message)

    def _messages(self, row: dict[str, Any], close_ts: float, line: int) -> list[Quote | Trade]:
        """The close as a quote (the file's bid/ask, else a modelled spread), then the volume as one trade
        at the close; a zero-volume bar is a quote alone."""
        symbol, m = self.symbol, self.mapping
        assert symbol is not None
        close, volume = float(_value(row, m, "close")), float(_value(row, m, "volume"))
        if self.has_quotes and _value(row, m, "bid") is not None:
            bid, ask = float(_value(row, m, "bid")), float(_value(row, m, "ask"))
        else:
            half = close * self.options.bar_spread_bps / 2e4
            bid, ask = close - half, close + half
            self.report.note(Issue.MODELLED_QUOTE, line, f"no bid/ask: {self.options.bar_spread_bps:g} bp spread "
                                                         "around the close, no sizes")
        sizes = {"bidSize": _value(row, m, "bid_size") or 0.0, "askSize": _value(row, m, "ask_size") or 0.0}
        quote = Quote.model_validate({"type": "quote", "symbol": symbol, "seq": 0, "ts": close_ts,
                                      "instrument": symbol, "bid": bid, "ask": ask, **sizes})
        if volume == 0:
            self.report.note(Issue.ZERO_VOLUME_BAR, line, "no trade (the quote is kept)")
            return [quote]
        trade = Trade.model_validate({"type": "trade", "symbol": symbol, "seq": 0, "ts": close_ts,
                                      "instrument": symbol, "price": close, "size": volume})
        return [quote, trade]


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")
