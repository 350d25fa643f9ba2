"""Charts as PNG bytes (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import datetime
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after choosing the backend
import numpy as np
from matplotlib.figure import Figure

Points = Sequence[tuple[datetime.datetime, float]]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def lines(title: str, ylabel: str, series: Mapping[str, Points], threshold: float | None = None) -> bytes:
    """One line per series over time; a dashed line at `threshold`."""
    figure, axes = plt.subplots(figsize=(9, 3.5))
    for name, points in sorted(series.items()):
        if points:
            naive_utc = [p[0].astimezone(datetime.UTC).replace(tzinfo=None) for p in points]
            times = np.array(naive_utc, dtype="datetime64[s]")
            axes.plot(times, [p[1] for p in points], marker=".", label=name)
    if threshold is not None:
        axes.axhline(threshold, linestyle="--", color="grey", label="objective")
    axes.set_title(title)
    axes.set_ylabel(f"{ylabel} (times UTC)")
    axes.grid(alpha=0.3)
    if series:
        axes.legend(fontsize="small", ncol=4)
    figure.autofmt_xdate()
    return _png(figure)


def bars(title: str, ylabel: str, values: Mapping[str, float], threshold: float | None = None) -> bytes:
    """One bar per name; a dashed line at `threshold` (a budget)."""
    figure, axes = plt.subplots(figsize=(9, 3.5))
    names = list(values)
    axes.bar(names, [values[n] for n in names], color="#4c72b0")
    if threshold is not None:
        axes.axhline(threshold, linestyle="--", color="#c44e52", label="budget")
        axes.legend(fontsize="small")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.tick_params(axis="x", rotation=45)
    axes.grid(alpha=0.3, axis="y")
    return _png(figure)
