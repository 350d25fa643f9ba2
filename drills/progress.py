"""Progress of long transfers: rich bars on stderr for people, nothing for CronJobs and tests."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

Advance = Callable[[int], None]


class Transfers(Protocol):
    def __call__(self, description: str, total: int | None) -> contextlib.AbstractContextManager[Advance]: ...


@contextlib.contextmanager
def silent(description: str, total: int | None) -> Iterator[Advance]:
    yield lambda _n: None


@contextlib.contextmanager
def bars(description: str, total: int | None) -> Iterator[Advance]:
    """A bar (with speed) on stderr when it is a terminal; otherwise silent."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
