"""Reports people would rather look at than read: the equity curve above its drawdown, drawn by matplotlib
straight to PNG with the Agg renderer (no display, no pyplot state), as a PNG, or as one self-contained
HTML page with the chart embedded, the figures with their intervals, the verdict, the walk-forward folds
and the trades."""

from __future__ import annotations

import base64
import datetime
import html
import io
import pathlib
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from backtest.broker import LedgerEntry
from backtest.jobs import WalkForwardResult
from backtest.metrics import Performance, chained
from backtest.runner import RunResult

MAX_TRADES = 200


def _times(ts: Sequence[float]) -> list[datetime.datetime]:
    return [datetime.datetime.fromtimestamp(t, datetime.UTC) for t in ts]


def chart(curve: Sequence[tuple[float, float]], title: str,
          spans: Sequence[tuple[float, float]] = ()) -> bytes:
    """PNG bytes: equity (top) and drawdown from the running peak (bottom), over sample index so that
    nights and weekends take no width; `spans` (test folds) are shaded."""
    equity = np.array([e for _, e in curve], dtype=float)
    x = np.arange(len(equity))
    peaks = np.maximum.accumulate(equity) if len(equity) else equity
    drawdown = (equity - peaks) / peaks * 100 if len(equity) else equity
    figure = Figure(figsize=(10, 6))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    top.plot(x, equity, color="#1f5f99", linewidth=1.2)
    top.set_title(title)
    top.set_ylabel("equity")
    top.grid(alpha=0.3)
    bottom.fill_between(x, drawdown, 0, color="#b03a2e", alpha=0.5, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    times = [t for t, _ in curve]
    for start, end in spans:
        lo, hi = np.searchsorted(times, [start, end])
        for axis in (top, bottom):
            axis.axvspan(lo, max(hi - 1, lo), color="#999999", alpha=0.12)
    if len(times) > 1:
        ticks = np.linspace(0, len(times) - 1, min(6, len(times))).astype(int)
        bottom.set_xticks(ticks, [_times([times[i]])[0].strftime("%Y-%m-%d %H:%M") for i in ticks], fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _figure_rows(p: Performance) -> list[tuple[str, str]]:
    def number(value: float | None, fmt: str = "{:.4g}") -> str:
        return "no data" if value is None else fmt.format(value)

    def interval(value: tuple[float, float] | None) -> str:
        return "" if value is None else f" [{value[0]:.4g}, {value[1]:.4g}]"

    return [
        ("P&L", f"{p.pnl:,.2f} ({p.return_pct:.3f} %)"),
        ("Sharpe (95 % CI)", number(p.sharpe) + interval(p.sharpe_ci) + f" over {p.returns} returns"),
        ("Sortino", number(p.sortino)),
        ("Max drawdown", f"{p.max_drawdown * 100:.3f} %"),
        ("Turnover", f"{p.turnover:.4g} × capital"),
        ("Fills / fees", f"{p.fills} / {p.fees:,.2f}"),
        ("Hit rate (95 % CI)", number(p.hit_rate) + interval(p.hit_rate_ci) + f" on {p.calls} calls"),
        ("Persistence baseline, same points", number(p.baseline_hit_rate)),
        ("Majority baseline, same points", number(p.majority_hit_rate)),
        ("Coverage", number(p.coverage)),
        ("Verdict", f"{p.verdict}: {p.reason}"),
    ]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _trades(ledger: Sequence[LedgerEntry]) -> str:
    rows = [(_times([f.filled_at])[0].isoformat(), f.instrument, f"{f.quantity:g}", f"{f.price:.4g}",
             f"{f.fee:.2f}") for f in ledger[:MAX_TRADES]]
    more = f"<p>{len(ledger) - MAX_TRADES} more in the JSON result.</p>" if len(ledger) > MAX_TRADES else ""
    return _table(["filled (UTC)", "instrument", "quantity", "price", "fee"], rows) + more


def page(title: str, png: bytes, performance: Performance, sections: Sequence[str]) -> str:
    image = base64.b64encode(png).decode()
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><img alt='equity and drawdown' src='data:image/png;base64,{image}'>"
            + _table(["figure", "value"], _figure_rows(performance)) + "".join(sections) + "</body></html>")


def write_run(result: RunResult, path: pathlib.Path) -> None:
    """A run's report: `.png` for the chart alone, `.html` for the page."""
    title = f"Backtest {result.data.symbol} {result.run_id}"
    png = chart(result.equity, title)
    _write(path, png, lambda: page(title, png, result.performance, ["<h2>Trades</h2>", _trades(result.ledger)]))


def write_walk_forward(result: WalkForwardResult, path: pathlib.Path) -> None:
    """The test folds' chained equity (folds shaded) and the folds' choices and figures."""
    capital = result.folds[0].test.spec.config.risk.capital
    curve = chained([f.test.equity for f in result.folds], capital)
    title = f"Walk-forward {result.data.symbol}: {len(result.folds)} folds, out of sample"
    png = chart(curve, title, [(f.test_start, f.test_end) for f in result.folds])
    rows = [(str(f.index), f"{f.train_sessions[0]}..{f.train_sessions[-1]}",
             f"{f.test_sessions[0]}..{f.test_sessions[-1]}", str(f.chosen), f"{max(f.train_scores):.4g}",
             f"{f.test.performance.pnl:,.2f}", str(f.test.performance.sharpe)) for f in result.folds]
    folds = _table(["fold", "train", "test", "chosen", f"train {result.objective}", "test P&L", "test Sharpe"], rows)
    _write(path, png, lambda: page(title, png, result.out_of_sample, ["<h2>Folds</h2>", folds]))


def _write(path: pathlib.Path, png: bytes, html_page: Callable[[], str]) -> None:
    suffix = path.suffix.lower()
    if suffix == ".png":
        path.write_bytes(png)
    elif suffix in (".html", ".htm"):
        path.write_text(html_page())
    else:
        raise ValueError(f"{path}: a report is .png or .html")
